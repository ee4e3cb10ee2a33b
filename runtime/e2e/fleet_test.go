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

// TestInspectFleetBoundedGoroutines inspects 300 simulated iLOs (150
// Gen8 over RIBCL, 150 Gen10 over Redfish) 12 at a time through
// Engine.RunMany, the path of `lightsout inspect --all`: every node gets
// a succeeded run, and the client's goroutines never exceed what 12 runs
// in flight need (the in-process simulator's are not counted): nodes
// waiting for a worker wait in the queue, not in goroutines, and a
// finished run leaves no connection goroutine behind.
func TestInspectFleetBoundedGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("300 simulated iLOs: not in -short")
	}
	const perGen, parallel = 150, 12
	var f *fleet
	pprof.Do(context.Background(), simLabel, func(context.Context) {
		f = newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen8, Count: perGen}, {Generation: sim.Gen10, Count: perGen}},
			diskSize: 1 << 20})
	})
	e := open(t, f, "[ilo]\nmax_connections = 64\n")
	e.importFleet()
	names := make([]string, 0, 2*perGen)
	for _, n := range f.sim.Inventory() {
		names = append(names, n.Name)
	}
	goruntime.GC()
	base := clientGoroutines()
	g := startGoroutineSampler(20*time.Millisecond, clientGoroutines)
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
	// Client goroutines only (the simulator's carry simLabel). Per run in
	// flight: its worker, the read and write loops of its iLO connections
	// (up to max_requests_per_ilo), the serial console capture over IPMI
	// and its timers: about 15 measured. A goroutine per waiting node
	// (300) or connections left open after each run would exceed it.
	const perRun, slack = 16, 40
	if limit := base + parallel*perRun + slack; peak > limit {
		t.Fatalf("peak goroutines %d over %d (base %d + %d workers x %d + %d)", peak, limit, base, parallel, perRun, slack)
	}
	t.Logf("300 nodes in %s, %d workers: goroutines base %d, peak %d (%.1f per worker above base)", time.Since(start).Round(time.Millisecond), parallel, base, peak, float64(peak-base)/float64(parallel))
}
