package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

type env struct {
	eng  *runtime.Engine
	st   *store.SQLite
	dir  string
	out  *bytes.Buffer
	node *store.Node
}

// newEnv opens a real SQLite store in a temp dir with one node "n1".
func newEnv(t testing.TB, siteDirs ...string) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	c, err := secrets.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"), c)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(writeFile(t, dir, "lightsout.conf", "[lightsout]\nstate_dir = "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, ScriptDirs: siteDirs, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	n := &store.Node{UUID: "11111111-2222-3333-4444-555555555555", Name: "n1", Driver: "agent_ilo",
		DriverInfo: map[string]any{"ilo_address": "127.0.0.1", "ilo_username": "admin", "ilo_password": "pw-Sentinel-42"},
		Properties: map[string]any{"capabilities": "boot_mode:uefi,secure_boot:true"}, ProvisionState: "manageable"}
	if err := st.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); st.Close() })
	return &env{eng: eng, st: st, dir: dir, out: out, node: n}
}

func writeFile(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) run(t *testing.T, src string, mod ...func(*runtime.RunRequest)) runtime.Result {
	t.Helper()
	p := writeFile(t, t.TempDir(), "s.lua", src)
	req := runtime.RunRequest{Script: p, Node: "n1", Timeout: 10 * time.Second}
	for _, m := range mod {
		m(&req)
	}
	res, err := e.eng.Run(context.Background(), req)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestRunStatuses(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, src, status string
		errHas            []string
	}{
		{"ok", `run.log("info", "hi")`, store.StatusSucceeded, nil},
		{"syntax error names file and line", "local y = 1\n\nlocal x = = 1", store.StatusFailed, []string{"s.lua", "line:3"}},
		{"runtime error has traceback", "local function f() error('boom') end\nf()", store.StatusFailed,
			[]string{"s.lua:1: boom", "stack traceback"}},
		{"error table keeps code", `run.fail("not_supported", "nope")`, store.StatusFailed, []string{"nope (not_supported)"}},
		{"sandbox: no os.execute", `os.execute("true")`, store.StatusFailed, []string{"os.execute"}},
		{"sandbox: no io", `io.open("/etc/passwd")`, store.StatusFailed, []string{"io"}},
		{"sandbox: no dofile", `dofile("/etc/passwd")`, store.StatusFailed, []string{"dofile"}},
		{"config is read-only", `config.ilo.client_timeout = 1`, store.StatusFailed, []string{"read-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.run(t, tt.src)
			if res.Status != tt.status {
				t.Fatalf("status = %s, want %s (error %q)", res.Status, tt.status, res.Error)
			}
			for _, want := range tt.errHas {
				if !strings.Contains(res.Error, want) {
					t.Errorf("error %q lacks %q", res.Error, want)
				}
			}
			r, err := e.st.GetRun(context.Background(), res.RunID)
			if err != nil || r.Status != tt.status || r.FinishedAt == nil {
				t.Fatalf("stored run = %+v, %v", r, err)
			}
		})
	}
}

