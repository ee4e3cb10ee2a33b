package e2e_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
)

// TestQemuISCSINetboot is the netboot proof on qemu-backed servers: the
// partition image of testdata/tools/build-test-partition.sh is deployed with
// iscsi_ilo (lightsout partitions the VM's disk over iSCSI and writes the
// ext4 root), boot_option netboot, to a Gen8 in BIOS mode and a Gen10 in UEFI
// mode. After the deploy the VM boots the published boot ISO (the instance's
// Debian kernel and busybox initramfs, root=UUID=<the image's UUID>) and the
// root file system's own /sbin/init prints its marker: the instance runs from
// the deployed root. Then `node power reboot` through the power path
// attaches a freshly published ISO (another URL) and the VM boots the
// deployed root again.
func TestQemuISCSINetboot(t *testing.T) {
	requireQemuE2E(t)
	requireISCSI(t)
	tp := buildTestPartition(t)
	kernel, initramfs := deployRamdisk(t, "")
	f := newQemuFleet(t, "", []sim.NodeSpec{{Generation: sim.Gen8, Count: 1}, {Generation: sim.Gen10, Count: 1}}, 1200<<20)
	e := open(t, f.fleet, qemuConfig(t), qemuSiteDir(t))
	e.importQemuFleet(kernel, initramfs)
	ctx := context.Background()

	// the instance's files, where scripts may read them
	dir := t.TempDir()
	img, ik, ir := filepath.Join(dir, "root.ext4"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	qemutest.CopyFile(t, tp.rootfs, img)
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
		if _, err := e.app.UpdateNode(ctx, c.node, app.NodeChange{InstanceInfo: map[string]any{
			"kernel": ik, "ramdisk": ir, "root_gb": 1, "kernel_append_params": "console=ttyS0,115200n8 panic=-1",
			"capabilities": map[string]any{"boot_mode": c.mode, "boot_option": "netboot"}}}); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.node)
	}
	byNode := e.qemuDeploys(names, "netboot deploys")
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := byNode[c.node]
			console, _ := e.app.RunConsole(ctx, r.RunID)
			dump := func() string {
				return "timeline:\n" + e.timeline(r.RunID) + "\nVM console (tail):\n" + tailText(f.qb.Console(c.node), 6000)
			}
			if !r.Succeeded() {
				t.Fatalf("deploy %s: %s\n%s", r.Status, r.Error, dump())
			}
			n := e.node(c.node)
			if n.ProvisionState != states.Active || n.DriverInternalInfo["root_uuid_or_disk_id"] != tp.uuid {
				t.Fatalf("state %s root_uuid_or_disk_id %v, want active and %s", n.ProvisionState, n.DriverInternalInfo["root_uuid_or_disk_id"], tp.uuid)
			}
			marker := netbootRootMarker + " id=" + tp.id + " uuid=" + tp.uuid + " firmware=" + c.mode
			if !strings.Contains(console, marker) {
				t.Fatalf("the run's console lacks %q: the instance did not boot the deployed root\n%s", marker, dump())
			}
			// isolinux adds initrd=/initrd, GRUB BOOT_IMAGE=/vmlinuz; the rest is the boot ISO's
			wantLine := "root=UUID=" + tp.uuid + " console=ttyS0,115200n8 panic=-1"
			if line := consoleLine(console, "LIGHTSOUT-NETBOOT-CMDLINE "); !strings.Contains(line, wantLine) {
				t.Errorf("the instance's kernel command line %q lacks %q", line, wantLine)
			}
			srv := f.server(t, c.node)
			cd := srv.State().Media["CDROM"]
			if !cd.Inserted || !strings.Contains(cd.URL, "boot-"+n.UUID+"-r") {
				t.Fatalf("CDROM after deploy %+v, want the boot ISO", cd)
			}

			// reboot through the power path (the instance powered itself off)
			before := strings.Count(f.qb.Console(c.node), marker)
			pr, _ := e.app.Engine.RunMany(ctx, runtime.RunRequest{Script: app.ScriptNodePower, Timeout: qemuDeployTimeout,
				Params: map[string]string{"action": "reboot"}}, []string{c.node}, 1, nil)
			if len(pr) != 1 || !pr[0].Succeeded() {
				t.Fatalf("node power reboot: %+v\n%s", pr, e.timeline(pr[0].RunID))
			}
			cd2 := srv.State().Media["CDROM"]
			if !cd2.Inserted || cd2.URL == cd.URL || !strings.Contains(cd2.URL, "boot-"+n.UUID+"-r") {
				t.Fatalf("CDROM after reboot %+v, want a freshly published boot ISO (not %s)", cd2, cd.URL)
			}
			// the VM boots the fresh ISO and the deployed root again (polling
			// the console with a deadline: the power run returns at power on)
			deadline := time.Now().Add(5 * time.Minute)
			for strings.Count(f.qb.Console(c.node), marker) <= before {
				if time.Now().After(deadline) {
					t.Fatalf("no second %q after the reboot\nVM console (tail):\n%s", marker, tailText(f.qb.Console(c.node), 6000))
				}
				time.Sleep(500 * time.Millisecond)
			}
			if arts := e.bootISOArtifacts(n.UUID); len(arts) != 1 || !strings.Contains(cd2.URL, strings.TrimPrefix(arts[0].Location, "web:")) {
				t.Errorf("boot ISO artifacts after the reboot: %+v, want only the one attached (%s)", arts, cd2.URL)
			}
			evs := mustEvents(t, e, r.RunID)
			t.Logf("%s: write image %.1fs, deploy run %.1fs; rebooted into the deployed root", c.mode,
				stepSpan(evs, "write image", "write image").Seconds(),
				stepSpan(evs, "validate", "test: instance boots and powers off").Seconds())
		})
	}
}

// consoleLine returns the first console line starting with prefix ("" if none).
func consoleLine(console, prefix string) string {
	for _, l := range strings.Split(console, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}
