package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// siteScripts are the site playbooks the tests run.
func siteScripts() map[string]string {
	return map[string]string{
		"trivial.lua": `run.step("noop", function() end)`,
		"slow.lua":    `run.step("sleep", function() run.sleep(tonumber(params.sleep or "30")) end)`,
		"fail.lua":    `run.step("boom", function() error("boom on " .. node.name) end)`,
		// bmc: the job waits on its node's BMC (a simulated iLO charging
		// a latency for the call, bmc_test.go)
		"bmc.lua": `run.step("power", function()
			local bmc = require("ilo").connect()
			run.log("info", "power " .. bmc:get_host_power_status())
		end)`,
		"deploy.lua": `run.step("check instance_info", function()
			assert(node.instance_info.image_source == "http://127.0.0.1/img.qcow2", "image_source not applied")
		end)`,
		"clean.lua": `run.step("check", function()
			if params.mode == "manual" then
				local s = node.driver_internal_info.manual_clean_steps
				assert(s and s[1].step == "erase_devices" and s[1].args.passes == 2, "steps not recorded")
			else
				assert(params.mode == "automated", "mode " .. tostring(params.mode))
			end
			print("clean mode " .. params.mode)
		end)`,
	}
}

type env struct {
	t     testing.TB
	a     *app.App
	dir   string // spool
	state string
	site  string
}

// newEnv opens a real installation (SQLite, engine with no bindings) with
// n nodes n00..n(n-1) and the site scripts.
func newEnv(t testing.TB, nodes int) *env {
	t.Helper()
	return newEnvTimeout(t, nodes, 2)
}

// newEnvTimeout is newEnv with [conductor] heartbeat_timeout = timeout
// seconds (used by PostgreSQL stores).
func newEnvTimeout(t testing.TB, nodes, timeout int) *env {
	t.Helper()
	return newEnvModules(t, nodes, timeout, []module.Module{})
}

// newEnvBindings is newEnvTimeout with the default bindings (ilo, ...):
// scripts can call the simulated iLOs (bmc_test.go).
func newEnvBindings(t testing.TB, nodes, timeout int) *env {
	t.Helper()
	return newEnvModules(t, nodes, timeout, nil)
}

func newEnvModules(t testing.TB, nodes, timeout int, mods []module.Module) *env {
	t.Helper()
	state := t.TempDir()
	site := t.TempDir()
	for name, src := range siteScripts() {
		if err := os.WriteFile(filepath.Join(site, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(state, "lightsout.conf")
	if err := os.WriteFile(conf, []byte(testenv.StoreConf(t)+"[lightsout]\nstate_dir = "+state+
		fmt.Sprintf("\n[conductor]\nheartbeat_timeout = %d\nheartbeat_interval = 1\n", timeout)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, StateDir: state, ScriptDirs: []string{site},
		Modules: mods, Stdout: discard{}, Stderr: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e := &env{t: t, a: a, dir: filepath.Join(t.TempDir(), "spool"), state: state, site: site}
	for i := range nodes {
		e.node(fmt.Sprintf("n%02d", i))
	}
	return e
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (e *env) node(name string) {
	e.t.Helper()
	_, err := e.a.CreateNode(context.Background(), app.NodeSpec{Name: name, Driver: "agent_ilo",
		DriverInfo: map[string]any{"ilo_address": "127.0.0.1", "ilo_username": "admin", "ilo_password": "Sentinel-W4tch"}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// setState puts a node in a provision state (the verbs check it).
func (e *env) setState(name, state string) {
	e.t.Helper()
	if _, err := e.a.Store.UpdateNode(context.Background(), name, func(n *store.Node) error {
		n.ProvisionState = state
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// drop writes a job the way producers should: a .part file renamed into
// incoming/.
func (e *env) drop(name, body string) {
	e.t.Helper()
	in := filepath.Join(e.dir, Incoming)
	if err := os.MkdirAll(in, 0o755); err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(in, name+".part")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(in, name)); err != nil {
		e.t.Fatal(err)
	}
}

// running is a watcher running in the background.
type running struct {
	w      *Watcher
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (e *env) start(o Options) *running {
	e.t.Helper()
	o.Dir = e.dir
	if o.Settle == 0 {
		o.Settle = -1 // no settling unless asked
	}
	w, err := New(e.a, o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels the watcher and waits for Run to return.
func (r *running) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			r.err = fmt.Errorf("watcher did not stop")
		}
	})
	if r.err != nil {
		t.Errorf("watcher: %v", r.err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// jobs lists the job files (not results) in a spool sub-folder.
func (e *env) jobs(sub string) []string {
	entries, _ := os.ReadDir(filepath.Join(e.dir, sub))
	var out []string
	for _, x := range entries {
		n := x.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".result.json") {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (e *env) result(sub, name string) Result {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, sub, resultName(name)))
	if err != nil {
		e.t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("result of %s: %v\n%s", name, err, b)
	}
	return r
}

// finished waits until name is in done/ or failed/ and returns where and
// its result.
func (e *env) finished(name string, d time.Duration) (string, Result) {
	e.t.Helper()
	return e.finishedIn(e.t, name, d, Done, Failed)
}

// finishedIn waits until name is in one of subs.
func (e *env) finishedIn(t testing.TB, name string, d time.Duration, subs ...string) (string, Result) {
	t.Helper()
	var sub string
	waitFor(t, d, name+" to finish", func() bool {
		for _, s := range subs {
			if _, err := os.Stat(filepath.Join(e.dir, s, resultName(name))); err == nil {
				if _, err := os.Stat(filepath.Join(e.dir, s, name)); err == nil {
					sub = s
					return true
				}
			}
		}
		return false
	})
	return sub, e.result(sub, name)
}

// checkClean asserts no run is left running and no node locked.
func checkClean(t testing.TB, st store.Store) {
	t.Helper()
	ctx := context.Background()
	runs, err := st.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs left running: %d (%v)", len(runs), err)
	}
	nodes, _ := st.ListNodes(ctx)
	for _, n := range nodes {
		if n.Reservation != 0 {
			t.Fatalf("node %s still locked by run %d", n.Name, n.Reservation)
		}
	}
}

// collect is an Observer recording counts.
type collect struct {
	mu       sync.Mutex
	claimed  int
	finished map[string]int
	requeued int
	runs     map[string]int
}

func newCollect() *collect { return &collect{finished: map[string]int{}, runs: map[string]int{}} }

func (c *collect) JobClaimed()  { c.mu.Lock(); c.claimed++; c.mu.Unlock() }
func (c *collect) JobRequeued() { c.mu.Lock(); c.requeued++; c.mu.Unlock() }
func (c *collect) JobFinished(s string) {
	c.mu.Lock()
	c.finished[s]++
	c.mu.Unlock()
}
func (c *collect) RunFinished(_, s string, _ time.Duration) {
	c.mu.Lock()
	c.runs[s]++
	c.mu.Unlock()
}