func TestTimeoutUnlocksNode(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	res := e.run(t, `while true do end`, func(r *runtime.RunRequest) { r.Timeout = 500 * time.Millisecond })
	if res.Status != store.StatusTimedOut {
		t.Fatalf("status = %s (%s), want timed_out", res.Status, res.Error)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	n, _ := e.st.GetNode(context.Background(), "n1")
	if n.Reservation != 0 {
		t.Fatalf("node still locked by run %d", n.Reservation)
	}
}

func TestSleepHonoursTimeout(t *testing.T) {
	e := newEnv(t)
	res := e.run(t, `run.sleep(30)`, func(r *runtime.RunRequest) { r.Timeout = 300 * time.Millisecond })
	if res.Status != store.StatusTimedOut {
		t.Fatalf("status = %s (%s), want timed_out", res.Status, res.Error)
	}
}

func TestCancelledRun(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := writeFile(t, t.TempDir(), "s.lua", `run.step("mark", function() end) while true do end`)
	done := make(chan runtime.Result)
	go func() {
		res, _ := e.eng.Run(ctx, runtime.RunRequest{Script: p, Node: "n1",
			OnStep: func(int64, string, string) { cancel() }})
		done <- res
	}()
	res := <-done
	if res.Status != store.StatusCancelled {
		t.Fatalf("status = %s (%s), want cancelled", res.Status, res.Error)
	}
}

func TestLockedNodeFailsAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.LockNode(ctx, e.node.UUID, 999); err != nil {
		t.Fatal(err)
	}
	res := e.run(t, `run.log("info", "should not run")`)
	if res.Status != store.StatusFailed || !strings.Contains(res.Error, "node n1 is locked by run 999") {
		t.Fatalf("got %s %q", res.Status, res.Error)
	}
	evs, _ := e.st.Events(ctx, res.RunID)
	for _, ev := range evs {
		if ev.Kind == store.EventLog {
			t.Fatalf("script ran on a locked node: %+v", ev)
		}
	}
	// --wait: the run proceeds once the lock is released. The holder lets
	// go only once the waiting run is recorded as running (polled).
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			runs, _ := e.st.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
			if len(runs) > 0 {
				e.st.UnlockNode(ctx, e.node.UUID, 999)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	res = e.run(t, `run.log("info", "ran")`, func(r *runtime.RunRequest) { r.Wait = true })
	if res.Status != store.StatusSucceeded {
		t.Fatalf("waited run: %s %q", res.Status, res.Error)
	}
}

func TestNodeMethodsPersist(t *testing.T) {
	e := newEnv(t)
	res := e.run(t, `
		assert(node.capabilities.boot_mode == "uefi")
		assert(node.capabilities.secure_boot == "true")
		node:set_property("memory_mb", 4096)
		node:set_instance_info("image_source", "http://127.0.0.1/img")
		node:set_internal("probe", {gen = "Gen10"})
		node:add_port("AA:BB:CC:DD:EE:FF")
		node:add_port("aa:bb:cc:dd:ee:ff")
		assert(node.properties.memory_mb == 4096)
		assert(#node.ports == 1)
		assert(node:transition("inspect") == "inspecting")
		local ok, err = pcall(node.transition, node, "deploy")
		assert(not ok and err.message:find("allowed events"), tostring(err and err.message))
		node:transition("done")
	`)
	if res.Status != store.StatusSucceeded {
		t.Fatalf("%s: %s", res.Status, res.Error)
	}
	n, _ := e.st.GetNode(context.Background(), "n1")
	if n.Properties["memory_mb"] != float64(4096) || n.InstanceInfo["image_source"] != "http://127.0.0.1/img" ||
		len(n.Ports) != 1 || n.Ports[0].Address != "aa:bb:cc:dd:ee:ff" || n.ProvisionState != "manageable" {
		t.Fatalf("node not persisted: %+v", n)
	}
	if m, _ := n.DriverInternalInfo["probe"].(map[string]any); m["gen"] != "Gen10" {
		t.Fatalf("internal = %v", n.DriverInternalInfo)
	}
}

func TestStepsRecordedWithDurationAndError(t *testing.T) {
	e := newEnv(t)
	res := e.run(t, `
		local a, b = run.step("two results", function() return 1, 2 end)
		assert(a == 1 and b == 2)
		run.step("fails", function() error("step broke") end)
	`)
	if res.Status != store.StatusFailed || !strings.Contains(res.Error, "step broke") || !strings.Contains(res.Error, "s.lua:4") {
		t.Fatalf("%s %q", res.Status, res.Error)
	}
	evs, err := e.st.Events(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		if ev.Kind == store.EventStepEnd {
			got = append(got, ev.Name+":"+ev.Data["status"].(string))
			if _, ok := ev.Data["duration_ms"]; !ok {
				t.Errorf("step_end without duration: %+v", ev)
			}
		}
	}
	if strings.Join(got, ",") != "two results:ok,fails:failed" {
		t.Fatalf("steps = %v", got)
	}
}

func TestSiteScriptOverridesAndWrapsBundled(t *testing.T) {
	site := t.TempDir()
	writeFile(t, site, "hello.lua", `run.log("info", "site hello") require("bundled.hello")`)
	e := newEnv(t, site)
	list, err := e.eng.Scripts().List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list {
		if s.Name == "hello" {
			found = s.Origin == "site" && s.Overrides
		}
	}
	if !found {
		t.Fatalf("scripts list does not mark the site hello as overriding: %+v", list)
	}
	res, err := e.eng.Run(context.Background(), runtime.RunRequest{Script: "hello", Node: "n1"})
	if err != nil || res.Status != store.StatusSucceeded {
		t.Fatalf("%v %+v", err, res)
	}
	evs, _ := e.st.Events(context.Background(), res.RunID)
	var msgs []string
	for _, ev := range evs {
		if ev.Kind == store.EventLog {
			msgs = append(msgs, ev.Data["msg"].(string))
		}
	}
	joined := strings.Join(msgs, "|")
	if !strings.HasPrefix(joined, "site hello") || !strings.Contains(joined, "hello n1") {
		t.Fatalf("site script did not run first and wrap the bundled one: %v", msgs)
	}
}

func TestUnknownScriptNamesSearchPath(t *testing.T) {
	site := t.TempDir()
	e := newEnv(t, site)
	_, err := e.eng.Run(context.Background(), runtime.RunRequest{Script: "nosuch"})
	var ue *runtime.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), site) || !strings.Contains(err.Error(), "bundled") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretsRedactedEverywhere(t *testing.T) {
	e := newEnv(t)
	const pw = "pw-Sentinel-42"
	res := e.run(t, `
		print("password is " .. node.driver_info.ilo_password)
		run.log("info", "pw " .. node.driver_info.ilo_password, {p = node.driver_info.ilo_password, nested = {x = node.driver_info.ilo_password}})
		run.step("leak", function() error("failed with " .. node.driver_info.ilo_password) end)
	`, func(r *runtime.RunRequest) { r.Params = map[string]string{"temp_url_key": "K3y-Sentinel-99"} })
	if res.Status != store.StatusFailed {
		t.Fatalf("status %s", res.Status)
	}
	if strings.Contains(res.Error, pw) || !strings.Contains(res.Error, secrets.Mask) {
		t.Fatalf("error not redacted: %q", res.Error)
	}
	if strings.Contains(e.out.String(), pw) || !strings.Contains(e.out.String(), "password is ******") {
		t.Fatalf("stdout not redacted: %q", e.out.String())
	}
	e.eng.Close()
	e.st.Close()
	for _, f := range []string{"db.sqlite", "db.sqlite-wal"} {
		data, err := os.ReadFile(filepath.Join(e.dir, f))
		if err != nil {
			continue
		}
		for _, s := range []string{pw, "K3y-Sentinel-99"} {
			if bytes.Contains(data, []byte(s)) {
				t.Fatalf("%s contains secret %q", f, s)
			}
		}
	}
}
