package e2e_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/sim"
)

// BenchmarkDeploy200 deploys a 64 MiB image to 200 simulated gen10 nodes
// at once (simulator latency 0): every node boots the emulated ramdisk,
// which downloads the image from the built-in web store, checks its
// sha256 and writes it to the node's virtual disk. One op is the whole
// fleet's deploy; peak-RSS-MB is the high-water mark of the process
// (lightsout, simulator and ramdisks together) during it.
// Target (README): < 60 s on 2 cores.
//
//	go test -run '^$' -bench Deploy200 -benchtime 1x ./runtime/e2e/
func BenchmarkDeploy200(b *testing.B) {
	const nodes, imageSize = 200, 64 << 20
	f := newFleet(b, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: nodes}}, diskSize: imageSize + 8<<20})
	img, data := testImage(b, b.TempDir(), imageSize)
	sum := "sha256:" + sha256hex(data)
	data = nil
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := open(b, f, "")
		e.importFleet()
		names := make([]string, 0, nodes)
		for _, s := range f.sim.Servers() {
			e.makeAvailable(s.Name())
			if _, err := e.app.PrepareDeploy(ctx, s.Name(), app.DeployOptions{ImageSource: img, ImageChecksum: sum}); err != nil {
				b.Fatal(err)
			}
			names = append(names, s.Name())
		}
		resetPeakRSS()
		b.StartTimer()
		start := time.Now()
		res, _ := e.app.Engine.RunMany(ctx, runtime.RunRequest{Script: app.ScriptDeploy, Timeout: 10 * time.Minute}, names, nodes, nil)
		wall := time.Since(start)
		b.StopTimer()
		for _, r := range res {
			if !r.Succeeded() {
				b.Fatalf("%s: %s %s", r.Node, r.Status, r.Error)
			}
			if n := e.node(r.Node); n.ProvisionState != states.Active {
				b.Fatalf("%s: %s", r.Node, n.ProvisionState)
			}
		}
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
		// Next iteration: the same servers start from off with a fresh store.
		for _, s := range f.sim.Servers() {
			s.PowerOff()
		}
		e.app.Close()
	}
}

// resetPeakRSS resets the kernel's RSS high-water mark (VmHWM) of this process.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
