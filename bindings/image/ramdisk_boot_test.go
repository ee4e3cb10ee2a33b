package image

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

const probeMarker = "RAMDISK-PROBE-OK"

// bootKernelQEMU boots a pc machine under TCG with boot (e.g. -kernel K
// -initrd I -append A, or -cdrom ISO) and the serial console in a file and
// returns the console log once marker appeared (or an error on a panic, an
// early exit or the deadline).
func bootKernelQEMU(ctx context.Context, boot []string, marker, dir string) (string, time.Duration, error) {
	logPath := filepath.Join(dir, "serial.log")
	args := append([]string{"-machine", "pc", "-accel", "tcg", "-m", "768", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-serial", "file:" + logPath}, boot...)
	return watchQEMU(ctx, args, logPath, marker, []string{"Kernel panic", "RAMDISK-PROBE-FAIL"}, 0)
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
	log, took, err := bootKernelQEMU(ctx, []string{"-kernel", r.Kernel, "-initrd", r.Initramfs,
		"-append", "console=ttyS0 panic=-1 quiet"}, probeMarker, t.TempDir())
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

// TestRamdiskConsoleOrder boots with the two console orders: the last
// console= is /dev/console, where /init writes; only with ttyS0 last does
// its output reach the serial line (why DefaultRamdiskAppend puts it last).
func TestRamdiskConsoleOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under qemu TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64")
	requireKernel(t)
	probe := probeBinary(t)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"vfat"}})
	for _, tc := range []struct {
		append string
		serial bool
	}{{DefaultRamdiskAppend, true}, {"console=ttyS0 console=tty0", false}} {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		// the kernel's own power-down message ends the run in both cases
		log, took, err := bootKernelQEMU(ctx, []string{"-kernel", r.Kernel, "-initrd", r.Initramfs,
			"-append", tc.append + " panic=-1"}, "reboot: Power down", t.TempDir())
		cancel()
		if err != nil {
			t.Fatalf("%q: %v after %.1fs\nserial log:\n%s", tc.append, err, took.Seconds(), log)
		}
		if got := strings.Contains(log, probeMarker); got != tc.serial {
			t.Errorf("append %q: /init output on the serial line = %v, want %v\nserial log:\n%s", tc.append, got, tc.serial, log)
		}
	}
}

// TestRamdiskISO builds the deploy ISO (--iso) and boots it under SeaBIOS:
// the probe /init runs and writes to the serial line through the default
// command line. A second build reuses everything; another --append
// rebuilds only the ISO.
func TestRamdiskISO(t *testing.T) {
	if testing.Short() {
		t.Skip("boots an ISO under qemu TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "grub-mkstandalone", "xorriso")
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	requireKernel(t)
	probe := probeBinary(t)
	dir := t.TempDir()
	o := RamdiskOptions{OutputDir: dir, Binary: probe, ISO: true}
	r := buildTestRamdisk(t, o)
	if r.ISO != filepath.Join(dir, RamdiskISOName) || r.ISOSize == 0 {
		t.Fatalf("ISO %q, %d bytes", r.ISO, r.ISOSize)
	}
	if got := elToritoReport(t, r.ISO); strings.Join(got, ",") != "BIOS,UEFI" {
		t.Fatalf("El Torito entries %v, want BIOS and UEFI", got)
	}
	cmdline, err := KernelCmdline(r.ISO)
	if err != nil || !strings.Contains(cmdline, DefaultRamdiskAppend) {
		t.Fatalf("ISO kernel command line %q (%v), want %q", cmdline, err, DefaultRamdiskAppend)
	}
	isoSt, _ := os.Stat(r.ISO)
	if r2 := buildTestRamdisk(t, o); !r2.Cached {
		t.Error("unchanged --iso build was not cached")
	} else if st, _ := os.Stat(r.ISO); !st.ModTime().Equal(isoSt.ModTime()) {
		t.Error("unchanged --iso build rewrote the ISO")
	}
	o.Append = DefaultRamdiskAppend + " lightsout.probe=" + nonce()
	r3 := buildTestRamdisk(t, o)
	if cl, _ := KernelCmdline(r3.ISO); !r3.Cached || !strings.Contains(cl, o.Append) {
		t.Errorf("--append change: initramfs cached %v (want true), ISO command line %q", r3.Cached, cl)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log, took, err := bootKernelQEMU(ctx, []string{"-cdrom", r3.ISO, "-boot", "order=d"}, probeMarker, t.TempDir())
	if err != nil {
		t.Fatalf("ISO boot: %v after %.1fs\nserial log:\n%s", err, took.Seconds(), log)
	}
	if !strings.Contains(log, "RAMDISK-PROBE-START pid=1 ") {
		t.Fatalf("ISO boot: /init did not run as PID 1\n%s", log)
	}
	t.Logf("ISO boot: %s after %.1fs", probeMarker, took.Seconds())

	// a rebuild without --iso removes the ISO of the old initramfs
	o.ISO, o.Force = false, true
	buildTestRamdisk(t, o)
	if _, err := os.Stat(r.ISO); !os.IsNotExist(err) {
		t.Errorf("stale ISO left after a rebuild without --iso: %v", err)
	}
}

// TestRamdiskBootsAgent boots the ramdisk with the real lightsout binary as
// /init: as PID 1 it runs the agent's init mode, which loads modules.load
// and prints LIGHTSOUT-AGENT-START on /dev/console (the contract of issue
// 13). Skipped while the binary has no agent command.
func TestRamdiskBootsAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under qemu TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64")
	requireKernel(t)
	bin := buildLightsout(t)
	if out, rc := runCmd(t, bin, "agent", "--help"); rc != 0 {
		t.Skipf("this lightsout has no agent command yet: %s", lastLines(out, 1))
	}
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: bin})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log, took, err := bootKernelQEMU(ctx, []string{"-kernel", r.Kernel, "-initrd", r.Initramfs,
		"-append", "console=ttyS0 panic=-1 ipa-api-url=http://10.0.2.2:9"}, "LIGHTSOUT-AGENT-START", t.TempDir())
	if err != nil {
		t.Fatalf("boot: %v after %.1fs\nserial log:\n%s", err, took.Seconds(), log)
	}
	t.Logf("LIGHTSOUT-AGENT-START after %.1fs", took.Seconds())
}

