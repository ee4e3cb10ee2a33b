package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/watch"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// simChildEnv, when set in the environment ("K:GEN8:GEN10"), makes
// TestSimChildProcess the simulator process number K of a fleet benchmark.
const simChildEnv = "LIGHTSOUT_SIM_CHILD"

// fdsPerServer is what one simulated server holds open: its HTTPS
// listener, its IPMI UDP socket and its virtual disk.
const fdsPerServer = 3

// TestSimChildProcess is not a test: run by BenchmarkInspect10k with
// LIGHTSOUT_SIM_CHILD set, it serves GEN8 Gen8 and GEN10 Gen10 simulated
// iLOs charging their latency profile, writes the inventory to
// LIGHTSOUT_SIM_INVENTORY, says "ready" on stdout and serves until its
// stdin closes; then it prints its peak RSS in MB.
func TestSimChildProcess(t *testing.T) {
	spec := os.Getenv(simChildEnv)
	if spec == "" {
		t.Skip("the simulator process of BenchmarkInspect10k (run by it)")
	}
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want K:GEN8:GEN10", simChildEnv, spec)
	}
	k, _ := strconv.Atoi(parts[0])
	g8, _ := strconv.Atoi(parts[1])
	g10, _ := strconv.Atoi(parts[2])
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Go raised the soft limit to the hard one at start (os package,
	// Go >= 1.19); the servers must fit in it.
	if need := uint64((g8+g10)*fdsPerServer + 256); lim.Cur < need {
		t.Fatalf("RLIMIT_NOFILE %d (hard %d) is below the %d file descriptors %d servers need: run more simulator processes", lim.Cur, lim.Max, need, g8+g10)
	}
	var nodes []sim.NodeSpec
	if g8 > 0 {
		nodes = append(nodes, sim.NodeSpec{Generation: sim.Gen8, Count: g8})
	}
	if g10 > 0 {
		nodes = append(nodes, sim.NodeSpec{Generation: sim.Gen10, Count: g10})
	}
	s, err := sim.New(sim.Options{Nodes: nodes, Password: "bench-password", DiskSize: 1 << 20, Dir: t.TempDir(),
		DeployISO: "http://127.0.0.1:9/ipa-deploy.iso", // never fetched: inspection boots nothing
		Faults:    sim.Faults{Profile: os.Getenv("LIGHTSOUT_BENCH_PROFILE") != "0"}, Logger: slog.New(slog.DiscardHandler),
		Hardware: func(_ string, _ sim.Generation, _ int, hw *sim.Hardware) {
			// MACs unique across the simulator processes.
			for i := range hw.NICs {
				hw.NICs[i].MAC = fmt.Sprintf("52:%02x", 0x60+k) + hw.NICs[i].MAC[5:]
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteInventory(os.Getenv("LIGHTSOUT_SIM_INVENTORY")); err != nil {
		t.Fatal(err)
	}
	simtest.ServeChild(nil)
}

// simChild is one running simulator process.
type simChild struct {
	*simtest.Child
	inv string
}

// startSimChildren starts ceil(n/perProcess) simulator processes serving
// n servers in all (half Gen8, half Gen10) and returns them once each has
// written its inventory.
func startSimChildren(tb testing.TB, n, perProcess int) []*simChild {
	tb.Helper()
	procs := (n + perProcess - 1) / perProcess
	var children []*simChild
	for k := range procs {
		count := n/procs + min(1, max(0, n%procs-k))
		inv := filepath.Join(tb.TempDir(), fmt.Sprintf("inventory-%d.json", k))
		c := simtest.StartChild(tb, "TestSimChildProcess", fmt.Sprintf("%s=%d:%d:%d", simChildEnv, k, count/2, count-count/2), "LIGHTSOUT_SIM_INVENTORY="+inv)
		children = append(children, &simChild{Child: c, inv: inv})
	}
	for k, c := range children {
		c.WaitReady(tb, fmt.Sprintf("simulator process %d", k))
	}
	return children
}

// fleet10k starts n simulated iLOs in child processes of at most 2,500
// (startSimChildren) and an App with conf (INI text) holding them all as
// manageable nodes, imported with `node import`'s path (one import per
// simulator process; node names "p<K>-<name>"). It returns the App, the
// node names in simulator order and the simulator processes.
func fleet10k(b *testing.B, n int, conf string) (*env, []string, []*simChild) {
	b.Helper()
	children := startSimChildren(b, n, 2500)
	e := open(b, nil, conf)
	ctx := context.Background()
	var names []string
	began := time.Now()
	for k, c := range children {
		raw, err := os.ReadFile(c.inv)
		if err != nil {
			b.Fatal(err)
		}
		var inv []map[string]any
		if err := json.Unmarshal(raw, &inv); err != nil {
			b.Fatal(err)
		}
		for _, node := range inv {
			node["name"] = fmt.Sprintf("p%d-%s", k, node["name"])
			names = append(names, node["name"].(string))
		}
		raw, _ = json.Marshal(inv)
		path := c.inv + ".renamed"
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			b.Fatal(err)
		}
		if _, err := e.app.ImportNodes(ctx, path); err != nil {
			b.Fatal(err)
		}
	}
	imported := time.Since(began)
	for _, name := range names {
		if _, err := e.app.Manage(ctx, name); err != nil {
			b.Fatalf("manage %s: %v", name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %d nodes imported in %s, managed in %s\n", b.Name(), len(names),
		imported.Round(time.Millisecond), (time.Since(began) - imported).Round(time.Millisecond))
	return e, names, children
}

// BenchmarkInspect10k is issue 15's fleet benchmark: `lightsout inspect
// --all` (Engine.RunMany over the inspect playbook, the App's store,
// bindings and console capture) over 10,000 simulated iLOs, half Gen8
// (RIBCL) and half Gen10 (Redfish), each charging its generation's
// latency profile (sim/latency.go). The simulators run in child
// processes of at most 2,500 servers each (their file descriptors fit a
// 20,000 RLIMIT_NOFILE), so this process is the client alone.
//
// LIGHTSOUT_BENCH_NODES sets the fleet size (default 10000),
// LIGHTSOUT_BENCH_PARALLEL the runs at once (default 200),
// LIGHTSOUT_BENCH_PROFILE=0 turns the latency profile off,
// LIGHTSOUT_BENCH_INSPECT=K inspects K nodes spread over the fleet (all
// N are still simulated, imported and queued).
//
// Metrics: nodes/s; peak-RSS-MB, getrusage of this process (the client:
// target < 1 GB); goroutines-peak (sampled every 10 ms); sim-RSS-MB the
// largest simulator process; failed runs fail the benchmark.
//
//	LIGHTSOUT_BENCH_NODES=10000 go test ./runtime/e2e -run '^$' -bench Inspect10k -benchtime 1x -timeout 60m
func BenchmarkInspect10k(b *testing.B) {
	n := envInt("LIGHTSOUT_BENCH_NODES", 10000)
	parallel := envInt("LIGHTSOUT_BENCH_PARALLEL", 200)
	e, names, children := fleet10k(b, n, fmt.Sprintf("[lightsout]\nmax_parallel = %d\n[ilo]\nclient_timeout = 120\n", parallel))
	ctx := context.Background()
	if k := envInt("LIGHTSOUT_BENCH_INSPECT", len(names)); k < len(names) {
		// A sample spread over every simulator process and generation.
		step := len(names) / k
		sample := make([]string, 0, k)
		for i := 0; i < len(names) && len(sample) < k; i += step {
			sample = append(sample, names[i])
		}
		b.Logf("inspecting %d of the %d nodes (LIGHTSOUT_BENCH_INSPECT)", len(sample), len(names))
		names = sample
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	goruntime.GC()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	setupRSS := float64(ru.Maxrss) / 1024
	g := startGoroutineSampler(10*time.Millisecond, nil)
	var elapsed time.Duration
	done := 0
	for b.Loop() {
		start := time.Now()
		var ended atomic.Int64
		res, _ := e.app.Engine.RunMany(ctx, runtime.RunRequest{Script: "inspect", Timeout: 10 * time.Minute}, names, parallel, func(runtime.Result) {
			// Progress on stderr (b.Logf shows only at the end).
			if k := ended.Add(1); k%1000 == 0 {
				fmt.Fprintf(os.Stderr, "%s: %d/%d inspected in %s\n", b.Name(), k, len(names), time.Since(start).Round(time.Second))
			}
		})
		elapsed += time.Since(start)
		failed := 0
		for _, r := range res {
			if !r.Succeeded() {
				if failed == 0 {
					b.Errorf("node %s: run %d %s: %s", r.Node, r.RunID, r.Status, r.Error)
				}
				failed++
			}
		}
		if failed > 0 {
			b.Fatalf("%d of %d inspections did not succeed", failed, len(res))
		}
		done += len(res)
	}
	peakG := g.Stop()
	rate := float64(done) / elapsed.Seconds()
	peakRSS, simRSS := reportFleetRun(b, children, rate, "nodes/s", setupRSS, peakG)
	b.Logf("%d inspections (%d sim processes), %d at once, in %s: %.1f nodes/s; client peak RSS %.0f MB (%.0f MB after import), goroutines peak %d; largest sim process %.0f MB; RLIMIT_NOFILE %d/%d; load average %s",
		done, len(children), parallel, elapsed.Round(time.Millisecond), rate, peakRSS, setupRSS, peakG, simRSS, lim.Cur, lim.Max, loadAvg())
}

// reportFleetRun stops the simulator processes and reports what both
// fleet benchmarks measure: rate (in unit, e.g. "nodes/s"), this
// process's peak RSS (peak-RSS-MB) and the same before the run
// (setup-RSS-MB), the goroutines' peak and the largest simulator process's
// peak RSS (sim-RSS-MB). It returns the two peak RSS for the log line.
func reportFleetRun(b *testing.B, children []*simChild, rate float64, unit string, setupRSS float64, peakG int) (peakRSS, simRSS float64) {
	b.Helper()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	peakRSS = float64(ru.Maxrss) / 1024
	for _, c := range children {
		simRSS = max(simRSS, c.Stop())
	}
	b.ReportMetric(rate, unit)
	b.ReportMetric(peakRSS, "peak-RSS-MB")
	b.ReportMetric(setupRSS, "setup-RSS-MB")
	b.ReportMetric(float64(peakG), "goroutines-peak")
	b.ReportMetric(simRSS, "sim-RSS-MB")
	return peakRSS, simRSS
}

// envInt reads a positive integer from the environment (def otherwise).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loadAvg is /proc/loadavg's first three fields ("?" when unreadable).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// BenchmarkWatchBurst10k is issue 15's watch-folder burst: 10,000 job
// files (one per node, `node_power` reading the power state: one BMC
// round trip or two under the latency profile) renamed into incoming/ of
// a running watcher (inotify, one process, the SQLite store) over the
// simulated fleet of BenchmarkInspect10k. Every job must end done exactly
// once: 10,000 result files in done/, none in failed/, one job row per
// file claimed once, one run per node. LIGHTSOUT_BENCH_NODES sets the
// fleet and job count, LIGHTSOUT_BENCH_PARALLEL the jobs at once (default
// 200), LIGHTSOUT_BENCH_PROFILE=0 turns the latency profile off.
//
// Metrics: jobs/s from the first rename to the last result; peak-RSS-MB
// of this process (the watcher, its runs and the store); goroutines-peak.
//
//	LIGHTSOUT_BENCH_NODES=10000 go test ./runtime/e2e -run '^$' -bench WatchBurst10k -benchtime 1x -timeout 60m
func BenchmarkWatchBurst10k(b *testing.B) {
	n := envInt("LIGHTSOUT_BENCH_NODES", 10000)
	parallel := envInt("LIGHTSOUT_BENCH_PARALLEL", 200)
	e, names, children := fleet10k(b, n, fmt.Sprintf("[lightsout]\nmax_parallel = %d\n[ilo]\nclient_timeout = 120\n", parallel))
	ctx := context.Background()
	goruntime.GC()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	setupRSS := float64(ru.Maxrss) / 1024
	var elapsed time.Duration
	jobs, iter := 0, 0
	var peakG int
	for b.Loop() {
		iter++
		spool := filepath.Join(b.TempDir(), "spool")
		stage := filepath.Join(spool, "stage") // same file system: renames are atomic
		for _, d := range []string{watch.Incoming, "stage"} {
			if err := os.MkdirAll(filepath.Join(spool, d), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for i, name := range names {
			job := fmt.Sprintf(`{"id": "burst%d-%d", "action": "run", "script": "node_power", "nodes": [%q], "params": {"action": "state"}}`, iter, i, name)
			if err := os.WriteFile(filepath.Join(stage, fmt.Sprintf("job-%05d.json", i)), []byte(job), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		w, err := watch.New(e.app, watch.Options{Dir: spool, Parallel: parallel, Settle: -1, Grace: time.Minute,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		ended := make(chan error, 1)
		go func() { ended <- w.Run(runCtx) }()
		g := startGoroutineSampler(10*time.Millisecond, nil)
		start := time.Now()
		for i := range names {
			f := fmt.Sprintf("job-%05d.json", i)
			if err := os.Rename(filepath.Join(stage, f), filepath.Join(spool, watch.Incoming, f)); err != nil {
				b.Fatal(err)
			}
		}
		// Wait for every result file (a condition with a deadline).
		deadline := time.Now().Add(time.Hour)
		results := func() (done, failed int) {
			for _, d := range []struct {
				dir string
				n   *int
			}{{watch.Done, &done}, {watch.Failed, &failed}} {
				ents, _ := os.ReadDir(filepath.Join(spool, d.dir))
				for _, ent := range ents {
					if strings.HasSuffix(ent.Name(), ".result.json") {
						*d.n++
					}
				}
			}
			return done, failed
		}
		tick := time.NewTicker(250 * time.Millisecond)
		last := 0
		for {
			done, failed := results()
			if done+failed >= len(names) {
				break
			}
			if done+failed >= last+1000 {
				last = (done + failed) / 1000 * 1000
				fmt.Fprintf(os.Stderr, "%s: %d/%d jobs ended in %s\n", b.Name(), done+failed, len(names), time.Since(start).Round(time.Second))
			}
			if time.Now().After(deadline) {
				b.Fatalf("after %s: %d jobs done, %d failed of %d", time.Since(start).Round(time.Second), done, failed, len(names))
			}
			select {
			case err := <-ended:
				b.Fatalf("the watcher stopped with %d done, %d failed of %d: %v", done, failed, len(names), err)
			case <-tick.C:
			}
		}
		tick.Stop()
		elapsed += time.Since(start)
		peakG = max(peakG, g.Stop())
		stop()
		if err := <-ended; err != nil {
			b.Fatalf("watcher: %v", err)
		}
		if done, failed := results(); done != len(names) || failed != 0 {
			b.Fatalf("%d jobs done, %d failed, want all %d done", done, failed, len(names))
		}
		jobs += len(names)
	}
	// Exactly once: one job row per file, claimed once, done; one run
	// per node and job.
	rows, err := e.app.Store.ListJobs(ctx, store.JobFilter{})
	if err != nil {
		b.Fatal(err)
	}
	if len(rows) != jobs {
		b.Fatalf("%d job rows for %d job files", len(rows), jobs)
	}
	for _, j := range rows {
		if j.Status != store.JobDone || j.Attempts != 1 {
			b.Fatalf("job %s (%s): status %s after %d attempts, want done after 1", j.JobID, j.Name, j.Status, j.Attempts)
		}
	}
	runs, err := e.app.Store.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		b.Fatal(err)
	}
	perNode := map[string]int{}
	for _, r := range runs {
		if r.Script == "node_power" {
			perNode[r.NodeName]++
		}
	}
	for _, name := range names {
		if perNode[name] != iter {
			b.Fatalf("node %s has %d node_power runs, want %d (one per job)", name, perNode[name], iter)
		}
	}
	rate := float64(jobs) / elapsed.Seconds()
	peakRSS, simRSS := reportFleetRun(b, children, rate, "jobs/s", setupRSS, peakG)
	b.Logf("%d jobs (%d sim processes), %d at once, in %s: %.1f jobs/s; peak RSS %.0f MB (%.0f MB after import), goroutines peak %d; largest sim process %.0f MB; load average %s",
		jobs, len(children), parallel, elapsed.Round(time.Millisecond), rate, peakRSS, setupRSS, peakG, simRSS, loadAvg())
}
