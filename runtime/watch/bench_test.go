package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	total := 0
	b.ResetTimer()
	for _, n := range []int{1, 3} {
		b.StopTimer()
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
	}
	if failed := e.jobs(Failed); len(failed) > 0 {
		b.Fatalf("%d jobs failed, e.g. %s: %s", len(failed), failed[0], e.result(Failed, failed[0]).Error)
	}
	b.ReportMetric(rates[1], "jobs/s-1proc")
	b.ReportMetric(rates[3], "jobs/s-3procs")
	b.ReportMetric(rates[3]/rates[1], "x-3procs-vs-1")
	b.ReportMetric(0, "ns/op")
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
			start := time.Now()
			if err := w.Run(b.Context()); err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			b.StopTimer()
			if got := len(e.jobs(Done)); got != b.N {
				b.Fatalf("%d jobs done, want %d (failed: %v)", got, b.N, e.jobs(Failed))
			}
			runs, _ := e.a.Store.ListRuns(b.Context(), store.RunFilter{Status: store.StatusSucceeded})
			if len(runs) == 0 {
				b.Fatal("no run recorded")
			}
			b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "ms/job")
		})
	}
}
