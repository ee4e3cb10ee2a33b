package ilo_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// fleetSimEnv names the environment variable that makes
// TestInspectFleetSimProcess serve N Gen8 and N Gen10 simulated iLOs.
const fleetSimEnv = "LIGHTSOUT_FLEET_SIM_CHILD"

// fleetJSON is a fleetNode as the simulator process hands it over.
type fleetJSON struct {
	Name     string         `json:"name"`
	Info     map[string]any `json:"info"`
	MemoryMB int            `json:"memory_mb"`
	CPUs     int            `json:"cpus"`
	LocalGB  int            `json:"local_gb"`
	MACs     []string       `json:"macs"`
	Model    string         `json:"model"`
}

// TestInspectFleetSimProcess is not a test: BenchmarkInspectFleet runs it
// as its simulator process (LIGHTSOUT_FLEET_SIM_CHILD=N), so that the
// benchmark's peak RSS and Go heap are the client's alone. It serves N
// Gen8 and N Gen10 simulated iLOs, writes the fleet (what inspecting each
// must return) to LIGHTSOUT_FLEET_SIM_DIR/fleet.json and the inventory
// for proliantutils to inventory.json, says "ready", then answers each
// "stats" line on stdin with "stats REQUESTS CPU-NS" (HTTP requests
// served, its CPU time); when stdin closes it prints "rss-mb MB".
func TestInspectFleetSimProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(fleetSimEnv))
	if n <= 0 {
		t.Skip("the simulator process of BenchmarkInspectFleet (run by it)")
	}
	dir := os.Getenv("LIGHTSOUT_FLEET_SIM_DIR")
	o := sim.FleetOptions(n, n)
	o.Logger = slog.New(slog.DiscardHandler)
	o.Faults = sim.Faults{Profile: os.Getenv("LIGHTSOUT_BENCH_PROFILE") != ""}
	s, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var fleet []fleetJSON
	for _, fn := range fleetFromSim(t, s) {
		fleet = append(fleet, fleetJSON{Name: fn.name, Info: fn.info, MemoryMB: fn.memoryMB, CPUs: fn.cpus, LocalGB: fn.localGB, MACs: fn.macs, Model: fn.model})
	}
	b, err := json.Marshal(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteInventory(filepath.Join(dir, "inventory.json")); err != nil {
		t.Fatal(err)
	}
	simtest.ServeChild(func(line string) {
		if line != "stats" {
			return
		}
		var reqs int64
		for _, srv := range s.Servers() {
			reqs += srv.Requests()
		}
		fmt.Printf("stats %d %d\n", reqs, int64(cpuTime(t)))
	})
}

// fleetSim is the running simulator process of BenchmarkInspectFleet.
type fleetSim struct {
	*simtest.Child
	dir string
}

// startFleetSim starts the simulator process serving n Gen8 and n Gen10
// iLOs and returns it with the fleet once the process is ready.
func startFleetSim(tb testing.TB, n int) (*fleetSim, []fleetNode) {
	tb.Helper()
	dir := tb.TempDir()
	fs := &fleetSim{Child: simtest.StartChild(tb, "TestInspectFleetSimProcess", fmt.Sprintf("%s=%d", fleetSimEnv, n), "LIGHTSOUT_FLEET_SIM_DIR="+dir), dir: dir}
	fs.WaitReady(tb, "the simulator process")
	b, err := os.ReadFile(filepath.Join(dir, "fleet.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var js []fleetJSON
	if err := json.Unmarshal(b, &js); err != nil {
		tb.Fatalf("fleet.json: %v", err)
	}
	fleet := make([]fleetNode, len(js))
	for i, f := range js {
		for k, v := range f.Info {
			if fv, ok := v.(float64); ok && fv == math.Trunc(fv) {
				f.Info[k] = int64(fv) // JSON numbers: the ports were ints
			}
		}
		fleet[i] = fleetNode{name: f.Name, info: f.Info, memoryMB: f.MemoryMB, cpus: f.CPUs, localGB: f.LocalGB, macs: f.MACs, model: f.Model}
	}
	return fs, fleet
}

// inventory is the simulator's inventory (sim.Node objects, in order).
func (fs *fleetSim) inventory(tb testing.TB) []json.RawMessage {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fs.dir, "inventory.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var inv []json.RawMessage
	if err := json.Unmarshal(b, &inv); err != nil {
		tb.Fatalf("inventory.json: %v", err)
	}
	return inv
}

// stats returns the HTTP requests the simulator served so far and its
// CPU time.
func (fs *fleetSim) stats(tb testing.TB) (int64, time.Duration) {
	tb.Helper()
	f := fs.Ask(tb, "stats", "stats", 3)
	reqs, _ := strconv.ParseInt(f[1], 10, 64)
	cpu, _ := strconv.ParseInt(f[2], 10, 64)
	return reqs, time.Duration(cpu)
}
