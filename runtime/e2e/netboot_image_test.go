package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// netbootRootMarker is what the test partition image's /sbin/init prints
// (testdata/tools/build-test-partition.sh).
const netbootRootMarker = "LIGHTSOUT-NETBOOT-ROOT-BOOTED"

// testPartition is the partition instance image of the netboot tests.
type testPartition struct {
	rootfs, kernel, initrd, uuid, id string
}

// buildTestPartition builds (or reuses from the test cache) the partition
// image, the instance kernel and its initramfs. The files are shared: copy
// them before writing.
func buildTestPartition(t testing.TB) testPartition {
	t.Helper()
	testenv.RequireTools(t, "mke2fs", "apt-get", "dpkg-deb", "busybox", "gzip")
	f := qemutest.BuildScript(t, "build-test-partition.sh", "testpartition", "ROOTFS KERNEL INITRD UUID")
	id, err := os.ReadFile(filepath.Join(filepath.Dir(f[0]), "id"))
	if err != nil {
		t.Fatal(err)
	}
	return testPartition{rootfs: f[0], kernel: f[1], initrd: f[2], uuid: f[3], id: strings.TrimSpace(string(id))}
}

// TestNetbootImageBoots boots the netboot test image without lightsout's
// deploy: a boot ISO built by image.WriteBootISO from the instance kernel and
// initramfs (root=UUID=<the partition image's UUID>) as CD, the partition
// image as the (virtio) disk, under SeaBIOS and OVMF; the initramfs finds
// and mounts the root by UUID and its /sbin/init prints the marker. A boot
// ISO naming another UUID does not reach the root.
func TestNetbootImageBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu three times (~15 s each under TCG)")
	}
	qemutest.Require(t, qemutest.UEFI)
	testenv.RequireTools(t, "grub-mkstandalone")
	p := buildTestPartition(t)
	dir := t.TempDir()
	iso := func(name, uuid string) string {
		out := filepath.Join(dir, name)
		if err := image.WriteBootISO(context.Background(), out, image.BootISOOptions{RootUUID: uuid, CacheDir: dir,
			ISO: image.ISOOptions{Kernel: p.kernel, Ramdisk: p.initrd, Append: "console=ttyS0,115200n8 panic=-1"}}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	good, wrong := iso("good.iso", p.uuid), iso("wrong.iso", "4c494748-5453-4f55-8000-00000000dead")
	for _, tc := range []struct {
		name   string
		fw     qemutest.Firmware
		iso    string
		marker string
	}{
		{"bios", qemutest.BIOS, good, netbootRootMarker + " id=" + p.id + " uuid=" + p.uuid + " firmware=bios"},
		{"uefi", qemutest.UEFI, good, netbootRootMarker + " id=" + p.id + " uuid=" + p.uuid + " firmware=uefi"},
		{"bios wrong uuid", qemutest.BIOS, wrong, "LIGHTSOUT-NETBOOT-ROOT-MISSING root=4c494748-5453-4f55-8000-00000000dead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			vm, err := qemutest.Start(ctx, qemutest.Options{Firmware: tc.fw, Disk: p.rootfs, Snapshot: true, Dir: t.TempDir(),
				Args: []string{"-drive", "if=ide,media=cdrom,readonly=on,format=raw,file=" + tc.iso, "-boot", "order=d"}})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Stop()
			if _, err := vm.Console.Wait(ctx, tc.marker, qemutest.FailMarkers...); err != nil {
				t.Fatalf("%v after %s\nconsole:\n%s", err, vm.Since().Round(time.Millisecond), vm.Console)
			}
			if err := vm.Wait(ctx); err != nil {
				t.Fatalf("guest did not power off: %v", err)
			}
			t.Logf("%s: marker after %.1fs", tc.name, vm.Since().Seconds())
		})
	}
}
