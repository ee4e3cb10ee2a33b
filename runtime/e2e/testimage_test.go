package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// TestTestImageBoots boots the test instance image (testdata/tools/
// build-test-disk.sh) straight under qemu, without lightsout: the image the
// deploy tests write must itself boot under SeaBIOS (Gen8, legacy BIOS),
// OVMF (Gen10, UEFI) and OVMF with secure boot on (Debian's signed shim,
// GRUB and kernel), and say so on its serial console. The raw and the qcow2
// forms are the same disk.
func TestTestImageBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu three times (~15 s each under TCG)")
	}
	qemutest.Require(t, qemutest.UEFI, qemutest.UEFISecureBoot)
	disk := qemutest.BuildTestDisk(t)
	tests := []struct {
		fw         qemutest.Firmware
		disk       string
		format     string
		wantFW     string
		secureBoot bool
	}{
		{qemutest.BIOS, disk.Raw, "raw", "bios", false},
		{qemutest.UEFI, disk.QCOW2, "qcow2", "uefi", false},
		{qemutest.UEFISecureBoot, disk.Raw, "raw", "uefi", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.fw), func(t *testing.T) {
			// one guest at a time: the machine has 2 cores shared with other work
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			vm, err := qemutest.Start(ctx, qemutest.Options{Firmware: tt.fw, Disk: tt.disk, DiskFormat: tt.format,
				Snapshot: true, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Stop()
			line, err := vm.Console.Wait(ctx, qemutest.BootMarker, qemutest.FailMarkers...)
			if err != nil {
				t.Fatalf("%v after %s\nconsole:\n%s", err, vm.Since().Round(time.Millisecond), vm.Console)
			}
			took := vm.Since()
			fw, sb, ok := qemutest.ParseBootMarker(line)
			if !ok || fw != tt.wantFW || sb != tt.secureBoot {
				t.Fatalf("marker %q: firmware %q secureboot %v, want %q %v", line, fw, sb, tt.wantFW, tt.secureBoot)
			}
			if !strings.Contains(vm.Console.String(), "LIGHTSOUT-TEST-IMAGE-ID "+disk.ID) {
				t.Errorf("console lacks the image id %s:\n%s", disk.ID, vm.Console)
			}
			// the image powers the VM off by itself
			if err := vm.Wait(ctx); err != nil {
				t.Fatalf("guest did not power off: %v", err)
			}
			t.Logf("%s: %q after %.1fs", tt.fw, line, took.Seconds())
		})
	}
	// the secure-boot check can fail: the same disk with the UNSIGNED shim
	// is refused by the firmware
	t.Run("uefi-secureboot-unsigned-shim-refused", func(t *testing.T) {
		testenv.RequireTools(t, "mcopy")
		testenv.RequireFiles(t, unsignedShim)
		neg := filepath.Join(t.TempDir(), "unsigned.raw")
		qemutest.CopyFile(t, disk.Raw, neg)
		cmd := exec.Command("mcopy", "-o", "-i", neg+"@@1M", unsignedShim, "::/EFI/BOOT/BOOTX64.EFI")
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mcopy: %v\n%s", err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		vm, err := qemutest.Start(ctx, qemutest.Options{Firmware: qemutest.UEFISecureBoot, Disk: neg, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Stop()
		if _, err := vm.Console.Wait(ctx, "Access Denied", qemutest.BootMarker); err != nil {
			t.Fatalf("unsigned shim under secure boot: %v\nconsole:\n%s", err, vm.Console)
		}
	})
}

// unsignedShim is shim before Microsoft signed it (package shim-unsigned, a
// dependency of shim-signed).
const unsignedShim = "/usr/lib/shim/shimx64.efi"
