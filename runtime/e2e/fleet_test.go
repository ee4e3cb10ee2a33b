package e2e_test

import (
	"context"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/sim"
)

// goroutineSampler records the peak of runtime.NumGoroutine, sampled on
// a ticker and at every call of sample (a measurement, never a wait).
type goroutineSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startGoroutineSampler(every time.Duration) *goroutineSampler {
	g := &goroutineSampler{stop: make(chan struct{}), done: make(chan struct{})}
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

// TestInspectFleetBoundedGoroutines inspects 300 simulated iLOs (150
// Gen8 over RIBCL, 150 Gen10 over Redfish) 16 at a time through
// Engine.RunMany, the path of `lightsout inspect --all`: every node gets
// a succeeded run, and the goroutines never exceed what 16 runs in flight
// need (nodes waiting for a worker wait in the queue, not in goroutines;
// a finished run leaves no connection or session goroutine behind).
func TestInspectFleetBoundedGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("300 simulated iLOs: not in -short")
	}
	const perGen, parallel = 150, 16
	f := newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: perGen}, {Generation: sim.Gen10, Count: perGen}},
		diskSize: 1 << 20})
	e := open(t, f, "[ilo]\nmax_connections = 64\n")
	e.importFleet()
	names := make([]string, 0, 2*perGen)
	for _, n := range f.sim.Inventory() {
		names = append(names, n.Name)
	}
	goruntime.GC()
	base := goruntime.NumGoroutine()
	g := startGoroutineSampler(5 * time.Millisecond)
	var done atomic.Int64
	req := runtime.RunRequest{Script: "inspect", Timeout: 2 * time.Minute,
		OnStep: func(int64, string, string) { g.sample() }}
	start := time.Now()
	res, _ := e.app.Engine.RunMany(context.Background(), req, names, parallel, func(runtime.Result) { done.Add(1); g.sample() })
	peak := g.Stop()
	if len(res) != len(names) || int(done.Load()) != len(names) {
		t.Fatalf("%d results, %d onDone calls for %d nodes", len(res), done.Load(), len(names))
	}
	for i, r := range res {
		if r.Node != names[i] || r.RunID == 0 || !r.Succeeded() {
			t.Fatalf("node %s: result %+v", names[i], r)
		}
	}
	// Per run in flight: its worker, the HTTP connection's read and write
	// loops and the simulator's side of it (in this process), the serial
	// console reader and the run's timers and recorder; 12 is generous.
	// A goroutine per waiting node (300) or connections left open after
	// each run would exceed it.
	const perRun, slack = 12, 40
	if limit := base + parallel*perRun + slack; peak > limit {
		t.Fatalf("peak goroutines %d over %d (base %d + %d workers x %d + %d)", peak, limit, base, parallel, perRun, slack)
	}
	t.Logf("300 nodes in %s, %d workers: goroutines base %d, peak %d (%.1f per worker above base)", time.Since(start).Round(time.Millisecond), parallel, base, peak, float64(peak-base)/parallel)
}
