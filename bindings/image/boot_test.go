package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// Media boot under qemu (TCG only: KVM hangs on the project's machines).
// The deploy "ramdisk" is Debian's generic kernel + a busybox initramfs
// (testdata/tools/media-build-ramdisk.sh) whose /init mounts the floppy,
// prints parameters.txt and DEPLOY-RAMDISK-OK, and powers off.

const (
	bootMarker = "DEPLOY-RAMDISK-OK"
	ovmfFD     = "/usr/share/ovmf/OVMF.fd"
)

var bootFailMarkers = []string{"DEPLOY-RAMDISK-FAIL", "Kernel panic", "error: out of memory", "No bootable device",
	"Failed to boot both default and fallback entries", "not a bootable disk", "UEFI Interactive Shell"}

// testRamdisk builds (or reuses) the test kernel and initrd.
func testRamdisk(t *testing.T) (kernel, initrd string) {
	t.Helper()
	f := qemutest.BuildScript(t, "media-build-ramdisk.sh", "media", "KERNEL INITRD")
	return f[0], f[1]
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]|\x1b[()][0-9A-B]`)

// bootQEMU boots iso (+ floppy) under firmware "bios" (SeaBIOS) or "uefi"
// (OVMF) and returns the serial console log once the marker appeared; it
// returns an error on a failure marker, an early qemu exit or the timeout.
func bootQEMU(firmware, iso, floppy, dir string) (string, time.Duration, error) {
	logPath := filepath.Join(dir, firmware+"-serial.log")
	args := []string{"-machine", "pc", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-serial", "file:" + logPath,
		"-drive", "if=ide,index=2,media=cdrom,format=raw,readonly=on,file=" + iso,
		"-drive", "if=floppy,index=0,format=raw,readonly=on,file=" + floppy}
	switch firmware {
	case "bios":
		args = append(args, "-boot", "order=d") // else SeaBIOS boots the floppy's stub
	case "uefi":
		args = append(args, "-bios", ovmfFD)
	default:
		return "", 0, fmt.Errorf("firmware %q", firmware)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	// the guest powers off by itself: give it a moment after the marker
	return watchQEMU(ctx, args, logPath, bootMarker, bootFailMarkers, 5*time.Second)
}

// watchQEMU runs qemu-system-x86_64 with args (its serial console in the
// file logPath) and returns the console log once marker appeared, after
// waiting up to settle for qemu to exit by itself (the deferred kill ends
// it otherwise); it returns an error on a failure marker, an early qemu
// exit or the end of ctx.
func watchQEMU(ctx context.Context, args []string, logPath, marker string, failMarkers []string, settle time.Duration) (string, time.Duration, error) {
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
			elapsed := time.Since(start)
			if settle <= 0 {
				return log, elapsed, nil
			}
			select {
			case err := <-exited:
				exited <- err
			case <-time.After(settle):
			}
			return readLog(), elapsed, nil
		}
		for _, f := range failMarkers {
			if strings.Contains(log, f) {
				return log, time.Since(start), fmt.Errorf("failure marker %q", f)
			}
		}
	}
}

// checkBootLog asserts the ramdisk booted under firmware, saw the floppy
// (label ir-vfd-dev) with params, and got the ISO's kernel command line.
func checkBootLog(t *testing.T, firmware, log string, params map[string]string, cmdlineProbe string) {
	t.Helper()
	var missing []string
	want := []string{"RAMDISK-FIRMWARE " + firmware, "RAMDISK-PARAMS-DEVICE /dev/fd0", "RAMDISK-FAT-LABEL ir-vfd-dev\n", cmdlineProbe, bootMarker}
	block := log
	if i := strings.Index(log, "----- parameters.txt -----"); i >= 0 {
		block = log[i:]
		if j := strings.Index(block, "----- end -----"); j >= 0 {
			block = block[:j]
		}
	} else {
		missing = append(missing, "parameters.txt block")
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			missing = append(missing, w)
		}
	}
	for k, v := range params {
		if !strings.Contains(block, k+"="+v+"\n") {
			missing = append(missing, "param "+k+"="+v)
		}
	}
	if !regexp.MustCompile(`RAMDISK-CMDLINE .*` + regexp.QuoteMeta(cmdlineProbe)).MatchString(log) {
		missing = append(missing, "kernel command line with "+cmdlineProbe)
	}
	if len(missing) > 0 {
		t.Fatalf("%s boot: missing %q\nserial log:\n%s", firmware, missing, log)
	}
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestMediaBoot builds a hybrid ISO and a floppy with the Go API and boots
// them under SeaBIOS and OVMF, and builds a second pair with the lightsout
// binary (UEFI from the first ISO, i.e. Ironic's deploy-ISO path) and boots
// it under OVMF. The three boots run in parallel.
func TestMediaBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("media boot takes ~30 s")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "xorriso", "grub-mkstandalone", "fsck.vfat", "apt-get", "dpkg-deb", "busybox", "go")
	testenv.RequireFiles(t, ovmfFD, isolinuxCandidates[0], ldlinuxCandidates[0])
	kernel, initrd := testRamdisk(t)
	dir := t.TempDir()
	ctx := context.Background()

	// Go API media
	apiParams := map[string]string{"ipa-api-url": "http://127.0.0.1:6385", "boot_method": "vmedia", "lightsout_nonce": nonce()}
	apiProbe := "lightsout.probe=" + nonce()
	apiISO, apiFloppy := filepath.Join(dir, "api.iso"), filepath.Join(dir, "api.img")
	if err := WriteFloppy(ctx, apiFloppy, apiParams, FloppyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteISO(ctx, apiISO, ISOOptions{Kernel: kernel, Ramdisk: initrd,
		Append: "console=ttyS0,115200n8 panic=-1 " + apiProbe}); err != nil {
		t.Fatal(err)
	}

	// CLI media: UEFI boot files taken from the API ISO (--uefi-from)
	bin := filepath.Join(dir, "lightsout")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lightsout")
	build.Dir = qemutest.RepoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lightsout: %v\n%s", err, out)
	}
	cliParams := map[string]string{"ipa-api-url": "http://127.0.0.1:6385", "lightsout_nonce": nonce(), "deployment_id": "0000-1111"}
	cliProbe := "lightsout.probe=" + nonce()
	cliISO, cliFloppy := filepath.Join(dir, "cli.iso"), filepath.Join(dir, "cli.img")
	fargs := []string{"image", "floppy", "-o", cliFloppy}
	for k, v := range cliParams {
		fargs = append(fargs, "--param", k+"="+v)
	}
	extra := randFile(t, dir, "extra.bin", 50_000)
	fargs = append(fargs, "--file", "etc/extra.bin="+extra)
	for _, args := range [][]string{fargs, {"image", "iso", "-o", cliISO, "--kernel", kernel, "--ramdisk", initrd,
		"--append", "console=ttyS0,115200n8 panic=-1 " + cliProbe, "--uefi-from", apiISO}} {
		if out, rc := runCmd(t, bin, args...); rc != 0 || !strings.Contains(out, "wrote ") {
			t.Fatalf("lightsout %s: rc %d\n%s", strings.Join(args, " "), rc, out)
		}
	}

	for _, iso := range []string{apiISO, cliISO} {
		if got := elToritoReport(t, iso); strings.Join(got, ",") != "BIOS,UEFI" {
			t.Fatalf("%s: xorriso El Torito entries %v, want BIOS and UEFI", iso, got)
		}
	}
	fsckClean(t, apiFloppy)
	fsckClean(t, cliFloppy)

	boots := []struct {
		name, firmware, iso, floppy, probe string
		params                             map[string]string
	}{
		{"api-seabios", "bios", apiISO, apiFloppy, apiProbe, apiParams},
		{"api-ovmf", "uefi", apiISO, apiFloppy, apiProbe, apiParams},
		{"cli-ovmf-uefi-from", "uefi", cliISO, cliFloppy, cliProbe, cliParams},
	}
	// the check must be able to fail: a BIOS-only ISO under OVMF ends in the UEFI shell
	biosISO := filepath.Join(dir, "bios-only.iso")
	if err := WriteISO(ctx, biosISO, ISOOptions{Kernel: kernel, Ramdisk: initrd, BIOSOnly: true,
		Append: "console=ttyS0,115200n8 panic=-1"}); err != nil {
		t.Fatal(err)
	}

	// at most NumCPU guests at a time (TCG is single-threaded per guest)
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	for _, b := range boots {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			log, took, err := bootQEMU(b.firmware, b.iso, b.floppy, t.TempDir())
			if err != nil {
				t.Fatalf("%s: %v after %.1fs\nserial log:\n%s", b.firmware, err, took.Seconds(), log)
			}
			t.Logf("%s: %s after %.1fs", b.firmware, bootMarker, took.Seconds())
			checkBootLog(t, b.firmware, log, b.params, b.probe)
		})
	}
	t.Run("negative-bios-only-iso-under-ovmf", func(t *testing.T) {
		t.Parallel()
		sem <- struct{}{}
		defer func() { <-sem }()
		log, took, err := bootQEMU("uefi", biosISO, apiFloppy, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "UEFI Interactive Shell") {
			t.Fatalf("BIOS-only ISO under OVMF: err = %v after %.1fs, want the UEFI shell\nserial log:\n%s", err, took.Seconds(), log)
		}
	})
}
