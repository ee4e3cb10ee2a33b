package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/daemon"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/watch"
)

// bin is the lightsout binary built once for the process tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lightsout-daemon-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "lightsout")
	build := exec.Command("go", "build", "-o", bin, "github.com/lightsout/lightsout/cmd/lightsout")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build lightsout: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inst is an installation shared by the test and the daemon processes.
type inst struct {
	t     *testing.T
	state string
	conf  string
	spool string
	a     *app.App
}

func newInst(t *testing.T, nodes int) *inst {
	t.Helper()
	state := t.TempDir()
	conf := filepath.Join(state, "lightsout.conf")
	if err := os.WriteFile(conf, []byte(testenv.StoreConf(t)+"[lightsout]\nstate_dir = "+state+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, StateDir: state, Modules: []module.Module{},
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	for i := range nodes {
		if _, err := a.CreateNode(context.Background(), app.NodeSpec{Name: fmt.Sprintf("n%02d", i), Driver: "agent_ilo",
			DriverInfo: map[string]any{"ilo_address": "127.0.0.1", "ilo_username": "admin", "ilo_password": "Sentinel-D43mon"}}); err != nil {
			t.Fatal(err)
		}
	}
	return &inst{t: t, state: state, conf: conf, spool: filepath.Join(t.TempDir(), "spool"), a: a}
}

// site writes a site script directory.
func (in *inst) site(scripts map[string]string) string {
	in.t.Helper()
	d := in.t.TempDir()
	for n, src := range scripts {
		if err := os.WriteFile(filepath.Join(d, n), []byte(src), 0o644); err != nil {
			in.t.Fatal(err)
		}
	}
	return d
}

func (in *inst) drop(name, body string) {
	in.t.Helper()
	dir := filepath.Join(in.spool, watch.Incoming)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		in.t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		in.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		in.t.Fatal(err)
	}
}

type proc struct {
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan error
	url  string
}

// serve starts `lightsout serve` and waits until it listens.
func (in *inst) serve(site string, extra ...string) *proc {
	in.t.Helper()
	args := append([]string{"--config", in.conf, "--state-dir", in.state, "--scripts", site, "serve", "--watch", in.spool,
		"--listen", "127.0.0.1:0", "--settle", "0"}, extra...)
	p := &proc{cmd: exec.Command(bin, args...), out: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "LIGHTSOUT_SECRET_KEY=")
	if err := p.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	in.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)
	waitFor(in.t, 30*time.Second, "the daemon to listen", func() bool {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			p.url = m[1]
			return true
		}
		select {
		case err := <-p.done:
			in.t.Fatalf("daemon exited: %v\n%s", err, p.out.String())
		default:
		}
		return false
	})
	return p
}

