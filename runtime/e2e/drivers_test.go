package e2e_test

import (
	"bytes"
	"context"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/pxe"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// The three drivers on one fleet: helpers that make a node an agent_ilo,
// iscsi_ilo or pxe_ilo node, and check that nothing of a node is left.

// pxeBootServer serves a fresh [pxe] tftp_root over HTTP as the emulated
// ramdisk's network boots fetch it (fleetOptions.pxeServer); returns the
// root and the server's URL.
func pxeBootServer(t testing.TB) (root, url string) {
	t.Helper()
	root = t.TempDir()
	hs := httptest.NewServer(pxe.HTTPHandler(pxe.Tree{Root: root}, nil))
	t.Cleanup(hs.Close)
	return root, hs.URL
}

// pxeFilesUnder lists the configs, links and node files under a tftp_root
// (the shared boot loaders, pxe.SharedFiles, stay).
func pxeFilesUnder(t testing.TB, root string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			if !slices.Contains(pxe.SharedFiles, filepath.ToSlash(rel)) {
				left = append(left, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// deployKernel writes a placeholder deploy kernel and ramdisk (the
// emulated ramdisk only fetches them) into dir.
func deployKernel(t testing.TB, dir string) (kernel, ramdisk string) {
	t.Helper()
	kernel, ramdisk = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	for _, p := range []string{kernel, ramdisk} {
		if err := os.WriteFile(p, bytes.Repeat([]byte(filepath.Base(p)), 512), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kernel, ramdisk
}

// driverSetup is what useDriver needs for the non-default drivers.
type driverSetup struct {
	kernel, ramdisk string // pxe_ilo's deploy kernel and ramdisk
	iscsiPort       int    // iscsi_ilo: the port the ramdisk's target listens on (CHAP on)
}

// useDriver makes node an available node of driver.
func useDriver(t testing.TB, e *env, node, driver string, s driverSetup) {
	t.Helper()
	e.makeAvailable(node)
	ch := app.NodeChange{Driver: driver}
	switch driver {
	case "pxe_ilo":
		ch.DriverInfo = map[string]any{"deploy_kernel": s.kernel, "deploy_ramdisk": s.ramdisk}
	case "iscsi_ilo":
		ch.DriverInfo = map[string]any{"iscsi_chap": true, "iscsi_port": s.iscsiPort}
	}
	if _, err := e.app.UpdateNode(context.Background(), node, ch); err != nil {
		t.Fatal(err)
	}
}

// nothingLeft checks that nothing of node is left after its runs: no PXE
// file or MAC link under tftpRoot, no published object (artifact record
// or file in the web store), no virtual media inserted, no agent running
// and (iscsiPort > 0) no iSCSI target answering.
func (e *env) nothingLeft(node, tftpRoot string, iscsiPort int) {
	e.t.Helper()
	if tftpRoot != "" {
		if left := pxeFilesUnder(e.t, tftpRoot); len(left) > 0 {
			e.t.Errorf("%s: PXE files left: %v", node, left)
		}
	}
	e.noMediaLeft(node)
	st := e.fleet.server(e.t, node).State()
	if st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
		e.t.Errorf("%s: virtual media left inserted: %+v", node, st.Media)
	}
	// the ramdisk ends with the power off; its Boot returns a moment later
	deadline := time.Now().Add(30 * time.Second)
	for e.fleet.rd.Agent(node) != nil {
		if time.Now().After(deadline) {
			e.t.Errorf("%s: an agent still runs", node)
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if iscsiPort > 0 && !portalClosed(iscsiPort) {
		e.t.Errorf("%s: the iSCSI target on port %d still answers", node, iscsiPort)
	}
	// no writer outlives its run (a killed lightsout's qemu-img included)
	iqn := "iqn.2008-10.org.openstack:" + e.node(node).UUID
	for len(writersTo(iqn)) > 0 {
		if time.Now().After(deadline) {
			e.t.Errorf("%s: qemu-img still writes to %s: pids %v", node, iqn, writersTo(iqn))
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// writersTo lists the pids of qemu-img processes whose command line names iqn.
func writersTo(iqn string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := string(b); strings.Contains(cmd, "qemu-img") && strings.Contains(cmd, iqn) {
			out = append(out, pid)
		}
	}
	return out
}

// TestTeardownLeavesNothing deploys the same whole-disk image to a node of
// each driver and checks the node's disk holds it byte for byte (written
// by the agent for agent_ilo and pxe_ilo, by lightsout over iSCSI for
// iscsi_ilo), then undeploys it (teardown, then automated cleaning with the
// agent: over virtual media for agent_ilo and iscsi_ilo, over PXE for
// pxe_ilo): the node ends available and powered off with no PXE file or
// MAC link, no published ISO, floppy or image, no artifact record, no
// inserted media and no exported target left.
func TestTeardownLeavesNothing(t *testing.T) {
	root, url := pxeBootServer(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 3), pxeServer: url})
	e := open(t, f, "[pxe]\ntftp_root = "+root+"\n")
	e.importFleet()
	kernel, ramdisk := deployKernel(t, t.TempDir())
	img, data := testImage(t, t.TempDir(), 1<<20)
	for i, driver := range []string{"agent_ilo", "iscsi_ilo", "pxe_ilo"} {
		node := []string{"gen10-0", "gen10-1", "gen10-2"}[i]
		t.Run(driver, func(t *testing.T) {
			e := &env{t: t, app: e.app, fleet: f, dir: e.dir}
			s := driverSetup{kernel: kernel, ramdisk: ramdisk}
			if driver == "iscsi_ilo" {
				requireISCSI(t)
				s.iscsiPort = freeTCPPort(t)
			}
			useDriver(t, e, node, driver, s)
			ctx := context.Background()
			if _, err := e.app.PrepareDeploy(ctx, node, app.DeployOptions{ImageSource: img,
				ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
				t.Fatal(err)
			}
			e.mustSucceed(e.runs(app.ScriptDeploy, []string{node}, nil)[node])
			if got := diskPrefixHash(t, f.server(t, node).DiskPath(), len(data)); got != sha256hex(data) {
				t.Fatal("the disk does not hold the image")
			}
			res := e.runs(app.ScriptTeardown, []string{node}, nil)[node]
			e.mustSucceed(res)
			n := e.node(node)
			if n.ProvisionState != states.Available || n.PowerState != "power off" || n.LastError != "" {
				t.Fatalf("after undeploy: state %q power %q last_error %q", n.ProvisionState, n.PowerState, n.LastError)
			}
			if steps := e.steps(res.RunID, ""); !slices.Contains(steps, "boot cleaning ramdisk") {
				t.Errorf("the undeploy's cleaning did not boot the agent: steps %v", steps)
			}
			e.nothingLeft(node, root, s.iscsiPort)
		})
	}
}

// TestInterruptedPXECleanRecovers: `lightsout node provide` of a pxe_ilo
// node is killed with -9 while cleaning waits for the agent it booted over
// PXE; `node recover` leaves the node in clean failed with no PXE file,
// link or agent left, and the node then cleans (manage, provide) to
// available over PXE again.
func TestInterruptedPXECleanRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout")
	}
	bin := buildCLI(t)
	const node = "gen10-0"
	root, url := pxeBootServer(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1), pxeServer: url})
	e := open(t, f, "[pxe]\ntftp_root = "+root+"\n")
	e.importFleet()
	kernel, initrd := deployKernel(t, t.TempDir())
	useDriver(t, e, node, "pxe_ilo", driverSetup{kernel: kernel, ramdisk: initrd})
	ctx := context.Background()
	if _, err := e.app.Store.Transition(ctx, node, "manage"); err != nil { // available → manageable
		t.Fatal(err)
	}
	uuid := e.node(node).UUID
	f.rd.SetFailures(node, ramdisk.Failures{NoHeartbeat: true})
	p := e.start(bin, "node", "provide", node)
	e.waitFor(p, "the cleaning ramdisk booted over PXE", func() bool {
		booted := slices.ContainsFunc(f.bootsOf(node), func(ev sim.BootEvent) bool { return ev.BootDevice == "NETWORK" })
		return booted && slices.ContainsFunc(pxeFilesUnder(t, root), func(p string) bool { return strings.HasPrefix(p, uuid) })
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, time.Minute)
	f.rd.SetFailures(node, ramdisk.Failures{})

	if rc, out := e.cli(bin, "node", "recover", node); rc != 0 || !strings.Contains(out, "recovered by run") {
		t.Fatalf("node recover: exit %d\n%s", rc, out)
	}
	n := e.node(node)
	if n.ProvisionState != states.CleanFailed || n.PowerState != "power off" || !strings.Contains(n.LastError, "was interrupted: process died") {
		t.Fatalf("after recover: state %q power %q last_error %q", n.ProvisionState, n.PowerState, n.LastError)
	}
	e.nothingLeft(node, root, 0)
	for _, verb := range []string{"manage", "provide"} {
		if rc, out := e.cli(bin, "node", verb, node); rc != 0 {
			t.Fatalf("node %s: exit %d\n%s", verb, rc, out)
		}
	}
	if n := e.node(node); n.ProvisionState != states.Available {
		t.Fatalf("after manage and provide: %s (%s)", n.ProvisionState, n.LastError)
	}
	for i, ev := range f.bootsOf(node) {
		if ev.BootDevice != "NETWORK" || len(ev.Media) > 0 {
			t.Errorf("boot %d from %s with media %v: pxe_ilo cleaning boots over PXE only", i, ev.BootDevice, ev.Media)
		}
	}
	e.nothingLeft(node, root, 0)
}
