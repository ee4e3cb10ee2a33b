package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/localport"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

func requireISCSI(t *testing.T) {
	t.Helper()
	testenv.RequireTools(t, "tgtd", "tgtadm", "qemu-img")
	testenv.RequireFiles(t, "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so")
}

// freeTCPPort returns a port free on 127.0.0.1 below the ephemeral range
// (Linux: 32768-60999), so that no process listening on port 0 (a
// lightsout CLI's agent API) or connecting out gets it before the ramdisk's
// target listens on it.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	p, err := localport.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// portalClosed waits (bounded) until nothing accepts on 127.0.0.1:port:
// the emulated ramdisk stops its target when the server powers off, which
// a loaded machine may take a while to get to.
func portalClosed(port int) bool {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// iscsiNode turns gen10-0 into an iscsi_ilo node with CHAP and its own port.
func iscsiNode(t *testing.T, e *env, port int, img string, data []byte, extra map[string]any) {
	t.Helper()
	ctx := context.Background()
	e.makeAvailable("gen10-0")
	if _, err := e.app.UpdateNode(ctx, "gen10-0", app.NodeChange{Driver: "iscsi_ilo",
		DriverInfo: map[string]any{"iscsi_chap": true, "iscsi_port": port}}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if _, err := e.app.PrepareDeploy(ctx, "gen10-0", app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		if _, err := e.app.UpdateNode(ctx, "gen10-0", app.NodeChange{InstanceInfo: extra}); err != nil {
			t.Fatal(err)
		}
	}
}

// An iscsi_ilo deploy of a whole-disk image: the emulated ramdisk exports
// the simulated server's disk with a real tgtd (CHAP on), lightsout writes
// the image with qemu-img; the disk equals the image byte for byte.
func TestISCSIDeploy(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	e := open(t, f, "")
	e.importFleet()
	img, data := testImage(t, t.TempDir(), 5<<20+512)
	port := freeTCPPort(t)
	iscsiNode(t, e, port, img, data, nil)
	writeJunk(t, f.server(t, "gen10-0").DiskPath())

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	e.mustSucceed(res)
	n := e.node("gen10-0")
	if n.ProvisionState != states.Active || n.PowerState != "power on" || n.LastError != "" {
		t.Fatalf("state %q power %q last_error %q", n.ProvisionState, n.PowerState, n.LastError)
	}
	disk, err := os.ReadFile(f.server(t, "gen10-0").DiskPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk[:len(data)], data) {
		t.Fatal("the node's disk does not hold the image")
	}
	tl := e.timeline(res.RunID)
	for _, want := range []string{"iscsi.write", "iscsi.start_iscsi_target"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %s:\n%s", want, tl)
		}
	}
	if !portalClosed(port) {
		t.Error("the iSCSI target still answers after the deploy")
	}
	e.noMediaLeft("gen10-0")
	srv := f.server(t, "gen10-0")
	if st := srv.State(); len(st.PersistentBoot) == 0 || st.PersistentBoot[0] != "HDD" {
		t.Errorf("persistent boot order %v, want HDD first", st.PersistentBoot)
	}
}

// A ramdisk binding another CHAP secret: the deploy fails naming CHAP and
// driver_info.iscsi_chap, the node is powered off and nothing stays exported.
func TestISCSIDeployWrongCHAP(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	f.rd.SetFailures("gen10-0", ramdisk.Failures{WrongCHAPSecret: true})
	e := open(t, f, "")
	e.importFleet()
	img, data := testImage(t, t.TempDir(), 1<<20)
	port := freeTCPPort(t)
	iscsiNode(t, e, port, img, data, nil)

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	if res.Status != "failed" {
		t.Fatalf("run %s, want failed", res.Status)
	}
	n := e.node("gen10-0")
	if n.ProvisionState != states.DeployFailed || n.PowerState != "power off" {
		t.Fatalf("state %q power %q", n.ProvisionState, n.PowerState)
	}
	for _, want := range []string{"write image", "CHAP", "driver_info.iscsi_chap", "login_failed"} {
		if !strings.Contains(n.LastError, want) {
			t.Errorf("last_error %q lacks %q", n.LastError, want)
		}
	}
	if !portalClosed(port) {
		t.Error("the iSCSI target still answers after the failed deploy")
	}
	e.noMediaLeft("gen10-0")
}

// An image larger than the disk, and a whole-disk image with swap: §5.1
// messages; the second is refused before the node changes.
func TestISCSIDeployBadInput(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1), diskSize: 4 << 20})
	e := open(t, f, "")
	e.importFleet()
	img, data := testImage(t, t.TempDir(), 6<<20)
	port := freeTCPPort(t)
	iscsiNode(t, e, port, img, data, nil)

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	n := e.node("gen10-0")
	if res.Status != "failed" || n.ProvisionState != states.DeployFailed {
		t.Fatalf("run %s state %s, want failed / deploy failed", res.Status, n.ProvisionState)
	}
	if want := "Root partition is too small for requested image. Image size: 6 MB, Root size: 4 MB"; !strings.Contains(n.LastError, want) {
		t.Errorf("last_error %q lacks %q", n.LastError, want)
	}
	if !portalClosed(port) {
		t.Error("the iSCSI target still answers")
	}

	// whole-disk image with swap: refused in validate, state unchanged
	if _, err := e.app.UpdateNode(context.Background(), "gen10-0", app.NodeChange{InstanceInfo: map[string]any{"swap_mb": 512}}); err != nil {
		t.Fatal(err)
	}
	res = e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	n = e.node("gen10-0")
	if res.Status != "failed" || n.ProvisionState != states.DeployFailed {
		t.Fatalf("run %s state %s", res.Status, n.ProvisionState)
	}
	if !strings.Contains(res.Error, "Cannot deploy whole disk image with swap or ephemeral size set") {
		t.Errorf("error %q", res.Error)
	}
}

// A target that vanishes mid-write (the emulated ramdisk cuts the
// initiator once 4 MiB of the 16 MiB image went over, stops accepting and
// stops tgtd): after [iscsi] stall_timeout without progress the deploy
// fails in "write image" saying the connection to the target was lost
// during the write, the node is off, nothing is exported or published.
func TestISCSIDeployTargetVanishes(t *testing.T) {
	requireISCSI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	f.rd.SetFailures("gen10-0", ramdisk.Failures{TargetVanishesAfter: 4 << 20})
	e := open(t, f, "[iscsi]\nstall_timeout = 3\n")
	e.importFleet()
	img, data := testImage(t, t.TempDir(), 16<<20)
	port := freeTCPPort(t)
	iscsiNode(t, e, port, img, data, nil)

	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	n := e.node("gen10-0")
	if res.Status != "failed" || n.ProvisionState != states.DeployFailed || n.PowerState != "power off" {
		t.Fatalf("run %s state %s power %s, want failed / deploy failed / off\n%s", res.Status, n.ProvisionState, n.PowerState, e.timeline(res.RunID))
	}
	for _, want := range []string{`step "write image"`, "iqn.2008-10.org.openstack:" + n.UUID, "lost during the write", "transient"} {
		if !strings.Contains(n.LastError, want) {
			t.Errorf("last_error %q lacks %q", n.LastError, want)
		}
	}
	if bytes.Equal(data, mustRead(t, f.server(t, "gen10-0").DiskPath())[:len(data)]) {
		t.Error("the whole image reached the disk: the target did not vanish mid-write")
	}
	e.nothingLeft("gen10-0", "", port)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
