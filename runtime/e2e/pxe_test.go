package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// pxeEnv is a one-server fleet (a Gen8, or a Gen10 with newPXEEnvOn) with
// iLO Standard whose emulated ramdisk PXE-boots from an HTTP boot server
// over tftpRoot, and an App whose [pxe] tftp_root is tftpRoot; the server
// is an available pxe_ilo node.
type pxeEnv struct {
	*env
	f        *fleet
	tftpRoot string
}

const pxeNode = "gen8-0"

func newPXEEnv(t *testing.T) *pxeEnv { return newPXEEnvOn(t, sim.Gen8, pxeNode) }

func newPXEEnvOn(t *testing.T, g sim.Generation, pxeNode string) *pxeEnv {
	t.Helper()
	root, url := pxeBootServer(t)
	f := newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: g, Count: 1}}, pxeServer: url,
		hardware: func(name string, g sim.Generation, idx int, hw *sim.Hardware) { hw.License = "iLO Standard" }})
	kernel, ramdisk := deployKernel(t, t.TempDir())
	e := open(t, f, "[pxe]\ntftp_root = "+root+"\n")
	e.importFleet()
	e.makeAvailable(pxeNode)
	if _, err := e.app.UpdateNode(context.Background(), pxeNode, app.NodeChange{Driver: "pxe_ilo",
		DriverInfo: map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": ramdisk}}); err != nil {
		t.Fatal(err)
	}
	return &pxeEnv{env: e, f: f, tftpRoot: root}
}

// pxeFiles lists the configs, links and node files left under tftp_root
// (the shared boot loaders, pxe.SharedFiles, stay).
func (p *pxeEnv) pxeFiles(t *testing.T) []string { return pxeFilesUnder(t, p.tftpRoot) }

func (p *pxeEnv) noVirtualMedia(t *testing.T, pxeNode, res string) {
	t.Helper()
	boots := p.f.bootsOf(pxeNode)
	if len(boots) == 0 {
		t.Fatal("the server never booted")
	}
	for i, ev := range boots {
		if len(ev.Media) > 0 {
			t.Errorf("boot %d had virtual media attached: %v", i, ev.Media)
		}
	}
	for _, call := range []string{"insert_virtual_media", "eject_virtual_media", "setup_for_boot", "eject_all", "set_vm_status"} {
		if strings.Contains(res, call) {
			t.Errorf("the run called %s:\n%s", call, res)
		}
	}
}

