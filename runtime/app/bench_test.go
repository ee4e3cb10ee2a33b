package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/testenv"
)

func openApp(tb testing.TB) *app.App {
	tb.Helper()
	dir := tb.TempDir()
	tb.Setenv("LIGHTSOUT_CONFIG", "")
	a, err := app.Open(context.Background(), app.Options{StateDir: dir, ConfigPath: writeConf(tb, dir), Stdout: os.Stdout, Stderr: os.Stderr, LogLevel: "error"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

func writeConf(tb testing.TB, dir string) string {
	p := filepath.Join(dir, "lightsout.conf")
	if err := os.WriteFile(p, []byte(testenv.StoreConf(tb)+"[lightsout]\nstate_dir = "+dir+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkStateCreation: one LState with every module preloaded, as each
// run pays it (target < 1 ms and < 500 KB per run), and the same with every
// module required (a script that uses all bindings).
func BenchmarkStateCreation(b *testing.B) {
	for _, tc := range []struct {
		name       string
		requireAll bool
	}{{"preloaded", false}, {"all-required", true}} {
		b.Run(tc.name, func(b *testing.B) {
			a := openApp(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Engine.CheckModules(ctx, tc.requireAll); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEventRecording: events recorded per second through run.log,
// batched into SQLite. Target >= 50,000 events/s.
func BenchmarkEventRecording(b *testing.B) {
	a := openApp(b)
	ctx := context.Background()
	script := filepath.Join(b.TempDir(), "ev.lua")
	const perRun = 20000
	os.WriteFile(script, []byte(fmt.Sprintf(`for i = 1, %d do run.log("debug", "event", {i = i}) end`, perRun)), 0o644)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err := a.Engine.Run(ctx, runtime.RunRequest{Script: script})
		if err != nil || !res.Succeeded() {
			b.Fatalf("%v %+v", err, res)
		}
	}
	b.ReportMetric(float64(perRun*b.N)/time.Since(start).Seconds(), "events/s")
}

// Benchmark1000Runs: 1,000 trivial runs on 1,000 nodes with parallel 1000,
// end to end (lock, LState, steps, events, unlock). Target < 5 s on 2 cores,
// peak RSS < 300 MB.
func Benchmark1000Runs(b *testing.B) {
	a := openApp(b)
	ctx := context.Background()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("node-%04d", i)
		if _, err := a.CreateNode(ctx, app.NodeSpec{Name: names[i], Driver: "agent_ilo", DriverInfo: map[string]any{
			"ilo_address": "127.0.0.1", "ilo_username": "admin", "ilo_password": "password-" + names[i]}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		results, err := a.Engine.RunMany(ctx, runtime.RunRequest{Script: "hello"}, names, 1000, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if !r.Succeeded() {
				b.Fatalf("%+v", r)
			}
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}

func nodeSpec(name string) app.NodeSpec {
	return app.NodeSpec{Name: name, Driver: "agent_ilo", DriverInfo: map[string]any{
		"ilo_address": "127.0.0.1", "ilo_username": "admin", "ilo_password": "password-" + name}}
}