// TestRamdiskAgentLoadsModulesForDevices boots the agent ramdisk on a q35
// machine with a USB controller and no USB device: init's coldplug pass
// loads the drivers of the devices present only (not all of modules.load),
// then a USB stick plugged in after the agent started (as the iLO attaches
// virtual media) gets usb-storage from the kernel's uevent, and its disk
// appears.
func TestRamdiskAgentLoadsModulesForDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a kernel under qemu TCG")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "mkfs.vfat")
	requireKernel(t)
	bin := buildLightsout(t)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: bin})
	dir := t.TempDir()
	stick := filepath.Join(dir, "stick.img")
	if err := os.WriteFile(stick, make([]byte, 1440<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, rc := runCmd(t, "mkfs.vfat", "-n", "HOTPLUG", stick); rc != 0 {
		t.Fatalf("mkfs.vfat: %s", out)
	}
	logPath, mon := filepath.Join(dir, "serial.log"), filepath.Join(dir, "mon.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "unix:"+mon+",server=on,wait=off", "-no-reboot", "-nic", "none",
		"-serial", "file:"+logPath, "-device", "qemu-xhci,id=xhci",
		"-drive", "if=none,id=stick,format=raw,readonly=on,file="+stick,
		"-kernel", r.Kernel, "-initrd", r.Initramfs, "-append", "console=ttyS0 panic=-1 ipa-api-url=http://10.0.2.2:9")
	var qout strings.Builder
	cmd.Stdout, cmd.Stderr = &qout, &qout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// waitLog polls the serial log until re matches (the console is a file)
	waitLog := func(re *regexp.Regexp) []string {
		t.Helper()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			b, _ := os.ReadFile(logPath)
			if m := re.FindStringSubmatch(string(b)); m != nil {
				return m
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no %s on the console\n%s\nqemu: %s", re, b, qout.String())
			case <-tick.C:
			}
		}
	}
	m := waitLog(regexp.MustCompile(`lightsout init: (\d+) of (\d+) kernel modules loaded for this machine's devices`))
	waitLog(regexp.MustCompile(`LIGHTSOUT-AGENT-START`))
	if n, total := atoi(t, m[1]), atoi(t, m[2]); n >= total || total != len(r.Modules) {
		t.Errorf("coldplug loaded %d of %d modules (the ramdisk has %d): want only the present devices' drivers", n, total, len(r.Modules))
	}
	if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "usb_storage loaded") || strings.Contains(string(b), "Intel(R) PRO/1000") {
		t.Fatalf("usb-storage or e1000 loaded without their device\n%s", b)
	}
	conn, err := net.Dial("unix", mon)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("device_add usb-storage,bus=xhci.0,drive=stick,id=stick0\n")); err != nil {
		t.Fatal(err)
	}
	waitLog(regexp.MustCompile(`lightsout init: usb-storage loaded for usb:v46F4p0001\S*ic08isc06ip50`))
	waitLog(regexp.MustCompile(`\[sd[a-z]\] Attached SCSI (removable )?disk`))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