// A pxe_ilo whole-disk deploy with only iLO Standard, to a Gen8 (BIOS,
// pxelinux) and a Gen10 in UEFI (GRUB): the ramdisk boots over PXE
// (one-time NETWORK, in the deploy boot mode), the agent writes the image,
// the disk equals it, no virtual media is touched, no PXE file is left
// after the deploy or the teardown, and the node boots its disk.
func TestPXEDeploy(t *testing.T) {
	for _, tt := range []struct {
		gen        sim.Generation
		node, mode string
	}{
		{sim.Gen8, "gen8-0", "LEGACY"},
		{sim.Gen10, "gen10-0", "UEFI"},
	} {
		t.Run(tt.node, func(t *testing.T) {
			p := newPXEEnvOn(t, tt.gen, tt.node)
			pxeNode := tt.node
			img, data := testImage(t, t.TempDir(), 1<<20)
			ctx := context.Background()
			if _, err := p.app.PrepareDeploy(ctx, pxeNode, app.DeployOptions{ImageSource: img,
				ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
				t.Fatal(err)
			}
			if tt.mode == "UEFI" {
				if _, err := p.app.UpdateNode(ctx, pxeNode, app.NodeChange{InstanceInfo: map[string]any{
					"capabilities": `{"boot_mode": "uefi"}`}}); err != nil {
					t.Fatal(err)
				}
			}
			writeJunk(t, p.f.server(t, pxeNode).DiskPath())
			res := p.runs(app.ScriptDeploy, []string{pxeNode}, nil)[pxeNode]
			tl := p.timeline(res.RunID)
			if !res.Succeeded() {
				t.Fatalf("deploy: %s\n%s", res.Error, tl)
			}
			n := p.node(pxeNode)
			if n.ProvisionState != states.Active || n.PowerState != "power on" {
				t.Fatalf("state %q power %q", n.ProvisionState, n.PowerState)
			}
			if got := diskPrefixHash(t, p.f.server(t, pxeNode).DiskPath(), len(data)); got != sha256hex(data) {
				t.Fatal("the node's disk does not hold the image")
			}
			boots := p.f.bootsOf(pxeNode)
			if len(boots) < 2 || boots[0].BootDevice != "NETWORK" || boots[0].BootMode != tt.mode {
				t.Errorf("boots %+v: want a NETWORK boot of the ramdisk in %s, then the instance", boots, tt.mode)
			}
			if last := boots[len(boots)-1]; last.BootDevice != "HDD" || last.BootMode != tt.mode {
				t.Errorf("the instance boots from %s in %s, want HDD in %s", last.BootDevice, last.BootMode, tt.mode)
			}
			p.noVirtualMedia(t, pxeNode, tl)
			if left := p.pxeFiles(t); len(left) > 0 {
				t.Errorf("PXE files left after the deploy: %v", left)
			}

			before := len(p.f.bootsOf(pxeNode))
			res = p.runs(app.ScriptTeardown, []string{pxeNode}, nil)[pxeNode]
			tl = p.timeline(res.RunID)
			if !res.Succeeded() {
				t.Fatalf("teardown: %s\n%s", res.Error, tl)
			}
			// automated cleaning booted the agent over PXE (in the deploy boot mode) and ran its steps
			boots = p.f.bootsOf(pxeNode)[before:]
			if len(boots) == 0 || boots[0].BootDevice != "NETWORK" || boots[0].BootMode != tt.mode {
				t.Errorf("cleaning boots %+v: want a NETWORK boot of the ramdisk in %s", boots, tt.mode)
			}
			if !strings.Contains(tl, "erase_devices") {
				t.Errorf("cleaning did not run the agent's erase_devices:\n%s", tl)
			}
			if n := p.node(pxeNode); n.ProvisionState != states.Available || n.PowerState != "power off" {
				t.Errorf("after teardown and cleaning: state %q power %q", n.ProvisionState, n.PowerState)
			}
			p.noVirtualMedia(t, pxeNode, tl)
			p.noMediaLeft(pxeNode)
			if left := p.pxeFiles(t); len(left) > 0 {
				t.Errorf("PXE files left after teardown: %v", left)
			}
		})
	}
}

// A pxe_ilo node without ports fails validation naming ports, before the
// node changes.
func TestPXEDeployNoPorts(t *testing.T) {
	p := newPXEEnv(t)
	ctx := context.Background()
	n := p.node(pxeNode)
	var macs []string
	for _, port := range n.Ports {
		macs = append(macs, port.Address)
	}
	if _, err := p.app.UpdateNode(ctx, pxeNode, app.NodeChange{RemovePorts: macs}); err != nil {
		t.Fatal(err)
	}
	img, data := testImage(t, t.TempDir(), 1<<20)
	if _, err := p.app.PrepareDeploy(ctx, pxeNode, app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
		t.Fatal(err)
	}
	res := p.runs(app.ScriptDeploy, []string{pxeNode}, nil)[pxeNode]
	if res.Succeeded() {
		t.Fatal("a pxe_ilo deploy without ports succeeded")
	}
	if !strings.Contains(res.Error, "has no ports") || !strings.Contains(res.Error, "--port MAC") {
		t.Errorf("error %q does not name the missing ports", res.Error)
	}
	if st := p.node(pxeNode).ProvisionState; st != states.Available {
		t.Errorf("state %q, want available (validation changes nothing)", st)
	}
	if len(p.f.bootsOf(pxeNode)) != 0 {
		t.Error("the server booted")
	}
	p.nothingLeft(pxeNode, p.tftpRoot, 0)
}

// An agent failing mid-deploy: the deploy fails and no PXE file is left.
func TestPXEDeployFailureCleansPXE(t *testing.T) {
	p := newPXEEnv(t)
	p.f.rd.SetFailures(pxeNode, ramdisk.Failures{FailCommands: []string{"prepare_image"}})
	img, data := testImage(t, t.TempDir(), 1<<20)
	if _, err := p.app.PrepareDeploy(context.Background(), pxeNode, app.DeployOptions{ImageSource: img,
		ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
		t.Fatal(err)
	}
	res := p.runs(app.ScriptDeploy, []string{pxeNode}, nil)[pxeNode]
	tl := p.timeline(res.RunID)
	if res.Succeeded() {
		t.Fatal("the deploy succeeded with a failing prepare_image")
	}
	if !strings.Contains(tl, "wait for agent") {
		t.Fatalf("the deploy did not reach the agent (the ramdisk did not PXE-boot?):\n%s", tl)
	}
	n := p.node(pxeNode)
	if n.ProvisionState != states.DeployFailed || n.PowerState != "power off" {
		t.Errorf("state %q power %q", n.ProvisionState, n.PowerState)
	}
	p.nothingLeft(pxeNode, p.tftpRoot, 0) // PXE files, links, published image, agent
	p.noVirtualMedia(t, pxeNode, tl)
}

// Without a PXE config the emulated ramdisk does not boot on a NETWORK
// boot and the console says why.
func TestPXEBootWithoutConfig(t *testing.T) {
	p := newPXEEnv(t)
	srv := p.f.server(t, pxeNode)
	err := p.f.rd.Boot(context.Background(), ramdisk.BootEvent{Server: pxeNode, BootDevice: "NETWORK",
		BootMode: "LEGACY", MACs: []string{"52:54:00:aa:bb:cc"}, DiskPath: srv.DiskPath()})
	if err == nil || !strings.Contains(err.Error(), "no PXE config") {
		t.Fatalf("Boot = %v, want a PXE failure", err)
	}
	if p.f.rd.Agent(pxeNode) != nil {
		t.Error("an agent runs")
	}
	if con := string(srv.ConsoleBacklog()); !strings.Contains(con, "PXE-E3B") {
		t.Errorf("console %q lacks the PXE failure", con)
	}
}

// Cleaning a pxe_ilo node (`node provide`) that fails: when an agent clean
// step fails after the ramdisk PXE-booted, and when the node has no ports
// (refused before the node is touched, naming the ports and the fix), it
// ends in clean failed + maintenance, powered off, with no PXE file, MAC
// link or published object left and no virtual media touched.
func TestPXECleanFailureCleansPXE(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fail    ramdisk.Failures
		noPorts bool
		want    []string // in last_error
		booted  bool     // the ramdisk PXE-booted before the failure
	}{
		{name: "clean step fails", fail: ramdisk.Failures{FailCommands: []string{"execute_clean_step"}},
			want: []string{"cleaning failed"}, booted: true},
		{name: "no ports", noPorts: true, want: []string{"has no ports", "lightsout node set gen8-0 --port MAC"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPXEEnv(t)
			ctx := context.Background()
			p.f.rd.SetFailures(pxeNode, tt.fail)
			if tt.noPorts {
				var macs []string
				for _, port := range p.node(pxeNode).Ports {
					macs = append(macs, port.Address)
				}
				if _, err := p.app.UpdateNode(ctx, pxeNode, app.NodeChange{RemovePorts: macs}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.app.Store.Transition(ctx, pxeNode, "manage"); err != nil { // available → manageable
				t.Fatal(err)
			}
			res := p.runs(app.ScriptClean, []string{pxeNode}, nil)[pxeNode]
			tl := p.timeline(res.RunID)
			if res.Succeeded() {
				t.Fatalf("cleaning succeeded:\n%s", tl)
			}
			n := p.node(pxeNode)
			if n.ProvisionState != states.CleanFailed || !n.Maintenance || n.PowerState != "power off" {
				t.Errorf("state %q maintenance %v power %q, want clean failed, maintenance, off", n.ProvisionState, n.Maintenance, n.PowerState)
			}
			for _, w := range tt.want {
				if !strings.Contains(n.LastError, w) {
					t.Errorf("last_error %q lacks %q", n.LastError, w)
				}
			}
			boots := p.f.bootsOf(pxeNode)
			if tt.booted {
				if len(boots) == 0 || boots[0].BootDevice != "NETWORK" {
					t.Fatalf("boots %+v: want the cleaning ramdisk booted over PXE\n%s", boots, tl)
				}
				p.noVirtualMedia(t, pxeNode, tl)
			} else if len(boots) != 0 {
				t.Errorf("the server booted: %+v", boots)
			}
			p.nothingLeft(pxeNode, p.tftpRoot, 0)
		})
	}
}
