package daemon_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/daemon"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/sim"
)

// TestSensorMetricsFollowPower: with [lightsout] sensor_interval set, the
// simulated nodes' IPMI sensors appear in /metrics, and the fans stop when
// a server is powered off.
func TestSensorMetricsFollowPower(t *testing.T) {
	s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen9, Count: 1}, {Generation: sim.Gen10, Count: 1}}, DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	state := t.TempDir()
	conf := filepath.Join(state, "lightsout.conf")
	if err := os.WriteFile(conf, []byte("[lightsout]\nstate_dir = "+state+"\nsensor_interval = 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, StateDir: state, Modules: []module.Module{},
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, n := range s.Inventory() {
		if _, err := a.CreateNode(context.Background(), app.NodeSpec{Name: n.Name, Driver: n.Driver, DriverInfo: n.DriverInfo}); err != nil {
			t.Fatal(err)
		}
	}
	for _, srv := range s.Servers() {
		srv.PowerOn()
	}
	m := daemon.NewMetrics()
	p := daemon.Sensors(a, m)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	fan := func(body, node string) string {
		m := regexp.MustCompile(`lightsout_sensor_rpm\{node="` + node + `",sensor="Fan 1"\} (\S+)`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return m[1]
	}
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for {
		body = scrape()
		if fan(body, "gen9-0") != "" && fan(body, "gen10-0") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fan readings in /metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fan(body, "gen10-0") == "0" || !strings.Contains(body, `lightsout_sensor_celsius{node="gen10-0",sensor="02-CPU 1"}`) ||
		!strings.Contains(body, `lightsout_sensor_watts{node="gen10-0",sensor="Power Meter"}`) ||
		!strings.Contains(body, `lightsout_sensor_poll_success{node="gen9-0"} 1`) {
		t.Fatalf("powered on:\n%s", body)
	}
	s.Server(1).PowerOff() // gen10-0
	p.PollOnce(context.Background())
	body = scrape()
	if fan(body, "gen10-0") != "0" || fan(body, "gen9-0") == "0" {
		t.Fatalf("after powering gen10-0 off: gen10-0 fan %s, gen9-0 fan %s", fan(body, "gen10-0"), fan(body, "gen9-0"))
	}
	if strings.Contains(body, s.Server(0).Password()) {
		t.Fatal("a password in /metrics")
	}
}
