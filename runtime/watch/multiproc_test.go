package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// Environment of TestWatchProcess, the test binary re-executed as one of
// several watchers of one folder sharing one PostgreSQL database.
const (
	helperConf     = "LIGHTSOUT_WATCH_HELPER_CONF"
	helperDir      = "LIGHTSOUT_WATCH_HELPER_DIR"
	helperSite     = "LIGHTSOUT_WATCH_HELPER_SITE"
	helperParallel = "LIGHTSOUT_WATCH_HELPER_PARALLEL"
	helperPoll     = "LIGHTSOUT_WATCH_HELPER_POLL"     // a duration; "0": inotify
	helperBindings = "LIGHTSOUT_WATCH_HELPER_BINDINGS" // "1": the default bindings (ilo, ...) instead of none
	watchingMarker = "WATCHING "
)

// TestWatchProcess is not a test: run by the multi-process tests with the
// helper environment set, it watches a folder until SIGTERM.
func TestWatchProcess(t *testing.T) {
	conf := os.Getenv(helperConf)
	if conf == "" {
		t.Skip("helper process of the multi-process watch tests")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	mods := []module.Module{}
	if os.Getenv(helperBindings) == "1" {
		mods = nil
	}
	a, err := app.Open(ctx, app.Options{ConfigPath: conf, ScriptDirs: []string{os.Getenv(helperSite)},
		Modules: mods, Stdout: discard{}, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	parallel := 10
	fmt.Sscan(os.Getenv(helperParallel), &parallel)
	poll := 100 * time.Millisecond
	if v := os.Getenv(helperPoll); v != "" {
		if poll, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	w, err := New(a, Options{Dir: os.Getenv(helperDir), Parallel: parallel, Settle: -1, Poll: poll})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "%s%d\n", watchingMarker, os.Getpid())
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// cluster is a set of watcher processes over one folder and one database.
type cluster struct {
	t     testing.TB
	e     *env
	conf  string
	procs []*exec.Cmd
	outs  []*testenv.SyncBuffer
}

// newCluster opens a PostgreSQL installation with nodes and starts n
// watcher processes (parallel jobs each) on one folder.
// timeout is [conductor] heartbeat_timeout in seconds.
func newCluster(t *testing.T, nodes, n, parallel, timeout int) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test: not with -short")
	}
	t.Setenv("LIGHTSOUT_TEST_STORE", "postgres")
	e := newEnvTimeout(t, nodes, timeout) // the processes share its config and its state dir's secret key
	c := &cluster{t: t, e: e, conf: filepath.Join(e.state, "lightsout.conf")}
	if err := os.MkdirAll(filepath.Join(e.dir, Incoming), 0o755); err != nil {
		t.Fatal(err)
	}
	for range n {
		c.start(parallel)
	}
	t.Cleanup(c.stopAll)
	return c
}

// procs returns an empty cluster over e's installation (any store).
func procs(t testing.TB, e *env) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test: not with -short")
	}
	c := &cluster{t: t, e: e, conf: filepath.Join(e.state, "lightsout.conf")}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) start(parallel int) {
	c.t.Helper()
	c.startIn(c.e.dir, parallel)
}

// startIn starts a watcher process of folder dir; env is added to its
// environment.
func (c *cluster) startIn(dir string, parallel int, env ...string) {
	c.t.Helper()
	args := []string{"-test.run=^TestWatchProcess$", "-test.v"}
	if d := os.Getenv("LIGHTSOUT_WATCH_PROFILE_DIR"); d != "" { // CPU profiles of the watcher processes
		args = append(args, fmt.Sprintf("-test.cpuprofile=%s/watcher-%d-%d.pprof", d, os.Getpid(), len(c.procs)))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperConf+"="+c.conf, helperDir+"="+dir, helperSite+"="+c.e.site,
		fmt.Sprintf("%s=%d", helperParallel, parallel))
	cmd.Env = append(cmd.Env, env...)
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs = append(c.procs, cmd)
	c.outs = append(c.outs, out)
	waitFor(c.t, time.Minute, "watcher process to start", func() bool {
		return strings.Contains(out.String(), watchingMarker) || cmd.ProcessState != nil
	})
}

// stopAll stops the live processes with SIGTERM and waits for them.
func (c *cluster) stopAll() {
	for i, p := range c.procs {
		if p.ProcessState != nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil && !strings.Contains(err.Error(), "killed") {
				c.t.Errorf("watcher %d: %v\n%s", i, err, c.outs[i])
			}
		case <-time.After(time.Minute):
			_ = p.Process.Kill()
			<-done
			c.t.Errorf("watcher %d did not stop on SIGTERM", i)
		}
	}
}

