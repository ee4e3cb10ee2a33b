package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
)

// An iscsi_ilo deploy to a qemu-backed Gen10 (UEFI) with lightsout's real
// agent: the ramdisk (built --with-tgtd) exports its virtio disk with tgtd
// (CHAP on), lightsout writes the qcow2 image through the VM's second
// host forward (driver_info.iscsi_portal), the instance boots from disk.
func TestQemuISCSIDeploy(t *testing.T) {
	requireQemuE2E(t)
	requireISCSI(t)
	im := testInstanceImage(t)
	kernel, initramfs := deployRamdisk(t, "")
	f := newQemuFleet(t, "", []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, 256<<20)
	e := open(t, f.fleet, qemuConfig(t), qemuSiteDir(t))
	e.importQemuFleet(kernel, initramfs)
	ctx := context.Background()
	node := "gen10-0"
	e.makeAvailable(node)
	if _, err := e.app.UpdateNode(ctx, node, app.NodeChange{Driver: "iscsi_ilo", DriverInfo: map[string]any{"iscsi_chap": true}}); err != nil {
		t.Fatal(err)
	}
	if p := e.node(node).DriverInfo["iscsi_portal"]; p == nil || p == "" {
		t.Fatalf("the qemu-backed node has no driver_info.iscsi_portal: %v", e.node(node).DriverInfo)
	}
	if _, err := e.app.PrepareDeploy(ctx, node, app.DeployOptions{ImageSource: im.qcow2, ImageChecksum: "sha256:" + im.qcowSHA256,
		ImageDiskFormat: "qcow2", Capabilities: map[string]string{"boot_mode": "uefi"}}); err != nil {
		t.Fatal(err)
	}
	r := runOne(t, e, app.ScriptDeploy, node)
	console, _ := e.app.RunConsole(ctx, r.RunID)
	dump := func() string {
		return "timeline:\n" + e.timeline(r.RunID) + "\nVM console (tail):\n" + tailText(f.qb.Console(node), 6000)
	}
	if !r.Succeeded() {
		t.Fatalf("deploy %s: %s\n%s", r.Status, r.Error, dump())
	}
	if !strings.Contains(console, "ISCSI-TARGET-READY") || !strings.Contains(console, "ISCSI-TARGET-STOPPED") {
		t.Errorf("the run's console lacks the agent's iSCSI target lines\n%s", dump())
	}
	if fw, _, ok := qemutest.ParseBootMarker(console); !ok || fw != "uefi" {
		t.Errorf("instance marker firmware=%q found=%v\n%s", fw, ok, dump())
	}
	if n := e.node(node); n.ProvisionState != states.Active || n.LastError != "" {
		t.Errorf("state %s last_error %q", n.ProvisionState, n.LastError)
	}
	raw := diskRaw(t, f.qb.DiskPath(node))
	if got, _ := prefixSHA256(t, raw, im.rawSize); got != im.rawSHA256 {
		t.Errorf("the disk does not start with the image (sha256 %s, want %s)", got, im.rawSHA256)
	}
	evs := mustEvents(t, e, r.RunID)
	t.Logf("iscsi_ilo qcow2: write image %.1fs, run %.1fs", stepSpan(evs, "write image", "write image").Seconds(),
		stepSpan(evs, "validate", "test: instance boots and powers off").Seconds())
}
