package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

const probeMarker = "RAMDISK-PROBE-OK"

// bootKernelQEMU boots kernel+initrd directly (-kernel/-initrd) under TCG
// with the serial console in a file and returns the console log once
// marker appeared (or an error on a panic, an early exit or the deadline).
func bootKernelQEMU(ctx context.Context, kernel, initrd, appendArgs, marker, dir string) (string, time.Duration, error) {
	logPath := filepath.Join(dir, "serial.log")
	args := []string{"-machine", "pc", "-accel", "tcg", "-m", "768", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-serial", "file:" + logPath, "-kernel", kernel, "-initrd", initrd, "-append", appendArgs}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	readLog := func() string {
		b, _ := os.ReadFile(logPath)
		return strings.ReplaceAll(ansiRE.ReplaceAllString(string(b), ""), "\r", "")
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case err := <-exited:
			exited <- err
			log := readLog()
			if strings.Contains(log, marker) {
				return log, time.Since(start), nil
			}
			return log, time.Since(start), fmt.Errorf("qemu exited without %s (%v): %s", marker, err, qout.String())
		case <-ctx.Done():
			return readLog(), time.Since(start), fmt.Errorf("no %s within %s", marker, time.Since(start).Round(time.Second))
		}
		log := readLog()
		if strings.Contains(log, marker) {
			return log, time.Since(start), nil
		}
		for _, f := range []string{"Kernel panic", "RAMDISK-PROBE-FAIL"} {
			if strings.Contains(log, f) {
				return log, time.Since(start), fmt.Errorf("failure marker %q", f)
			}
		}
	}
}

// TestRamdiskBoot boots the built kernel + initramfs under qemu (TCG) with
// the probe as /init: the kernel unpacks the archive and runs /init as PID
// 1, which loads every module of modules.load with finit_module. No module
// may fail for a missing symbol (ENOENT: wrong order), a bad format
// (ENOEXEC: compressed or foreign) or a version mismatch (EINVAL); the
// drivers of hardware the VM lacks may refuse with ENODEV.
func TestRamdiskBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under qemu TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64")
	requireKernel(t)
	probe := probeBinary(t)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log, took, err := bootKernelQEMU(ctx, r.Kernel, r.Initramfs, "console=ttyS0 panic=-1 quiet", probeMarker, t.TempDir())
	if err != nil {
		t.Fatalf("boot: %v after %.1fs\nserial log:\n%s", err, took.Seconds(), log)
	}
	t.Logf("%s after %.1fs", probeMarker, took.Seconds())
	if !regexp.MustCompile(`RAMDISK-PROBE-START pid=1 `).MatchString(log) {
		t.Errorf("/init did not run as PID 1:\n%s", log)
	}
	results := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^RAMDISK-PROBE-LOAD (\S+) (.+)$`).FindAllStringSubmatch(log, -1) {
		results[m[1]] = m[2]
	}
	loaded := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^RAMDISK-PROBE-LOADED (\S+)$`).FindAllStringSubmatch(log, -1) {
		loaded[m[1]] = true
	}
	var bad []string
	for _, p := range r.Modules {
		res, ok := results[p]
		switch {
		case !ok:
			bad = append(bad, p+": not attempted")
		case res == "ok" || res == "exists":
			if !loaded[moduleName(p)] {
				bad = append(bad, p+": loaded but not in /proc/modules")
			}
		case res == "errno=ENODEV":
			t.Logf("%s: ENODEV (no such hardware in the VM)", p)
		default:
			bad = append(bad, p+": "+res)
		}
	}
	// the drivers of the VM's own hardware and the file systems must load
	for _, m := range []string{"ata_piix", "ahci", "nvme", "virtio_blk", "virtio_net", "virtio_pci", "sd_mod", "sr_mod", "e1000",
		"usb_storage", "uas", "xhci_pci", "hpsa", "smartpqi", "vfat", "isofs", "nls_cp437", "mlx5_core", "i40e", "ice", "tg3", "bnx2x"} {
		if !loaded[m] {
			bad = append(bad, m+": not in /proc/modules")
		}
	}
	if len(bad) > 0 {
		t.Fatalf("modules.load under kernel %s:\n  %s\nserial log:\n%s", r.KernelVersion, strings.Join(bad, "\n  "), log)
	}
}
