package sim_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

// benchFleetSize is 1,000 gen8 + 1,000 gen10 unless LIGHTSOUT_BENCH_NODES
// sets the count per generation.
func benchFleetSize() int {
	if v, err := strconv.Atoi(os.Getenv("LIGHTSOUT_BENCH_NODES")); err == nil && v > 0 {
		return v
	}
	return 1000
}

// BenchmarkFleetStart measures starting (and closing) the 2,000-server fleet.
func BenchmarkFleetStart(b *testing.B) {
	n := benchFleetSize()
	for b.Loop() {
		s, err := sim.New(sim.FleetOptions(n, n))
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMiB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		s.Close()
	}
}

// BenchmarkProliantutilsInspect is the Python side of the fleet benchmark:
// proliantutils inspects every node (essential properties + capabilities)
// from a 200-thread pool; the metric is nodes/s.
func BenchmarkProliantutilsInspect(b *testing.B) {
	requireProliantutils(b)
	n := benchFleetSize()
	s, err := sim.New(sim.FleetOptions(n, n))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	inv := filepath.Join(b.TempDir(), "inventory.json")
	if err := s.WriteInventory(inv); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cmd := exec.Command(python, "testdata/bench_proliantutils.py", inv, "--threads", "200")
		cmd.Env = pyEnv()
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("bench script: %v\n%s", err, stderr.String())
		}
		var r struct {
			Nodes      int     `json:"nodes"`
			Errors     int     `json:"errors"`
			NodesPerS  float64 `json:"nodes_per_s"`
			FirstError string  `json:"first_error"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			b.Fatalf("bench output %q: %v", out.String(), err)
		}
		if r.Errors > 0 {
			b.Fatalf("%d of %d inspections failed: %s", r.Errors, r.Nodes, r.FirstError)
		}
		b.ReportMetric(r.NodesPerS, "nodes/s")
	}
}
