package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
)

// localbootRootMarker is what the GRUB test partition image's /sbin/init
// prints (testdata/tools/build-test-grub-partition.sh).
const localbootRootMarker = "LIGHTSOUT-LOCALBOOT-ROOT-BOOTED"

// buildTestGrubPartition builds (or reuses from the test cache) the
// partition image carrying GRUB; it returns the (shared: copy it) ext4
// image, its UUID and its id.
func buildTestGrubPartition(t testing.TB) (rootfs, uuid, id string) {
	t.Helper()
	testenv.RequireTools(t, "mke2fs", "apt-get", "dpkg-deb", "busybox", "gzip", "ldd", "gettext")
	f := qemutest.BuildScript(t, "build-test-grub-partition.sh", "testgrubpartition", "ROOTFS UUID")
	b, err := os.ReadFile(filepath.Join(filepath.Dir(f[0]), "id"))
	if err != nil {
		t.Fatal(err)
	}
	return f[0], f[1], strings.TrimSpace(string(b))
}

// TestQemuISCSILocalBoot is the local-boot proof for partition images: the
// image of testdata/tools/build-test-grub-partition.sh (an ext4 root holding
// a kernel, an initramfs and Debian's GRUB) is deployed with iscsi_ilo,
// boot_option local, to a qemu-backed Gen8 in BIOS mode and a Gen10 in UEFI
// mode. lightsout writes the partitions over iSCSI, then the lightsout
// agent's image.install_bootloader runs the image's own grub-install
// (--target=i386-pc; --target=x86_64-efi --removable into the ESP) and
// grub-mkconfig chrooted into the root; the deploy sets the boot device to
// the disk and the VM boots through the installed GRUB (no boot ISO) to the
// root file system's /sbin/init, whose marker the run's console holds.
func TestQemuISCSILocalBoot(t *testing.T) {
	requireQemuE2E(t)
	requireISCSI(t)
	src, uuid, id := buildTestGrubPartition(t)
	tp := buildTestPartition(t) // its kernel and initramfs, as instance_info names them
	kernel, initramfs := deployRamdisk(t, "")
	f := newQemuFleet(t, "", []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 1}}, 1400<<20) // UEFI: a 200 MiB ESP and a 1 GiB root
	e := open(t, f.fleet, qemuConfig(t), qemuSiteDir(t))
	e.importQemuFleet(kernel, initramfs)
	ctx := context.Background()

	dir := t.TempDir()
	img, ik, ir := filepath.Join(dir, "root.ext4"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	qemutest.CopyFile(t, src, img)
	qemutest.CopyFile(t, tp.kernel, ik)
	qemutest.CopyFile(t, tp.initrd, ir)
	sum, _ := fileSHA256(t, img)
	cases := []struct{ node, mode string }{{"gen8-0", "bios"}, {"gen10-0", "uefi"}}
	var names []string
	for _, c := range cases {
		e.makeAvailable(c.node)
		if _, err := e.app.UpdateNode(ctx, c.node, app.NodeChange{Driver: "iscsi_ilo"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.app.PrepareDeploy(ctx, c.node, app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sum}); err != nil {
			t.Fatal(err)
		}
		// instance_info.kernel and ramdisk mark a partition image (as in
		// Ironic); with local boot GRUB boots the root's own /boot files
		if _, err := e.app.UpdateNode(ctx, c.node, app.NodeChange{InstanceInfo: map[string]any{
			"kernel": ik, "ramdisk": ir, "root_gb": 1,
			"capabilities": map[string]any{"boot_mode": c.mode, "boot_option": "local"}}}); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.node)
	}
	byNode := e.qemuDeploys(names, "local-boot deploys")
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := byNode[c.node]
			console, _ := e.app.RunConsole(ctx, r.RunID)
			dump := func() string {
				return "timeline:\n" + e.timeline(r.RunID) + "\nVM console (tail):\n" + tailText(f.qb.Console(c.node), 8000)
			}
			if !r.Succeeded() {
				t.Fatalf("deploy %s: %s\n%s", r.Status, r.Error, dump())
			}
			n := e.node(c.node)
			if n.ProvisionState != states.Active || n.DriverInternalInfo["root_uuid_or_disk_id"] != uuid {
				t.Fatalf("state %s root_uuid_or_disk_id %v, want active and %s\n%s", n.ProvisionState, n.DriverInternalInfo["root_uuid_or_disk_id"], uuid, dump())
			}
			if !strings.Contains(console, deployagent.ConsoleBootloader+" installed root_uuid="+uuid) ||
				!strings.Contains(consoleLine(console, deployagent.ConsoleBootloader+" installed"), "mode="+c.mode) {
				t.Fatalf("the agent did not report installing the boot loader\n%s", dump())
			}
			marker := localbootRootMarker + " id=" + id + " uuid=" + uuid + " firmware=" + c.mode
			if !strings.Contains(console, marker) {
				t.Fatalf("the run's console lacks %q: the VM did not boot the deployed root from its disk\n%s", marker, dump())
			}
			// GRUB ran (10_linux's menu entry echoes this on the serial terminal)
			if !strings.Contains(console, "Loading Linux") {
				t.Errorf("the console lacks GRUB's \"Loading Linux\"\n%s", dump())
			}
			// the command line is grub-mkconfig's (10_linux): the root's own
			// kernel, the root by UUID (the agent's /dev/disk/by-uuid link),
			// /etc/default/grub's GRUB_CMDLINE_LINUX
			line := consoleLine(console, "LIGHTSOUT-LOCALBOOT-CMDLINE ")
			for _, want := range []string{"BOOT_IMAGE=/boot/vmlinuz-", "root=UUID=" + uuid, "console=ttyS0"} {
				if !strings.Contains(line, want) {
					t.Errorf("the instance's kernel command line %q lacks %q", line, want)
				}
			}
			if cd := f.server(t, c.node).State().Media["CDROM"]; cd.Inserted {
				t.Errorf("CDROM after a local-boot deploy %+v, want none (the disk boots)", cd)
			}
			evs := mustEvents(t, e, r.RunID)
			t.Logf("%s: write image %.1fs, deploy run %.1fs; booted the deployed root through GRUB: %s", c.mode,
				stepSpan(evs, "write image", "write image").Seconds(),
				stepSpan(evs, "validate", "test: instance boots and powers off").Seconds(), line)
		})
	}
}
