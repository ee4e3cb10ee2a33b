package watch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
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