// kill9 kills process i with SIGKILL.
func (c *cluster) kill9(i int) {
	c.t.Helper()
	if err := c.procs[i].Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	_ = c.procs[i].Wait()
}

// stop stops process i with SIGTERM and waits for it to exit cleanly.
func (c *cluster) stop(i int) {
	c.t.Helper()
	if err := c.procs[i].Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	if err := c.procs[i].Wait(); err != nil {
		c.t.Fatalf("watcher %d on SIGTERM: %v\n%s", i, err, c.outs[i])
	}
}

// conductor returns the conductor (leases.go) process pid registered as,
// nil when it is not (or no longer) registered.
func (c *cluster) conductor(pid int) *store.Conductor {
	c.t.Helper()
	l, ok := c.e.a.Store.(interface {
		Conductors(ctx context.Context) ([]store.Conductor, error)
	})
	if !ok {
		c.t.Fatal("the store has no conductors")
	}
	cs, err := l.Conductors(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, cd := range cs {
		if cd.PID == pid {
			return &cd
		}
	}
	return nil
}

// fenced reports whether process pid was taken over (fenced).
func (c *cluster) fenced(pid int) bool {
	cd := c.conductor(pid)
	return cd != nil && cd.FencedAt != nil
}

// dropJobs drops n jobs, each sleeping secs on node n(i%nodes).
func (c *cluster) dropJobs(n, nodes int, secs string) []string {
	var names []string
	for i := range n {
		name := fmt.Sprintf("job%03d.json", i)
		c.e.drop(name, fmt.Sprintf(`{"id":"j%03d","action":"run","script":"slow","nodes":["n%02d"],"params":{"sleep":"%s"}}`, i, i%nodes, secs))
		names = append(names, name)
	}
	return names
}

// waitAll waits until every job finished, dumping the spool and the
// processes' errors when it does not.
func (c *cluster) waitAll(jobs int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for c.finishedCount() != jobs || len(c.e.jobs(Processing)) != 0 || len(c.e.jobs(Incoming)) != 0 {
		if time.Now().After(deadline) {
			for i, o := range c.outs {
				for _, l := range strings.Split(o.String(), "\n") {
					if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
						c.t.Logf("watcher %d: %s", i, l)
					}
				}
			}
			c.t.Fatalf("timed out after %v: %d of %d jobs finished; processing/ %v; incoming/ %v", d, c.finishedCount(), jobs,
				c.e.jobs(Processing), c.e.jobs(Incoming))
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// kill9MidFlight kills process 0 with SIGKILL once 20 jobs finished,
// then waits until all jobs finished and the killed process's runs were
// taken over (within the heartbeat timeout plus an interval).
func (c *cluster) kill9MidFlight(jobs int) {
	c.t.Helper()
	waitFor(c.t, 2*time.Minute, "20 jobs to finish", func() bool { return c.finishedCount() >= 20 })
	c.kill9(0)
	killedAt := time.Now()
	waitFor(c.t, 3*time.Minute, "every job to finish", func() bool {
		return c.finishedCount() == jobs && len(c.e.jobs(Processing)) == 0 && len(c.e.jobs(Incoming)) == 0
	})
	c.t.Logf("all %d jobs finished %v after the kill", jobs, time.Since(killedAt).Round(time.Millisecond))
	waitFor(c.t, time.Minute, "the killed process's runs and leases to be taken over", func() bool {
		runs, _ := c.e.a.Store.ListRuns(context.Background(), store.RunFilter{Status: store.StatusRunning})
		return len(runs) == 0
	})
}

// finishedCount counts the job files in done/ and failed/.
func (c *cluster) finishedCount() int { return len(c.e.jobs(Done)) + len(c.e.jobs(Failed)) }

// checkExactlyOnce asserts every job ended exactly once, nothing is left
// running, leased or claimed, and no node of a job succeeded twice.
func (c *cluster) checkExactlyOnce(names []string) {
	t := c.t
	t.Helper()
	ctx := context.Background()
	seen := map[string]int{}
	for _, sub := range []string{Done, Failed} {
		for _, n := range c.e.jobs(sub) {
			seen[n]++
			r := c.e.result(sub, n)
			if sub == Failed && r.Error == "" {
				t.Errorf("%s failed without a reason", n)
			}
		}
	}
	for _, n := range names {
		if seen[n] != 1 {
			t.Errorf("job %s ended %d times (done/ %v)", n, seen[n], seen)
		}
	}
	if len(seen) != len(names) {
		t.Errorf("%d job files finished, want %d", len(seen), len(names))
	}
	if l := c.e.jobs(Processing); len(l) > 0 {
		t.Errorf("left in processing/: %v", l)
	}
	if l := c.e.jobs(Incoming); len(l) > 0 {
		t.Errorf("left in incoming/: %v", l)
	}
	st := c.e.a.Store
	jobs, err := st.ListJobs(ctx, store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if !j.Archived || !store.JobFinal(j.Status) {
			t.Errorf("job row %d (%s) is %s, archived %v", j.ID, j.Name, j.Status, j.Archived)
		}
		runs, err := st.JobRuns(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, jr := range runs {
			ok := 0
			for _, id := range append(append([]int64{}, jr.Previous...), jr.RunID) {
				if r, err := st.GetRun(ctx, id); err == nil && r.Status == store.StatusSucceeded {
					ok++
				}
			}
			if ok > 1 {
				t.Errorf("job %s succeeded %d times on node %s", j.Name, ok, jr.Node)
			}
		}
	}
	checkClean(t, st)
	nodes, _ := st.ListNodes(ctx)
	for _, n := range nodes {
		if n.Lease != nil {
			t.Errorf("node %s still leased by conductor %d", n.Name, n.Lease.Conductor)
		}
	}
}

// TestThreeWatchersKill9: three processes on one folder and one
// PostgreSQL database run 100 jobs; one is killed with SIGKILL mid-flight.
// Every job ends exactly once, and nothing stays running or leased.
func TestThreeWatchersKill9(t *testing.T) {
	const nodes, jobs = 30, 100
	c := newCluster(t, nodes, 3, 10, 2)
	names := c.dropJobs(jobs, nodes, "0.3")
	c.kill9MidFlight(jobs)
	c.stopAll()
	c.checkExactlyOnce(names)
	runs, _ := c.e.a.Store.ListRuns(context.Background(), store.RunFilter{Status: store.StatusInterrupted})
	t.Logf("%d runs interrupted by the kill", len(runs))
}

// TestThreeWatchersKill9BMC is TestThreeWatchersKill9 with real jobs: each
// runs the bmc playbook, whose call waits on its node's simulated iLO
// (150 ms per RIBCL document: two for a process's first call to an iLO,
// the probe and the power status, one afterwards), in processes with the
// default bindings (bmcCluster). Every job ends exactly once, no node stays
// leased past the expiry, no run stays running; every job that ended done
// made its call.
func TestThreeWatchersKill9BMC(t *testing.T) {
	const nodes, jobs = 30, 100
	c := newBMCCluster(t, nodes, 3, 10, 2, 150*time.Millisecond)
	files := c.dropBMCJobs(jobs)
	c.kill9MidFlight(jobs)
	c.stopAll()
	c.checkExactlyOnce(files)
	done, failed := c.checkResults()
	interrupted, _ := c.e.a.Store.ListRuns(context.Background(), store.RunFilter{Status: store.StatusInterrupted})
	t.Logf("%d jobs done, %d failed; %d runs interrupted by the kill", done, failed, len(interrupted))
	if len(interrupted) == 0 {
		t.Error("the kill interrupted no run: it hit no job in flight")
	}
	if done < jobs/2 {
		t.Errorf("only %d of %d jobs succeeded", done, jobs)
	}
}

// TestThreeWatchersSIGSTOPBMC: one of three processes running bmc jobs
// (bmcCluster) is stopped with SIGSTOP while its runs wait on their iLOs.
// Once its heartbeat is older than the timeout the others take it over:
// its runs are interrupted, its node leases released, its jobs adopted
// (their claim generation grows) and finished by the live processes. The
// store refuses the stopped process's writes (ErrFenced). Resumed with
// SIGCONT, it tries to record the end of its runs: refused with ErrFenced,
// which it logs; it gives the jobs up and stops with ErrFenced, having
// changed nothing. Every job ends exactly once, no run stays running, no
// node stays leased.
func TestThreeWatchersSIGSTOPBMC(t *testing.T) {
	const nodes, jobs = 30, 100
	// A process stopped inside a transaction holds its row locks until
	// the server ends its session (idle_in_transaction_session_timeout,
	// 10 s, runtime/store): live processes may wait that long, so the
	// heartbeat timeout is longer.
	c := newBMCCluster(t, nodes, 3, 10, 15, 150*time.Millisecond)
	ctx := context.Background()
	st := c.e.a.Store
	files := c.dropBMCJobs(jobs)
	waitFor(t, 2*time.Minute, "10 jobs to finish", func() bool { return c.finishedCount() >= 10 })
	victim := c.procs[0]
	cd := c.conductor(victim.Process.Pid)
	if cd == nil {
		t.Fatal("the watcher process is not registered as a conductor")
	}
	// Stop it while it has runs in flight (a run can end between the look
	// and the signal: then resume and try again).
	for try := 0; ; try++ {
		if try == 20 {
			t.Fatal("never caught the process with a run in flight")
		}
		waitFor(t, time.Minute, "a run of the process in flight", func() bool { return len(c.runsOf(cd.ID, store.StatusRunning)) > 0 })
		if err := victim.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the process to stop", func() bool { return procState(victim.Process.Pid) == "T" })
		if len(c.runsOf(cd.ID, store.StatusRunning)) > 0 {
			break
		}
		if err := victim.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	stoppedAt := time.Now()
	jobsHeld, err := st.ListJobs(ctx, store.JobFilter{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	held := map[int64]*store.Job{}
	for _, j := range jobsHeld {
		if j.Conductor == cd.ID {
			held[j.ID] = j
		}
	}
	waitFor(t, time.Minute, "the stopped process to be taken over", func() bool { return c.fenced(victim.Process.Pid) })
	// its runs in flight are interrupted (a write it sent just before it
	// stopped may have ended one), its node leases released
	leased := func() []string {
		ns, err := st.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			if n.Lease != nil && n.Lease.Conductor == cd.ID {
				out = append(out, n.Name)
			}
		}
		return out
	}
	waitFor(t, time.Minute, "the stopped process's runs and leases to be taken over", func() bool {
		return len(c.runsOf(cd.ID, store.StatusRunning)) == 0 && len(leased()) == 0
	})
	t.Logf("taken over %v after SIGSTOP", time.Since(stoppedAt).Round(time.Millisecond))
	inflight := c.runsOf(cd.ID, store.StatusInterrupted)
	if len(inflight) == 0 {
		t.Fatal("the takeover interrupted no run of the stopped process: it had none in flight")
	}
	for _, r := range inflight {
		if !strings.Contains(r.Error, "stopped heartbeating") {
			t.Errorf("run %d of the stopped process: interrupted with %q", r.ID, r.Error)
		}
	}
	t.Logf("stopped process %d (conductor %d): %d runs interrupted, %d jobs claimed", victim.Process.Pid, cd.ID, len(inflight), len(held))
	// the store refuses its writes
	l, ok := st.(store.Leaser)
	if !ok {
		t.Fatal("the store has no leases")
	}
	if err := l.Heartbeat(ctx, cd.ID, 15*time.Second, time.Now()); !errors.Is(err, store.ErrFenced) {
		t.Errorf("heartbeat of the stopped process: %v, want ErrFenced", err)
	}
	if err := st.FinishRun(ctx, inflight[0].ID, store.StatusSucceeded, ""); !errors.Is(err, store.ErrFenced) {
		t.Errorf("finishing a run of the stopped process: %v, want ErrFenced", err)
	}
	if _, err := l.AcquireLease(ctx, inflight[0].NodeUUID, inflight[0].ID, cd.ID, 15*time.Second, time.Now()); !errors.Is(err, store.ErrFenced) {
		t.Errorf("a lease for the stopped process: %v, want ErrFenced", err)
	}
	if _, err := c.e.a.Shared().Store.AdoptJobs(ctx, cd.ID, ""); !errors.Is(err, store.ErrFenced) {
		t.Errorf("adoption by the stopped process: %v, want ErrFenced", err)
	}
	// the live processes adopt its jobs and finish every job
	waitFor(t, 3*time.Minute, "every job to finish", func() bool {
		return c.finishedCount() == jobs && len(c.e.jobs(Processing)) == 0 && len(c.e.jobs(Incoming)) == 0
	})
	for id, was := range held {
		j, err := st.GetJob(ctx, id)
		if err != nil || j.Conductor == cd.ID || j.Generation <= was.Generation || !j.Archived {
			t.Errorf("job %s of the stopped process: %+v %v (was claim %d)", was.Name, j, err, was.Generation)
		}
		if err == nil {
			// its old claim is refused
			err := st.SetJobRun(ctx, &store.JobRun{Job: id, Generation: was.Generation, Node: "late", Status: store.StatusSucceeded})
			if !errors.Is(err, store.ErrFenced) {
				t.Errorf("a run recorded under the stopped process's claim of job %s: %v, want ErrFenced", was.Name, err)
			}
		}
	}
	before := map[int64]store.Run{}
	for _, r := range inflight {
		got, _ := st.GetRun(ctx, r.ID)
		before[r.ID] = *got
	}
	// SIGCONT: it tries to write, is refused, logs it and stops
	if err := victim.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("the resumed process exited cleanly; want it to stop with ErrFenced:\n%s", c.outs[0])
		}
	case <-time.After(time.Minute):
		_ = victim.Process.Kill()
		<-exited
		t.Fatalf("the resumed process did not stop:\n%s", c.outs[0])
	}
	out := c.outs[0].String()
	var refused []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "cannot record the end of a run of a job") && strings.Contains(line, store.ErrFenced.Error()) {
			refused = append(refused, line)
		}
	}
	t.Logf("the resumed process logged %d refused run ends, e.g. %.300s", len(refused), strings.Join(refused, "\n"))
	switch {
	case len(refused) == 0:
		t.Errorf("the resumed process did not log a refused write (ErrFenced):\n%s", out)
	case !strings.Contains(out, "another process took over this process's claims"):
		t.Errorf("the resumed process did not log that it gives its jobs up:\n%s", out)
	case !strings.Contains(out, "watch folder "+c.e.dir+": "+store.ErrFenced.Error()):
		t.Errorf("the resumed process did not stop with ErrFenced:\n%s", out)
	}
	for id, was := range before {
		if got, _ := st.GetRun(ctx, id); got.Status != was.Status || got.Error != was.Error || !sameTime(got.FinishedAt, was.FinishedAt) {
			t.Errorf("run %d changed after the stopped process resumed: %s %q, was %s %q", id, got.Status, got.Error, was.Status, was.Error)
		}
	}
	c.stopAll()
	c.checkExactlyOnce(files)
	done, failed := c.checkResults()
	t.Logf("%d jobs done, %d failed; %d runs interrupted by the stop", done, failed, len(inflight))
	if done < jobs/2 {
		t.Errorf("only %d of %d jobs succeeded", done, jobs)
	}
}

// runsOf lists the runs of conductor cd in status.
func (c *cluster) runsOf(cd int64, status string) []*store.Run {
	c.t.Helper()
	runs, err := c.e.a.Store.ListRuns(context.Background(), store.RunFilter{Status: status})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []*store.Run
	for _, r := range runs {
		if r.Conductor == cd {
			out = append(out, r)
		}
	}
	return out
}

// procState is the state letter of process pid ("T": stopped).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// TestWatchersPostgresRestart: PostgreSQL restarts while three processes
// run bmc jobs (bmcCluster): each process reconnects and runs jobs again,
// every job ends exactly once and succeeds: a store call that meets the
// restart (a node lease, a run's record, a job's claim) is retried once
// the server is back (store.DB.retry) instead of failing its run. No run
// stays running, none is lost, no node stays leased.
func TestWatchersPostgresRestart(t *testing.T) {
	const nodes, jobs = 30, 60
	// a restart takes seconds: within the heartbeat timeout nobody is
	// taken over, the processes reconnect
	c := newBMCCluster(t, nodes, 3, 10, 30, 150*time.Millisecond)
	files := c.dropBMCJobs(jobs)
	waitFor(t, 2*time.Minute, "10 jobs to finish", func() bool { return c.finishedCount() >= 10 })
	testenv.RestartPostgres(t)
	restarted := time.Now()
	c.waitAll(jobs, 2*time.Minute)
	after := c.runsAfter(restarted)
	for i, p := range c.procs {
		cd := c.conductor(p.Process.Pid)
		if cd == nil || cd.FencedAt != nil {
			t.Errorf("watcher %d is not registered, or was taken over: %+v", i, cd)
			continue
		}
		if after[cd.ID] == 0 {
			t.Errorf("watcher %d (conductor %d) started no run after the restart: %v", i, cd.ID, after)
		}
	}
	c.stopAll() // each exits cleanly: none died of the restart
	c.checkExactlyOnce(files)
	runs, err := c.e.a.Store.ListRuns(context.Background(), store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byStatus := map[string]int{}
	for _, r := range runs {
		byStatus[r.Status]++
		if r.Status != store.StatusSucceeded && r.Error == "" {
			t.Errorf("run %d ended %s without an error", r.ID, r.Status)
		}
	}
	done, failed := c.checkResults()
	t.Logf("%d jobs done, %d failed; runs %v; runs started after the restart per conductor %v", done, failed, byStatus, after)
	if done != jobs || failed != 0 || byStatus[store.StatusSucceeded] != len(runs) {
		t.Errorf("%d of %d jobs succeeded, %d failed; runs %v: a restart must fail no job", done, jobs, failed, byStatus)
	}
}
