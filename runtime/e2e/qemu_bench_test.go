package e2e_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
)

// BenchmarkQemuDeploy deploys a 1 GiB whole-disk image (the bootable test
// image padded with random data, raw and qcow2) to one qemu-backed Gen10
// (UEFI, TCG) and reports the phases: power/boot (power on with the deploy
// ISO until the agent's first console line), agent up (until its first
// heartbeat), image write (the "write image" phase: download, checksum,
// write) with its MB/s against `qemu-img convert` of the same image into a
// qcow2 file on the host (the limit, ratio target ≥ 0.8), and reboot (agent
// power off until the instance's marker), and the kernel uptime at which the
// agent was up (its LIGHTSOUT-AGENT-UP line) and the agent's peak RSS (its
// power-off line). Not part of `make test`:
//
//	go test -run '^$' -bench QemuDeploy -benchtime 1x -timeout 30m ./runtime/e2e/
//
// LIGHTSOUT_BENCH_IMAGE_MB overrides the image size (default 1024).
func BenchmarkQemuDeploy(b *testing.B) {
	requireQemuE2E(b)
	testenv.RequireTools(b, "sgdisk")
	size := int64(envInt("LIGHTSOUT_BENCH_IMAGE_MB", 1024)) << 20
	im := testInstanceImage(b)
	// images, ramdisk and fleets in one directory: scripts may read the directory above a fleet's
	fleets := b.TempDir()
	raw := padImage(b, im.raw, filepath.Join(fleets, "bench.raw"), size)
	qcow := filepath.Join(fleets, "bench.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
		b.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	kernel, initramfs := deployRamdisk(b, fleets)
	for _, format := range []string{"raw", "qcow2"} {
		b.Run(format, func(b *testing.B) {
			src := raw
			if format == "qcow2" {
				src = qcow
			}
			sum, _ := fileSHA256(b, src)
			limit := hostConvertRate(b, src, format)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fdir, err := os.MkdirTemp(fleets, "fleet")
				if err != nil {
					b.Fatal(err)
				}
				f := newQemuFleet(b, fdir, []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, size+(256<<20))
				e := open(b, f.fleet, qemuConfig(b), qemuSiteDir(b))
				e.importQemuFleet(kernel, initramfs)
				e.makeAvailable("gen10-0")
				ctx := context.Background()
				if _, err := e.app.PrepareDeploy(ctx, "gen10-0", app.DeployOptions{ImageSource: src, ImageChecksum: "sha256:" + sum,
					ImageDiskFormat: format, Capabilities: map[string]string{"boot_mode": "uefi"}}); err != nil {
					b.Fatal(err)
				}
				wctx, cancel := context.WithTimeout(ctx, 2*qemuDeployTimeout)
				clock := watchConsole(wctx, f.qb, "gen10-0", "LIGHTSOUT-AGENT-START", "LIGHTSOUT-AGENT-UP",
					"LIGHTSOUT-AGENT-POWEROFF", qemutest.BootMarker)
				b.StartTimer()
				start := time.Now()
				res, _ := e.app.Engine.RunMany(ctx, runtime.RunRequest{Script: app.ScriptDeploy, Timeout: 2 * qemuDeployTimeout},
					[]string{"gen10-0"}, 1, nil)
				wall := time.Since(start)
				b.StopTimer()
				r := res[0]
				if !r.Succeeded() {
					cancel()
					b.Fatalf("deploy %s: %s\n%s\nVM console:\n%s", r.Status, r.Error, e.timeline(r.RunID), tailText(f.qb.Console("gen10-0"), 6000))
				}
				c := <-clock
				cancel()
				evs := mustEventsTB(b, e, r.RunID)
				runStart := evs[0].Time
				bootStart := stepStart(evs, "boot deploy ramdisk").Sub(runStart)
				write := stepSpan(evs, "write image", "write image")
				p := phaseTimes{
					bootRamdisk: c.at["LIGHTSOUT-AGENT-START"] - bootStart,
					agentUp:     stepEnd(evs, "wait for agent").Sub(runStart) - c.at["LIGHTSOUT-AGENT-START"],
					writeImage:  write,
					reboot:      c.at[qemutest.BootMarker] - c.at["LIGHTSOUT-AGENT-POWEROFF"],
					total:       wall,
				}
				// the agent's own clock: seconds from the kernel's start to its first lookup
				if m := agentUpRE.FindStringSubmatch(f.qb.Console("gen10-0")); m != nil {
					if up, err := strconv.ParseFloat(m[1], 64); err == nil {
						b.ReportMetric(up, "agent-up-after-kernel-s")
					}
				}
				if m := agentRSSRE.FindStringSubmatch(f.qb.Console("gen10-0")); m != nil {
					if mib, err := strconv.ParseFloat(m[1], 64); err == nil {
						b.ReportMetric(mib, "agent-max-rss-MiB")
					}
				}
				rate := float64(size) / 1e6 / write.Seconds()
				b.ReportMetric(p.bootRamdisk.Seconds(), "boot-s")
				b.ReportMetric(p.agentUp.Seconds(), "agent-up-s")
				b.ReportMetric(write.Seconds(), "write-s")
				b.ReportMetric(rate, "write-MB/s")
				b.ReportMetric(limit, "qemu-img-MB/s")
				b.ReportMetric(rate/limit, "write-ratio")
				b.ReportMetric(p.reboot.Seconds(), "reboot-s")
				b.ReportMetric(wall.Seconds(), "deploy-s")
				b.Logf("%s %d MiB: %s; write %.1f MB/s vs qemu-img convert %.1f MB/s (%.2fx)", format, size>>20, p, rate, limit, rate/limit)
				f.qb.Close()
			}
		})
	}
}

// agentUpRE reads the kernel uptime the agent printed when it was up.
var agentUpRE = regexp.MustCompile(`LIGHTSOUT-AGENT-UP url=\S+ uptime=([0-9.]+)`)

// agentRSSRE reads the agent's peak RSS from its power-off line.
var agentRSSRE = regexp.MustCompile(`LIGHTSOUT-AGENT-POWEROFF max_rss_mib=([0-9.]+)`)

// padImage copies the bootable test disk into a size-byte image whose space
// after the disk's 64 MiB is random (incompressible, nothing to skip), with
// the backup GPT moved to the new end: the image still boots.
func padImage(b *testing.B, src, out string, size int64) string {
	b.Helper()
	qemutest.CopyFile(b, src, out)
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := f.Stat()
	rng := rand.NewChaCha8([32]byte{1, 3})
	buf := make([]byte, 4<<20)
	for off := fi.Size(); off < size; off += int64(len(buf)) {
		_, _ = rng.Read(buf)
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("sgdisk", "-e", out).CombinedOutput(); err != nil {
		b.Fatalf("sgdisk -e: %v\n%s", err, out)
	}
	return out
}

// hostConvertRate is `qemu-img convert` of src into a fresh qcow2 file on
// the host (flushed), in MB/s: what writing the image can reach here.
func hostConvertRate(b *testing.B, src, format string) float64 {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "convert.qcow2")
	fi, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	virtual := fi.Size()
	if format == "qcow2" {
		virtual = int64(envInt("LIGHTSOUT_BENCH_IMAGE_MB", 1024)) << 20
	}
	start := time.Now()
	if out, err := exec.Command("qemu-img", "convert", "-t", "writeback", "-f", format, "-O", "qcow2", src, dst).CombinedOutput(); err != nil {
		b.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
		b.Fatalf("sync: %v\n%s", err, out)
	}
	return float64(virtual) / 1e6 / time.Since(start).Seconds()
}