func (p *proc) kill9(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // for the cleanup
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// files lists the job files (not results, not temporaries) of a sub-folder.
func (in *inst) files(sub string) []string {
	entries, _ := os.ReadDir(filepath.Join(in.spool, sub))
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, ".result.json") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (in *inst) result(sub, name string) watch.Result {
	in.t.Helper()
	b, err := os.ReadFile(filepath.Join(in.spool, sub, strings.TrimSuffix(name, ".json")+".result.json"))
	if err != nil {
		in.t.Fatal(err)
	}
	var r watch.Result
	if err := json.Unmarshal(b, &r); err != nil {
		in.t.Fatal(err)
	}
	return r
}

// cli runs the binary and returns stdout.
func (in *inst) cli(args ...string) string {
	in.t.Helper()
	cmd := exec.Command(bin, append([]string{"--config", in.conf, "--state-dir", in.state}, args...)...)
	cmd.Env = append(os.Environ(), "LIGHTSOUT_SECRET_KEY=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		in.t.Fatalf("lightsout %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

type runJSON struct {
	ID     int64  `json:"id"`
	Script string `json:"script"`
	Node   string `json:"node"`
	Status string `json:"status"`
}

func (in *inst) runsList() map[int64]runJSON {
	in.t.Helper()
	var runs []runJSON
	if err := json.Unmarshal([]byte(in.cli("runs", "list", "--json")), &runs); err != nil {
		in.t.Fatal(err)
	}
	out := map[int64]runJSON{}
	for _, r := range runs {
		out[r.ID] = r
	}
	return out
}

// checkClean: no run left running (per `runs list`), no node locked.
func (in *inst) checkClean() {
	in.t.Helper()
	for _, r := range in.runsList() {
		if r.Status == store.StatusRunning {
			in.t.Fatalf("run %d left running", r.ID)
		}
	}
	var nodes []map[string]any
	json.Unmarshal([]byte(in.cli("node", "list", "--json")), &nodes)
	for _, n := range nodes {
		if r, ok := n["reservation"]; ok && r != nil && r != float64(0) {
			in.t.Fatalf("node %v still locked by run %v", n["name"], r)
		}
	}
}

// exactlyOnce checks that each job ended in done/ or failed/ exactly
// once, nothing is left in incoming/ or processing/, and returns where
// each is.
func (in *inst) exactlyOnce(names []string) map[string]string {
	in.t.Helper()
	where := map[string]string{}
	for _, sub := range []string{watch.Done, watch.Failed} {
		for _, f := range in.files(sub) {
			if prev, dup := where[f]; dup {
				in.t.Fatalf("%s is in %s and %s", f, prev, sub)
			}
			where[f] = sub
		}
	}
	if len(where) != len(names) {
		in.t.Fatalf("%d jobs finished, want %d: %v", len(where), len(names), where)
	}
	for _, n := range names {
		if where[n] == "" {
			in.t.Fatalf("%s did not finish (or finished under another name): %v", n, where)
		}
	}
	if l := append(in.files(watch.Incoming), in.files(watch.Processing)...); len(l) != 0 {
		in.t.Fatalf("left over: %v", l)
	}
	return where
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metric(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

// Test200JobsOn50Nodes: 200 jobs dropped at once into a running daemon
// all end in done/ with results that match `runs list`; /metrics and
// /healthz report them; SIGTERM stops the daemon cleanly.
func Test200JobsOn50Nodes(t *testing.T) {
	in := newInst(t, 50)
	site := in.site(map[string]string{"trivial.lua": `run.step("noop", function() end)`})
	p := in.serve(site, "--parallel", "16")
	var names []string
	for i := range 200 {
		n := fmt.Sprintf("job-%03d.json", i)
		names = append(names, n)
		in.drop(n, fmt.Sprintf(`{"id":"j%d","action":"run","script":"trivial","nodes":["n%02d"]}`, i, i%50))
	}
	waitFor(t, 90*time.Second, "200 jobs finished", func() bool { return len(in.files(watch.Done))+len(in.files(watch.Failed)) == 200 })
	where := in.exactlyOnce(names)
	runs := in.runsList()
	if len(runs) != 200 {
		t.Fatalf("runs list has %d runs, want 200", len(runs))
	}
	for i, n := range names {
		if where[n] != watch.Done {
			t.Fatalf("%s in %s: %+v", n, where[n], in.result(where[n], n))
		}
		r := in.result(watch.Done, n)
		run, ok := runs[r.RunIDs[0]]
		if !ok || r.Job != fmt.Sprintf("j%d", i) || len(r.RunIDs) != 1 || run.Status != store.StatusSucceeded ||
			run.Node != fmt.Sprintf("n%02d", i%50) || r.Nodes[0].Status != run.Status || run.Script != "trivial" {
			t.Fatalf("%s: result %+v does not match runs list %+v", n, r, run)
		}
	}
	in.checkClean()
	code, body := get(t, p.url+"/metrics")
	for name, want := range map[string]string{
		"lightsout_jobs_done_total":                                "200",
		"lightsout_jobs_claimed_total":                             "200",
		`lightsout_runs_total{status="succeeded"}`:                 "200",
		`lightsout_run_duration_seconds_count{status="succeeded"}`: "200",
		"lightsout_jobs_queued":                                    "0",
		"lightsout_jobs_in_flight":                                 "0",
		`lightsout_jobs_failed_total{reason="invalid"}`:            "0",
	} {
		if got := metric(body, name); code != 200 || got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	if code, body := get(t, p.url+"/healthz"); code != 200 || !strings.Contains(body, `"status":"ok"`) || !strings.Contains(body, `"mode":"inotify"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	if !regexp.MustCompile(`msg="agent callback API listening" url=http://127\.0\.0\.1:\d+`).MatchString(p.out.String()) {
		t.Errorf("serve did not start the agent callback API:\n%s", p.out.String())
	}
	if !regexp.MustCompile(`msg="built-in publisher listening" url=http://127\.0\.0\.1:\d+`).MatchString(p.out.String()) {
		t.Errorf("serve did not start the built-in publisher:\n%s", p.out.String())
	}
	if strings.Contains(p.out.String(), "Sentinel-D43mon") {
		t.Fatal("a node secret reached the log")
	}
}

// TestKill9WithJobsInFlight: kill -9 of the daemon while 50 jobs run, then
// a restart: every job ends in done/ or failed/ exactly once, no run is
// left running and no node locked. The interrupted runs are listed as
// previous runs of their node.
func TestKill9WithJobsInFlight(t *testing.T) {
	in := newInst(t, 50)
	stuck := in.site(map[string]string{"work.lua": `run.step("forever", function() run.sleep(3600) end)`})
	quick := in.site(map[string]string{"work.lua": `run.step("quick", function() end)`})
	p := in.serve(stuck, "--parallel", "50")
	var names []string
	for i := range 50 {
		n := fmt.Sprintf("k%02d.json", i)
		names = append(names, n)
		in.drop(n, fmt.Sprintf(`{"action":"run","script":"work","nodes":["n%02d"]}`, i))
	}
	ctx := context.Background()
	waitFor(t, 60*time.Second, "50 runs in flight", func() bool {
		runs, _ := in.a.Store.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
		return len(runs) == 50
	})
	p.kill9(t)
	if n := len(in.files(watch.Processing)); n != 50 {
		t.Fatalf("%d jobs in processing/ after kill -9, want 50", n)
	}
	p = in.serve(quick, "--parallel", "50")
	waitFor(t, 60*time.Second, "50 jobs finished", func() bool { return len(in.files(watch.Done))+len(in.files(watch.Failed)) == 50 })
	where := in.exactlyOnce(names)
	runs := in.runsList()
	for _, n := range names {
		r := in.result(where[n], n)
		if where[n] != watch.Done || r.Attempts != 2 || len(r.Nodes) != 1 || len(r.Nodes[0].PreviousRunIDs) != 1 {
			t.Fatalf("%s in %s: %+v", n, where[n], r)
		}
		if prev := runs[r.Nodes[0].PreviousRunIDs[0]]; prev.Status != store.StatusInterrupted {
			t.Fatalf("%s: previous run %+v", n, prev)
		}
		if run := runs[r.RunIDs[0]]; run.Status != store.StatusSucceeded {
			t.Fatalf("%s: run %+v", n, run)
		}
	}
	in.checkClean()
	_, body := get(t, p.url+"/metrics")
	if got := metric(body, "lightsout_jobs_done_total"); got != "50" {
		t.Fatalf("jobs done after restart = %q", got)
	}
}

// TestKill9AtManyMoments kills the daemon at several points while jobs
// stream through (claiming, running, finishing), restarting each time:
// every job still ends exactly once, nothing is left running or locked.
func TestKill9AtManyMoments(t *testing.T) {
	in := newInst(t, 10)
	site := in.site(map[string]string{"work.lua": `run.step("a", function() end) run.step("b", function() end)`})
	var names []string
	for i := range 80 {
		n := fmt.Sprintf("m%02d.json", i)
		names = append(names, n)
		in.drop(n, fmt.Sprintf(`{"action":"run","script":"work","nodes":["n%02d"]}`, i%10))
	}
	finished := func() int { return len(in.files(watch.Done)) + len(in.files(watch.Failed)) }
	for _, at := range []int{1, 15, 35, 55} {
		p := in.serve(site, "--parallel", "8", "--max-attempts", "5")
		waitFor(t, 60*time.Second, fmt.Sprintf("%d jobs finished", at), func() bool { return finished() >= at })
		p.kill9(t)
	}
	last := in.serve(site, "--parallel", "8", "--max-attempts", "5")
	deadline := time.Now().Add(60 * time.Second)
	for finished() != len(names) {
		if time.Now().After(deadline) {
			t.Fatalf("jobs not finished: incoming %v processing %v\n%s", in.files(watch.Incoming), in.files(watch.Processing), last.out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	where := in.exactlyOnce(names)
	runs := in.runsList()
	retried := 0
	for _, n := range names {
		r := in.result(where[n], n)
		if where[n] != watch.Done {
			t.Fatalf("%s failed: %+v", n, r)
		}
		if run := runs[r.RunIDs[0]]; run.Status != store.StatusSucceeded {
			t.Fatalf("%s: run %+v", n, run)
		}
		if r.Attempts > 1 {
			retried++
		}
	}
	interrupted := 0
	for _, r := range runs {
		if r.Status == store.StatusInterrupted {
			interrupted++
		}
	}
	if retried == 0 || interrupted == 0 {
		t.Fatalf("the kills hit no job in flight (retried %d, interrupted runs %d): the test proved nothing", retried, interrupted)
	}
	t.Logf("%d jobs retried, %d runs interrupted by the kills", retried, interrupted)
	in.checkClean()
}

// TestSIGTERMGracePeriod: SIGTERM stops claiming; /healthz says stopping;
// runs still going when the grace period ends are cancelled and their jobs
// go back to incoming/; the process exits 0.
func TestSIGTERMGracePeriod(t *testing.T) {
	in := newInst(t, 2)
	site := in.site(map[string]string{"work.lua": `run.step("long", function() run.sleep(3600) end)`})
	p := in.serve(site, "--grace", "1s")
	in.drop("a.json", `{"action":"run","script":"work","nodes":["n00"]}`)
	in.drop("b.json", `{"action":"run","script":"work","nodes":["n01"]}`)
	ctx := context.Background()
	waitFor(t, 30*time.Second, "2 runs", func() bool {
		runs, _ := in.a.Store.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
		return len(runs) == 2
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	sawStopping := false
	waitFor(t, 30*time.Second, "exit after SIGTERM", func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			if err != nil {
				t.Fatalf("exit: %v\n%s", err, p.out.String())
			}
			return true
		default:
		}
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sawStopping = sawStopping || (resp.StatusCode == 503 && strings.Contains(string(b), `"stopping"`))
		}
		return false
	})
	if !sawStopping {
		t.Error("/healthz never answered 503 stopping during the grace period")
	}
	if got := in.files(watch.Incoming); len(got) != 2 {
		t.Fatalf("incoming after SIGTERM: %v (processing %v)\n%s", got, in.files(watch.Processing), p.out.String())
	}
	in.checkClean()
	runs, _ := in.a.Store.ListRuns(ctx, store.RunFilter{Status: store.StatusCancelled})
	if len(runs) != 2 {
		t.Fatalf("%d cancelled runs, want 2", len(runs))
	}
}

// TestWatchOnceCLI: `lightsout watch DIR --once --poll` drains the folder
// and exits 0 (cron, polling-only mounts).
func TestWatchOnceCLI(t *testing.T) {
	in := newInst(t, 2)
	site := in.site(map[string]string{"trivial.lua": `run.step("noop", function() end)`})
	for i := range 6 {
		in.drop(fmt.Sprintf("c%d.yaml", i), fmt.Sprintf("action: run\nscript: trivial\nnodes: [n%02d]\n", i%2))
	}
	in.drop("bad.json", `{"action":"frob"}`)
	in.cli("--scripts", site, "watch", in.spool, "--once", "--poll", "50ms", "--settle", "0")
	if d, f := in.files(watch.Done), in.files(watch.Failed); len(d) != 6 || len(f) != 1 {
		t.Fatalf("done %v failed %v", d, f)
	}
}

// TestBadFolderExitCode: a watch folder that cannot be used is a usage
// error (exit 2) naming the problem.
func TestBadFolderExitCode(t *testing.T) {
	in := newInst(t, 0)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	cmd := exec.Command(bin, "--config", in.conf, "--state-dir", in.state, "serve", "--watch", file, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "is a file, not a directory") {
		t.Fatalf("err %v\n%s", err, out)
	}
}

// TestMetricsOnEvent: call events are counted by module and outcome, with
// iLO calls on their own; odd names are bounded.
func TestMetricsOnEvent(t *testing.T) {
	m := daemon.NewMetrics()
	m.OnEvent("call", "ilo.power_on", map[string]any{"outcome": "ok"})
	m.OnEvent("call", "ilo.get_power", map[string]any{"outcome": "timeout"})
	m.OnEvent("call", "swift.upload", map[string]any{"outcome": "ok"})
	m.OnEvent("call", "Weird Name!", map[string]any{"outcome": strings.Repeat("x", 100)})
	m.OnEvent("log", "info", map[string]any{"msg": "ignored"})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for name, want := range map[string]string{
		`lightsout_ilo_calls_total{outcome="ok"}`:               "1",
		`lightsout_ilo_calls_total{outcome="timeout"}`:          "1",
		`lightsout_calls_total{module="swift",outcome="ok"}`:    "1",
		`lightsout_calls_total{module="other",outcome="other"}`: "1",
		`lightsout_calls_total{module="ilo",outcome="ok"}`:      "1",
	} {
		if got := metric(body, name); got != want {
			t.Errorf("%s = %q, want %s\n", name, got, want)
		}
	}
}
