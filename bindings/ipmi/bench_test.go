package ipmi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fanOut runs fn for every node, par at a time, and returns the first error.
func fanOut(n, par int, fn func(i int) error) error {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}(i)
	}
	wg.Wait()
	return first
}

// BenchmarkPowerStatusFleet is the benchmark: power status of
// LIGHTSOUT_BENCH_NODES simulated nodes (default 1000) over IPMI, 200 in
// parallel, with our client and with one `ipmitool power status` process
// per node (as Ironic runs it). Metrics: nodes/s of each, their ratio, and
// this process's peak RSS (client and simulator together).
func BenchmarkPowerStatusFleet(b *testing.B) {
	testenv.RequireTools(b, "ipmitool")
	n := envInt("LIGHTSOUT_BENCH_NODES", 1000)
	const par = 200
	s, err := sim.New(sim.FleetOptions(n/2, n-n/2))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	inv := s.Inventory()
	clients := make([]*ipmi.Client, len(inv))
	for i, node := range inv {
		o, err := ipmi.ParseDriverInfo(node.DriverInfo)
		if err != nil {
			b.Fatal(err)
		}
		o.RetryTimeout = 30 * time.Second
		if clients[i], err = ipmi.New(o); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	var elapsed time.Duration
	var done int
	for b.Loop() {
		start := time.Now()
		if err := fanOut(len(clients), par, func(i int) error {
			p, err := clients[i].PowerStatus(ctx)
			if err == nil && p != "on" && p != "off" {
				err = fmt.Errorf("power %q", p)
			}
			return err
		}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		done += len(clients)
	}
	goRate := float64(done) / elapsed.Seconds()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	peakRSS := float64(ru.Maxrss) / 1024

	// ipmitool, one process per node; a failed process is run again (up to
	// 3 times, as Ironic retries within ipmi_retry_timeout): with 200
	// processes on a small machine some RMCP+ handshakes time out.
	start := time.Now()
	var retriesMu sync.Mutex
	retries := 0
	if err := fanOut(len(inv), par, func(i int) error {
		di := inv[i].DriverInfo
		var last error
		for try := 0; try < 3; try++ {
			out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "17", "-N", "2", "-R", "3", "-H", "127.0.0.1",
				"-p", fmt.Sprint(di["ipmi_port"]), "-U", fmt.Sprint(di["ilo_username"]), "-P", fmt.Sprint(di["ilo_password"]),
				"power", "status").CombinedOutput()
			if err == nil && strings.Contains(string(out), "Chassis Power is") {
				return nil
			}
			last = fmt.Errorf("ipmitool: %v %s", err, out)
			retriesMu.Lock()
			retries++
			retriesMu.Unlock()
		}
		return last
	}); err != nil {
		b.Fatal(err)
	}
	toolRate := float64(len(inv)) / time.Since(start).Seconds()
	b.ReportMetric(goRate, "go-nodes/s")
	b.ReportMetric(toolRate, "ipmitool-nodes/s")
	b.ReportMetric(goRate/toolRate, "ratio")
	b.ReportMetric(peakRSS, "peak-RSS-MB")
	b.ReportMetric(float64(retries), "ipmitool-reruns")
	b.Logf("%d nodes, %d in parallel: lightsout %.0f nodes/s, ipmitool %.0f nodes/s (%.1fx, %d ipmitool processes run again); peak RSS %.0f MB (client and simulator)",
		len(inv), par, goRate, toolRate, goRate/toolRate, retries, peakRSS)
}
