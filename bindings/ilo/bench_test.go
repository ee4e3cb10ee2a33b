package ilo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// benchPython is Debian's interpreter, where python3-proliantutils lives.
const benchPython = "/usr/bin/python3"

// benchParallel is how many nodes are inspected at once, by the Go client
// (goroutines) and by proliantutils (thread pool) alike.
const benchParallel = 200

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// requirePythonProliantutils skips (fails under make test) unless Debian's
// python3-proliantutils imports.
func requirePythonProliantutils(tb testing.TB) {
	tb.Helper()
	testenv.RequireTools(tb, benchPython)
	out, err := exec.Command(benchPython, "-c", "import proliantutils.ilo.client, sushy").CombinedOutput()
	if err != nil {
		if testenv.Integration() {
			tb.Fatalf("python3-proliantutils does not import (run testdata/tools/deps.sh): %v\n%s", err, out)
		}
		tb.Skipf("python3-proliantutils not importable: %v", err)
	}
}

// benchPyEnv is the environment of the Python half: without CA bundle
// overrides (they break sushy's verify setting, ilo-wire-protocols.md §5)
// and without proxies (everything is on 127.0.0.1).
func benchPyEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=127.0.0.1,localhost", "PYTHONDONTWRITEBYTECODE=1")
}

// fleetNode is one simulated node and what inspecting it must return.
type fleetNode struct {
	name     string
	info     map[string]any
	memoryMB int
	cpus     int
	localGB  int
	macs     []string // sorted, lower case
	model    string
}

// fleetFromSim reads the simulator's configured inventory.
func fleetFromSim(tb testing.TB, s *sim.Sim) []fleetNode {
	tb.Helper()
	inv := s.Inventory()
	out := make([]fleetNode, len(inv))
	for i, n := range inv {
		hw := s.Server(i).Hardware()
		info := make(map[string]any, len(n.DriverInfo))
		for k, v := range n.DriverInfo {
			if iv, ok := v.(int); ok {
				v = int64(iv)
			}
			info[k] = v
		}
		fn := fleetNode{name: n.Name, info: info, memoryMB: hw.MemoryMB, cpus: hw.TotalThreads(), localGB: hw.LocalGB(), model: hw.Model}
		for _, p := range n.Ports {
			fn.macs = append(fn.macs, strings.ToLower(p.Address))
		}
		sort.Strings(fn.macs)
		if fn.memoryMB <= 0 || fn.cpus <= 0 || len(fn.macs) == 0 {
			tb.Fatalf("%s: simulator inventory looks empty: %+v", n.Name, fn)
		}
		out[i] = fn
	}
	return out
}

// inspectNode inspects one node the way a playbook does: ilo.connect on a
// fresh node (no cached probe, so the generation probe runs), TLS verified
// against ilo_verify_ca (the simulator's CA), the module's shared per-iLO
// limiter, every call recorded as a run event; then it checks the result
// against the simulator's configuration.
func inspectNode(ctx context.Context, m *ilo.Module, fn fleetNode, logins *atomic.Int64) error {
	node := &moduletest.Node{ID: "uuid-" + fn.name, NodeName: fn.name, Drv: "agent_ilo", Info: fn.info, Int: map[string]any{}}
	run := moduletest.NewRun(ctx, node)
	defer func() {
		for _, e := range run.Events {
			if e.Name == "ilo.session_login" || e.Name == "ilo.session_relogin" {
				logins.Add(1)
			}
		}
	}()
	c, r, err := m.Connect(run, node.DriverInfo(), node)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", fn.name, err)
	}
	defer r.Close()
	if r.Transport().Options().CAPath == "" {
		return fmt.Errorf("%s: TLS is not verified against the simulator's CA", fn.name)
	}
	props, err := c.GetEssentialProperties(ctx)
	if err != nil {
		return fmt.Errorf("%s: get_essential_properties: %w", fn.name, err)
	}
	caps, err := c.GetServerCapabilities(ctx)
	if err != nil {
		return fmt.Errorf("%s: get_server_capabilities: %w", fn.name, err)
	}
	if _, ok := node.Internal()[ilo.InternalProbe]; !ok {
		return fmt.Errorf("%s: no generation probe ran (driver_internal_info %v)", fn.name, node.Internal())
	}
	macs := make([]string, 0, len(props.MACs))
	for _, mac := range props.MACs {
		macs = append(macs, strings.ToLower(mac))
	}
	sort.Strings(macs)
	if props.MemoryMB != fn.memoryMB || props.CPUs != fn.cpus || props.LocalGB != fn.localGB || !slices.Equal(macs, fn.macs) {
		return fmt.Errorf("%s: got memory_mb=%d cpus=%d local_gb=%d macs=%v, simulator has memory_mb=%d cpus=%d local_gb=%d macs=%v",
			fn.name, props.MemoryMB, props.CPUs, props.LocalGB, macs, fn.memoryMB, fn.cpus, fn.localGB, fn.macs)
	}
	if caps["server_model"] != fn.model {
		return fmt.Errorf("%s: capabilities server_model %q, simulator has %q", fn.name, caps["server_model"], fn.model)
	}
	return nil
}

