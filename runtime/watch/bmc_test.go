package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// bmcFleet starts n simulated Gen8 iLOs (RIBCL) whose every RIBCL
// document costs cost (a latency profile charging nothing else), so the
// bmc playbook's get_host_power_status waits about cost on its BMC.
func bmcFleet(t testing.TB, n int, cost time.Duration, opts ...simtest.Option) *sim.Sim {
	t.Helper()
	return simtest.Start(t, fmt.Sprintf("gen8=%d", n), append(opts, func(o *sim.Options) {
		o.Faults.Profile = true
		o.LatencyProfiles = map[sim.Generation]sim.LatencyProfile{sim.Gen8: {RIBCL: cost}}
	})...)
}

// bmcNodes creates node b000.. for each server of s and returns the names.
func (e *env) bmcNodes(s *sim.Sim) []string {
	e.t.Helper()
	var names []string
	for i := range s.Inventory() {
		name := fmt.Sprintf("b%03d", i)
		if _, err := e.a.CreateNode(context.Background(), app.NodeSpec{Name: name, Driver: "agent_ilo", DriverInfo: simtest.DriverInfo(s, i)}); err != nil {
			e.t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// bmcJob is a job running the bmc playbook on node.
func bmcJob(id, node string) string {
	return fmt.Sprintf(`{"id":%q,"action":"run","script":"bmc","nodes":[%q]}`, id, node)
}

// TestBMCJobWaitsOnItsILO: the bmc playbook run by a watcher (with the
// default bindings) makes its call on the simulated iLO and waits its
// latency: the run succeeds and lasts at least the cost.
func TestBMCJobWaitsOnItsILO(t *testing.T) {
	const cost = 300 * time.Millisecond
	s := bmcFleet(t, 1, cost, simtest.WithRequestLog())
	e := newEnvBindings(t, 0, 2)
	nodes := e.bmcNodes(s)
	e.drop("p.json", bmcJob("p", nodes[0]))
	r := e.start(Options{Parallel: 1, Poll: 20 * time.Millisecond})
	defer r.stop(t)
	sub, res := e.finished("p.json", time.Minute)
	if sub != Done || len(res.Nodes) != 1 || res.Nodes[0].FinishedAt == nil {
		t.Fatalf("%s: %+v", sub, res)
	}
	if d := res.Nodes[0].FinishedAt.Sub(res.Nodes[0].StartedAt); d < cost {
		t.Fatalf("the run took %v, less than the BMC's %v", d, cost)
	}
	t.Logf("requests: %q", s.Server(0).RequestLog())
}

// bmcCluster is the fixture of the multi-process fault tests whose jobs
// call their BMC: a PostgreSQL installation with one node per simulated
// Gen8 iLO (bmcFleet, cost per RIBCL document), watched by processes
// with the default bindings, each running parallel jobs at once.
type bmcCluster struct {
	*cluster
	nodes []string
	cost  time.Duration
}

// newBMCCluster starts the fleet of nodes iLOs and n watcher processes
// on one folder; timeout is [conductor] heartbeat_timeout in seconds.
func newBMCCluster(t *testing.T, nodes, n, parallel, timeout int, cost time.Duration) *bmcCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test: not with -short")
	}
	s := bmcFleet(t, nodes, cost)
	t.Setenv("LIGHTSOUT_TEST_STORE", "postgres")
	e := newEnvBindings(t, 0, timeout)
	b := &bmcCluster{cluster: procs(t, e), nodes: e.bmcNodes(s), cost: cost}
	if err := os.MkdirAll(filepath.Join(e.dir, Incoming), 0o755); err != nil {
		t.Fatal(err)
	}
	for range n {
		b.startIn(e.dir, parallel, helperBindings+"=1")
	}
	return b
}

// dropBMCJobs drops n bmc jobs job000.json.. (ids j000..), job i on
// node i modulo the fleet, and returns their file names.
func (b *bmcCluster) dropBMCJobs(n int) []string {
	var files []string
	for i := range n {
		name := fmt.Sprintf("job%03d.json", i)
		b.e.drop(name, bmcJob(fmt.Sprintf("j%03d", i), b.nodes[i%len(b.nodes)]))
		files = append(files, name)
	}
	return files
}

// checkResults asserts every job that ended done waited on its iLO (each
// node's run lasted at least the cost of a RIBCL document) and every
// failed one says why; it returns how many ended done and failed.
func (b *bmcCluster) checkResults() (done, failed int) {
	t := b.t
	t.Helper()
	for _, f := range b.e.jobs(Done) {
		r := b.e.result(Done, f)
		for _, nr := range r.Nodes {
			if nr.FinishedAt == nil || nr.FinishedAt.Sub(nr.StartedAt) < b.cost {
				t.Errorf("%s on %s: the run did not wait on its iLO (%+v)", f, nr.Node, nr)
			}
		}
		done++
	}
	reasons := map[string]int{}
	for _, f := range b.e.jobs(Failed) {
		r := b.e.result(Failed, f)
		if r.Error == "" {
			t.Errorf("%s failed without a reason", f)
		}
		reasons[r.Error]++
		failed++
	}
	for r, n := range reasons {
		t.Logf("%d jobs failed: %.300s", n, r)
	}
	return done, failed
}

// runsAfter counts, per conductor, the runs started after t0.
func (b *bmcCluster) runsAfter(t0 time.Time) map[int64]int {
	b.t.Helper()
	runs, err := b.e.a.Store.ListRuns(context.Background(), store.RunFilter{})
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[int64]int{}
	for _, r := range runs {
		if r.StartedAt.After(t0) {
			out[r.Conductor]++
		}
	}
	return out
}
