package e2e_test

import (
	"context"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/sim"
)

// goroutineSampler records the peak of runtime.NumGoroutine, sampled on
// a ticker and at every call of sample (a measurement, never a wait).
type goroutineSampler struct {
	count func() int // nil: every goroutine
	peak  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

func startGoroutineSampler(every time.Duration, count func() int) *goroutineSampler {
	g := &goroutineSampler{count: count, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			g.sample()
			select {
			case <-g.stop:
				return
			case <-t.C:
			}
		}
	}()
	return g
}

func (g *goroutineSampler) sample() {
	n := int64(goruntime.NumGoroutine())
	if g.count != nil {
		n = int64(g.count())
	}
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
}

// Stop ends the sampling and returns the peak (the sampler's own
// goroutine included).
func (g *goroutineSampler) Stop() int {
	close(g.stop)
	<-g.done
	return int(g.peak.Load())
}

// simLabel marks the goroutines of an in-process simulator (pprof labels
// pass to the goroutines a goroutine starts), so the client's are counted
// apart.
var simLabel = pprof.Labels("side", "simulator")

// clientGoroutines counts the goroutines that do not carry simLabel.
func clientGoroutines() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	n := 0
	for _, block := range strings.Split(b.String(), "\n\n") {
		head, _, _ := strings.Cut(block, " @ ")
		c, err := strconv.Atoi(strings.TrimSpace(head))
		if err != nil || strings.Contains(block, `"side":"simulator"`) {
			continue
		}
		n += c
	}
	return n
}

// TestInspectFleetBoundedGoroutines inspects simulated iLOs (Gen8 over
// RIBCL and Gen10 over Redfish, half each) 6 at a time through
// Engine.RunMany, the path of `lightsout inspect --all`, twice: 30 nodes,
// then all 120. Every node gets a succeeded run, and the client's
// goroutines (the in-process simulator's are not counted) do not grow
// with the node count: the peak of the 120-node pass is within a few of
// the 30-node pass's and under what 6 runs in flight need. Nodes waiting
// for a worker wait in the queue, not in goroutines, and a finished run
// leaves no connection goroutine behind (either would add about 90).
func TestInspectFleetBoundedGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("120 simulated iLOs: not in -short")
	}
	const perGen, parallel = 60, 6
	var f *fleet
	pprof.Do(context.Background(), simLabel, func(context.Context) {
		f = newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: perGen}, {Generation: sim.Gen10, Count: perGen}},
			diskSize: 1 << 20})
	})
	e := open(t, f, "[ilo]\nmax_connections = 64\n")
	e.importFleet()
	var all, some []string
	for i, n := range f.sim.Inventory() {
		all = append(all, n.Name)
		if i%4 == 0 { // both generations
			some = append(some, n.Name)
		}
	}
	inspect := func(names []string) (base, peak int, took time.Duration) {
		goruntime.GC()
		base = clientGoroutines()
		// Sampled on a ticker and as each run ends: a goroutine left per
		// node or per finished run persists, so the ticker sees it.
		g := startGoroutineSampler(25*time.Millisecond, clientGoroutines)
		var done atomic.Int64
		start := time.Now()
		res, _ := e.app.Engine.RunMany(context.Background(), runtime.RunRequest{Script: "inspect", Timeout: 2 * time.Minute},
			names, parallel, func(runtime.Result) { done.Add(1); g.sample() })
		peak, took = g.Stop(), time.Since(start)
		if len(res) != len(names) || int(done.Load()) != len(names) {
			t.Fatalf("%d results, %d onDone calls for %d nodes", len(res), done.Load(), len(names))
		}
		for i, r := range res {
			if r.Node != names[i] || r.RunID == 0 || !r.Succeeded() {
				t.Fatalf("node %s: result %+v", names[i], r)
			}
		}
		return base, peak, took
	}
	base1, peak1, took1 := inspect(some)
	base2, peak2, took2 := inspect(all)
	t.Logf("%d nodes in %s: goroutines base %d, peak %d; %d nodes in %s: base %d, peak %d (%d workers)",
		len(some), took1.Round(time.Millisecond), base1, peak1, len(all), took2.Round(time.Millisecond), base2, peak2, parallel)
	// Per run in flight: its worker, the read and write loops of its iLO
	// connections (up to max_requests_per_ilo), the serial console
	// capture over IPMI and its timers: about 15 measured.
	const perRun, slack = 16, 40
	for _, m := range []struct{ base, peak int }{{base1, peak1}, {base2, peak2}} {
		if limit := m.base + parallel*perRun + slack; m.peak > limit {
			t.Errorf("peak goroutines %d over %d (base %d + %d workers x %d + %d)", m.peak, limit, m.base, parallel, perRun, slack)
		}
	}
	// 4x the nodes: a goroutine per node would add 90, the timing of the
	// samples a handful.
	if grow := (peak2 - base2) - (peak1 - base1); grow > 30 {
		t.Errorf("goroutines grew by %d from %d to %d nodes (peaks above base %d and %d): they scale with the node count",
			grow, len(some), len(all), peak1-base1, peak2-base2)
	}
}
