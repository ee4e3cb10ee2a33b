package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFleetInventory writes an import file of n nodes as an operator's
// fleet looks: a distinct iLO address and password per node and two NICs
// each.
func writeFleetInventory(tb testing.TB, n int) string {
	tb.Helper()
	nodes := make([]map[string]any, n)
	for i := range nodes {
		nodes[i] = map[string]any{
			"name":   fmt.Sprintf("rack%03d-node%05d", i/40, i),
			"driver": "ilo",
			"driver_info": map[string]any{
				"ilo_address":  fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
				"ilo_username": "Administrator",
				"ilo_password": fmt.Sprintf("pw-%08x-%d", uint32(i)*2654435761, i),
			},
			"properties": map[string]any{"cpu_arch": "x86_64", "memory_mb": 65536, "cpus": 32},
			"ports": []map[string]any{
				{"address": fmt.Sprintf("52:54:%02x:%02x:%02x:01", i>>16&255, i>>8&255, i&255)},
				{"address": fmt.Sprintf("52:54:%02x:%02x:%02x:02", i>>16&255, i>>8&255, i&255)},
			},
		}
	}
	raw, err := json.Marshal(nodes)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), fmt.Sprintf("fleet-%d.json", n))
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkImportNodes: `lightsout node import` (App.ImportNodes: read,
// validate, check names and MACs against the store, encrypt the secrets,
// insert) of a fleet file into an empty store, per fleet size.
// LIGHTSOUT_BENCH_IMPORT lists the sizes (default "1000,10000").
// Metrics: nodes/s and the CPU seconds of the whole import.
//
//	go test ./runtime/app -run '^$' -bench ImportNodes -benchtime 1x
func BenchmarkImportNodes(b *testing.B) {
	sizes := []int{1000, 10000}
	if v := os.Getenv("LIGHTSOUT_BENCH_IMPORT"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("LIGHTSOUT_BENCH_IMPORT=%q: want a comma-separated list of node counts", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			path := writeFleetInventory(b, n)
			ctx := context.Background()
			var elapsed, cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				a := openApp(b)
				b.StartTimer()
				start, cpu0 := time.Now(), cpuTime()
				nodes, err := a.ImportNodes(ctx, path)
				elapsed += time.Since(start)
				cpu += cpuTime() - cpu0
				if err != nil {
					b.Fatal(err)
				}
				if len(nodes) != n {
					b.Fatalf("imported %d nodes, want %d", len(nodes), n)
				}
				b.StopTimer()
				a.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "nodes/s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