// inspectFleet inspects every node with benchParallel goroutines and
// returns the first error.
func inspectFleet(ctx context.Context, m *ilo.Module, fleet []fleetNode, logins *atomic.Int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := 0; w < benchParallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := inspectNode(ctx, m, fleet[i], logins); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range fleet {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return firstErr
}

// heapSampler records the peak of the Go heap in use (objects plus
// fragmentation, the HeapInuse of runtime.MemStats) without stopping the
// world.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
	// profile, when set (LIGHTSOUT_BENCH_PEAK_HEAP_PROFILE), is where a
	// heap profile is written at each new peak (5% over the last written).
	profile string
	written uint64
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), profile: os.Getenv("LIGHTSOUT_BENCH_PEAK_HEAP_PROFILE")}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	read := func() {
		metrics.Read(samples)
		var v uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v += s.Value.Uint64()
			}
		}
		h.peak = max(h.peak, v)
		if h.profile != "" && v > h.written+h.written/20 {
			// A new peak (5% over the last one written): the heap
			// profile as of the last GC, to see what the peak holds.
			h.written = v
			if f, err := os.Create(h.profile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			read()
			select {
			case <-h.stop:
				read()
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak in bytes.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak
}

// maxRSSMB is this process's peak resident set size (getrusage ru_maxrss,
// KiB on Linux) in MB.
func maxRSSMB(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return float64(ru.Maxrss) / 1024
}

// cpuTime is the user plus system CPU time of this process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the first field of /proc/loadavg ("?" when unreadable): the
// machine is shared, and wall-clock rates mean little under load.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// pyBenchResult is the JSON line bench_proliantutils.py prints.
type pyBenchResult struct {
	Nodes      int     `json:"nodes"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	NodesPerS  float64 `json:"nodes_per_s"`
	FirstError string  `json:"first_error"`
}

// runProliantutils inspects the inventory at path with proliantutils from a
// benchParallel-thread pool; it returns the script's result, the peak RSS
// of the Python process in MB and its CPU time (user plus system).
func runProliantutils(tb testing.TB, path string) (pyBenchResult, float64, time.Duration) {
	tb.Helper()
	cmd := exec.Command(benchPython, filepath.Join("..", "..", "sim", "testdata", "bench_proliantutils.py"), path, "--threads", strconv.Itoa(benchParallel))
	cmd.Env = benchPyEnv()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("bench_proliantutils.py: %v\n%s", err, stderr.String())
	}
	var r pyBenchResult
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
		tb.Fatalf("bench_proliantutils.py output %q: %v\n%s", out.String(), err, stderr.String())
	}
	if r.Errors > 0 || r.NodesPerS <= 0 {
		tb.Fatalf("proliantutils: %d of %d inspections failed (%.2f nodes/s): %s", r.Errors, r.Nodes, r.NodesPerS, r.FirstError)
	}
	rss := 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024
	}
	return r, rss, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkInspectFleet is issue 3's fleet benchmark: inspection (essential
// properties + server capabilities) of N simulated Gen8 (RIBCL) and N Gen10
// (Redfish) nodes, 200 at a time, with the Go client through the path a
// playbook takes (ilo.Module.Connect: per-iLO limiter, generation probe,
// TLS verified against the simulator's CA, recorded calls); every result
// must equal the simulator's inventory. Then, in the same run and against
// the same simulator process, proliantutils inspects the fleet from a 200-thread
// pool (sim/testdata/bench_proliantutils.py).
//
// N is 1,000 unless LIGHTSOUT_BENCH_NODES sets it. proliantutils is slow
// (about 10 nodes/s), so LIGHTSOUT_BENCH_PY_NODES=K limits the Python half
// to the first K nodes of each generation (default: all N); py-nodes is
// reported so the subset is visible.
//
// The simulator runs in a child process (TestInspectFleetSimProcess), so
// this process is the client alone. Metrics: go-nodes/s, py-nodes/s,
// ratio (go/py, target >= 5); peak-RSS-MB is getrusage(RUSAGE_SELF)
// .ru_maxrss of this process, the client's peak (target <= 300), and
// setup-RSS-MB the same before the first inspection (fleet read);
// go-heap-MB is the client's peak Go heap in use while inspecting;
// sim-RSS-MB is the simulator process's peak; py-RSS-MB the Python
// process's (ru_maxrss of a child started with vfork also counts this
// process's RSS at the fork: an upper bound).
// The machine may be shared: go-cpu-ms/node and py-cpu-ms/node (client
// plus simulator CPU time per node; getrusage of this process, of the
// simulator process and of the Python child) and their cpu-ratio hold
// under load where the wall-clock rates do not; client-cpu-ms/node is the
// Go client alone; the log line gives the load average. go-requests/node
// and py-requests/node count the HTTP requests the simulator served per
// node inspected; go-logins/node the Redfish session logins (events).
//
// LIGHTSOUT_BENCH_PROFILE=1 turns on every server's latency profile
// (sim/latency.go: TLS handshake, login, GET, write and RIBCL costs per
// generation) for both halves.
//
//	go test ./bindings/ilo -run '^$' -bench BenchmarkInspectFleet -benchtime 1x -timeout 30m
func BenchmarkInspectFleet(b *testing.B) {
	requirePythonProliantutils(b)
	n := envInt("LIGHTSOUT_BENCH_NODES", 1000)
	pyN := min(envInt("LIGHTSOUT_BENCH_PY_NODES", n), n)

	// The simulator runs in its own process (TestInspectFleetSimProcess):
	// this one's RSS and Go heap are the client's alone.
	fs, fleet := startFleetSim(b, n)
	if len(fleet) != 2*n {
		b.Fatalf("simulator has %d servers, want %d", len(fleet), 2*n)
	}
	profile := os.Getenv("LIGHTSOUT_BENCH_PROFILE") != ""
	var logins atomic.Int64
	setupRSS := maxRSSMB(b)

	m := ilo.NewModule() // one per process, as in the runtime: its limiters are shared
	ctx := context.Background()
	load0 := loadAvg()
	req0, simCPU0 := fs.stats(b)
	cpu0 := cpuTime(b)
	heap := startHeapSampler(20 * time.Millisecond)
	var (
		elapsed   time.Duration
		inspected int
	)
	for b.Loop() {
		start := time.Now()
		if err := inspectFleet(ctx, m, fleet, &logins); err != nil {
			heap.Stop()
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		inspected += len(fleet)
	}
	peakHeap := heap.Stop()
	clientCPU := cpuTime(b) - cpu0
	req1, simCPU1 := fs.stats(b)
	goReqs := req1 - req0
	goCPU := clientCPU + simCPU1 - simCPU0
	goRate := float64(inspected) / elapsed.Seconds()
	peakRSS := maxRSSMB(b)
	load1 := loadAvg()

	// The Python half: first pyN nodes of each generation (gen8 servers
	// come first in the simulator, then gen10).
	var subset []json.RawMessage
	inv := fs.inventory(b)
	subset = append(subset, inv[:pyN]...)
	subset = append(subset, inv[n:n+pyN]...)
	js, err := json.Marshal(subset)
	if err != nil {
		b.Fatal(err)
	}
	invPath := filepath.Join(b.TempDir(), "inventory.json")
	if err := os.WriteFile(invPath, js, 0o600); err != nil {
		b.Fatal(err)
	}
	py, pyRSS, pyCPU := runProliantutils(b, invPath)
	req2, simCPU2 := fs.stats(b)
	pyReqs := req2 - req1
	simCPU := simCPU2 - simCPU1 // the simulator serving proliantutils
	simRSS := fs.Stop()
	if py.Nodes != 2*pyN {
		b.Fatalf("proliantutils inspected %d nodes, want %d", py.Nodes, 2*pyN)
	}
	msPerNode := func(d time.Duration, nodes int) float64 {
		return float64(d) / float64(time.Millisecond) / float64(nodes)
	}
	goCPUPerNode := msPerNode(goCPU, inspected)       // Go client + simulator
	pyCPUPerNode := msPerNode(pyCPU+simCPU, py.Nodes) // proliantutils + simulator

	b.ReportMetric(goRate, "go-nodes/s")
	b.ReportMetric(py.NodesPerS, "py-nodes/s")
	b.ReportMetric(float64(py.Nodes), "py-nodes")
	b.ReportMetric(goRate/py.NodesPerS, "ratio")
	b.ReportMetric(peakRSS, "peak-RSS-MB")
	b.ReportMetric(simRSS, "sim-RSS-MB")
	b.ReportMetric(setupRSS, "setup-RSS-MB")
	b.ReportMetric(float64(clientCPU)/float64(time.Millisecond)/float64(inspected), "client-cpu-ms/node")
	b.ReportMetric(float64(peakHeap)/(1<<20), "go-heap-MB")
	b.ReportMetric(pyRSS, "py-RSS-MB")
	b.ReportMetric(goCPUPerNode, "go-cpu-ms/node")
	b.ReportMetric(pyCPUPerNode, "py-cpu-ms/node")
	b.ReportMetric(pyCPUPerNode/goCPUPerNode, "cpu-ratio")
	b.ReportMetric(float64(goReqs)/float64(inspected), "go-requests/node")
	b.ReportMetric(float64(pyReqs)/float64(py.Nodes), "py-requests/node")
	b.ReportMetric(float64(logins.Load())/float64(inspected), "go-logins/node")
	if profile {
		b.Logf("latency profile on (sim/latency.go DefaultLatencyProfile)")
	}
	b.Logf("go: %d inspections in %s (%.0f nodes/s, %d gen8 + %d gen10, %d in parallel, %.2f CPU-ms/node with the simulator); "+
		"proliantutils: %d nodes (%d gen8 + %d gen10) in %.1f s (%.2f nodes/s, %.2f CPU-ms/node with the simulator: %s python + %s sim); "+
		"client peak RSS %.0f MB (%.0f MB before inspecting), Go heap peak %.0f MB; simulator process peak RSS %.0f MB; python RSS %.0f MB; load average %s before, %s after the Go half, %s at the end",
		inspected, elapsed.Round(time.Millisecond), goRate, n, n, benchParallel, goCPUPerNode,
		py.Nodes, pyN, pyN, py.Seconds, py.NodesPerS, pyCPUPerNode, pyCPU.Round(time.Millisecond), simCPU.Round(time.Millisecond),
		peakRSS, setupRSS, float64(peakHeap)/(1<<20), simRSS, pyRSS, load0, load1, loadAvg())
}
