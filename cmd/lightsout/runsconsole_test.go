package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// inspectHold is a site inspect playbook (the console is captured for the
// inspect, deploy and clean playbooks) that holds the node until the test
// powers the server on, then fails.
const inspectHold = `local bmc = require("ilo").connect(node)
run.step("hold", function()
  run.log("info", "holding the node")
  while bmc:get_host_power_status() ~= "ON" do run.sleep(0.05) end
end)
run.fail("error", "inspection failed")
`

// TestRunsShowConsole: a failed inspect run's `runs show --console` prints
// what the server printed on its serial console during the run (IPMI SOL),
// the node's iLO password masked; the timeline names the capture; a run
// without a capture says so.
func TestRunsShowConsole(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen10=1")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inspect.lua"), []byte(inspectHold), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := server(t, s, "gen10-0")
	srv.Update(func(st *sim.State) { st.Power = "OFF" })
	pw := srv.Password()
	done := make(chan int, 1)
	var runOut, runErr testenv.SyncBuffer
	go func() {
		done <- run([]string{"--scripts", dir, "run", "inspect", "--node", "gen10-0"}, &runOut, &runErr)
	}()
	waitFor(t, "the run's 'holding' event", func() bool {
		_, out, _ := c.run("runs", "log", "1")
		return strings.Contains(out, "holding the node")
	})
	srv.ConsoleWrite([]byte("RAID controller: fatal error 0x1f, password " + pw + "\r\n"))
	// the capture's SOL session reads what the server printed
	waitFor(t, "the console output read over SOL", func() bool { return len(srv.ConsoleBacklog()) == 0 })
	srv.Update(func(st *sim.State) { st.Power = "ON" })
	if code := <-done; code != 1 {
		t.Fatalf("run exit %d, want 1\n%s%s", code, runOut.String(), runErr.String())
	}

	out := c.must("runs", "show", "1", "--console")
	if !strings.Contains(out, "RAID controller: fatal error 0x1f, password ******") {
		t.Errorf("runs show --console lacks the server's failure:\n%s", out)
	}
	if tl := c.must("runs", "show", "1"); !strings.Contains(tl, "console") || strings.Contains(tl, "RAID controller") {
		t.Errorf("runs show: the timeline should name the capture, not print it:\n%s", tl)
	}
	if code, _, _ := c.run("runs", "show", "1", "--console", "--json"); code != 2 {
		t.Errorf("--console --json: exit %d, want 2", code)
	}
	// a run of another playbook captures nothing
	c.must("node", "power", "state", "gen10-0")
	code, out, errOut := c.run("runs", "show", "2", "--console")
	if code != 0 || out != "" || !strings.Contains(errOut, "recorded no console output") {
		t.Errorf("runs show 2 --console: exit %d %q %q", code, out, errOut)
	}
	if strings.Contains(c.allOut.String(), pw) {
		t.Errorf("the password shows in the CLI output")
	}
}
