package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// benchBMCCost is what each RIBCL document of the benchmark's simulated
// iLOs costs: the bmc playbook's call makes two (the product name probe of
// a new connection, then GET_HOST_POWER_STATUS), so each job waits 1 s on
// its BMC.
const benchBMCCost = 500 * time.Millisecond

func benchInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkWatchThroughputPG: watch-folder throughput on PostgreSQL with
// jobs that wait 1 s on their BMC (simulated Gen8 iLOs charging 500 ms per
// RIBCL document, two per job), --parallel 10 per process: one watcher
// process, then three sharing the folder and the database. Reports jobs/s
// of each and their ratio (target: three ≥ 2.5x one).
// LIGHTSOUT_BENCH_JOBS sets the jobs per round (default 120, one node each).
func BenchmarkWatchThroughputPG(b *testing.B) {
	if !testenv.PostgresAvailable() {
		b.Skip("PostgreSQL 15 is not installed (testdata/tools/deps.sh)")
	}
	jobs := benchInt("LIGHTSOUT_BENCH_JOBS", 120)
	b.Setenv("LIGHTSOUT_TEST_STORE", "postgres")
	// a node per job: every job makes its first call to its iLO (a
	// process reuses what it learnt of an iLO, the probe, for later jobs)
	s := bmcFleet(b, 2*jobs*b.N, benchBMCCost)
	e := newEnvBindings(b, 0, 30)
	nodes := e.bmcNodes(s)
	if err := os.MkdirAll(filepath.Join(e.dir, Incoming), 0o755); err != nil {
		b.Fatal(err)
	}
	rates := map[int]float64{}
	cpu := map[int]time.Duration{} // the watcher processes' CPU time
	total := 0
	b.ResetTimer()
	for _, n := range []int{1, 3} {
		b.StopTimer()
		before := childCPU(b)
		c := procs(b, e)
		for range n {
			c.startIn(e.dir, 10, helperBindings+"=1", helperPoll+"=0")
		}
		b.StartTimer()
		var busy time.Duration
		for round := range b.N {
			start := time.Now()
			for k := range jobs {
				id := fmt.Sprintf("p%d-r%d-%03d", n, round, k)
				e.drop(id+".json", bmcJob(id, nodes[total+k]))
			}
			total += jobs
			c.waitAll(total, 10*time.Minute)
			busy += time.Since(start)
		}
		b.StopTimer()
		c.stopAll()
		rates[n] = float64(jobs*b.N) / busy.Seconds()
		cpu[n] = childCPU(b) - before
	}
	phases(b, e)
	if failed := e.jobs(Failed); len(failed) > 0 {
		b.Fatalf("%d jobs failed, e.g. %s: %s", len(failed), failed[0], e.result(Failed, failed[0]).Error)
	}
	b.ReportMetric(rates[1], "jobs/s-1proc")
	b.ReportMetric(rates[3], "jobs/s-3procs")
	b.ReportMetric(rates[3]/rates[1], "x-3procs-vs-1")
	// CPU per job of the watcher processes (start-up included): what the
	// machine's load does not change
	for _, n := range []int{1, 3} {
		b.ReportMetric(float64(cpu[n].Microseconds())/1000/float64(jobs*b.N), fmt.Sprintf("cpu-ms/job-%dproc", n))
	}
	b.ReportMetric(0, "ns/op")
}

// phases logs where a job's time goes on average, per configuration:
// from the claim to its run's start, the run, from the run's end to the
// job's end.
func phases(b *testing.B, e *env) {
	ctx := context.Background()
	jobs, err := e.a.Store.ListJobs(ctx, store.JobFilter{})
	if err != nil {
		b.Fatal(err)
	}
	type sum struct {
		n              int
		pre, run, post time.Duration
	}
	by := map[string]*sum{}
	for _, j := range jobs {
		runs, err := e.a.Store.JobRuns(ctx, j.ID)
		if err != nil || len(runs) != 1 || runs[0].FinishedAt == nil || j.FinishedAt == nil {
			continue
		}
		k := strings.SplitN(j.JobID, "-", 2)[0]
		if by[k] == nil {
			by[k] = &sum{}
		}
		s := by[k]
		s.n++
		s.pre += runs[0].StartedAt.Sub(j.ClaimedAt)
		s.run += runs[0].FinishedAt.Sub(runs[0].StartedAt)
		s.post += j.FinishedAt.Sub(*runs[0].FinishedAt)
	}
	for k, s := range by {
		d := time.Duration(s.n)
		b.Logf("%s: %d jobs, on average claim to run %v, run %v, run end to job end %v", k, s.n,
			(s.pre / d).Round(time.Millisecond), (s.run / d).Round(time.Millisecond), (s.post / d).Round(time.Millisecond))
	}
}

// childCPU is the user+system CPU time of this process's waited-for
// children so far.
func childCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is the user+system CPU time of this process so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClaimOverhead: the time one watcher (--parallel 1) takes per
// empty job — claim, validation, the duplicate check, a node-less run of
// a one-step script, the result file, the move to done/ — on SQLite and on
// PostgreSQL. The run itself is a Lua state and a few rows.
func BenchmarkClaimOverhead(b *testing.B) {
	for _, st := range []string{"sqlite", "postgres"} {
		b.Run(st, func(b *testing.B) {
			if st == "postgres" && !testenv.PostgresAvailable() {
				b.Skip("PostgreSQL 15 is not installed (testdata/tools/deps.sh)")
			}
			b.Setenv("LIGHTSOUT_TEST_STORE", st)
			e := newEnv(b, 0)
			for i := range b.N {
				e.drop(fmt.Sprintf("e%06d.json", i), `{"action":"run","script":"trivial"}`)
			}
			w, err := New(e.a, Options{Dir: e.dir, Parallel: 1, Settle: -1, Poll: 10 * time.Millisecond, Once: true})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), selfCPU(b)
			if err := w.Run(b.Context()); err != nil {
				b.Fatal(err)
			}
			d, cpu := time.Since(start), selfCPU(b)-cpu0
			b.StopTimer()
			if got := len(e.jobs(Done)); got != b.N {
				b.Fatalf("%d jobs done, want %d (failed: %v)", got, b.N, e.jobs(Failed))
			}
			runs, _ := e.a.Store.ListRuns(b.Context(), store.RunFilter{Status: store.StatusSucceeded})
			if len(runs) == 0 {
				b.Fatal("no run recorded")
			}
			b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "ms/job")
			// this process's CPU (the database server's is not counted)
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/job")
		})
	}
}
