package e2e_test

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

func gens(counts ...int) []sim.NodeSpec {
	out := []sim.NodeSpec{}
	for i, g := range []sim.Generation{sim.Gen8, sim.Gen9, sim.Gen10} {
		if i < len(counts) && counts[i] > 0 {
			out = append(out, sim.NodeSpec{Generation: g, Count: counts[i]})
		}
	}
	return out
}

// TestInspect inspects gen8, gen9 and gen10 servers in parallel: essential
// properties, merged capabilities, ports from MACs, power back off; a
// manual local_gb survives an inspected 0 (no logical drive).
func TestInspect(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(2, 1, 1), hardware: func(name string, _ sim.Generation, _ int, hw *sim.Hardware) {
		if name == "gen8-1" {
			hw.LogicalDrivesGB = []int{} // no RAID configured: proliantutils reports local_gb 0
		}
	}})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	if _, err := e.app.UpdateNode(ctx, "gen8-1", app.NodeChange{Properties: map[string]any{"local_gb": 100}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.UpdateNode(ctx, "gen9-0", app.NodeChange{Properties: map[string]any{"capabilities": "boot_mode:uefi,site_rack:r12"}}); err != nil {
		t.Fatal(err)
	}
	names := []string{"gen8-0", "gen8-1", "gen9-0", "gen10-0"}
	res := e.runs("inspect", names, nil)
	for _, name := range names {
		e.mustSucceed(res[name])
		n := e.node(name)
		srv := f.server(t, name)
		hw := srv.Hardware()
		if n.ProvisionState != states.Manageable || n.LastError != "" {
			t.Errorf("%s: state %q last_error %q", name, n.ProvisionState, n.LastError)
		}
		if fmt.Sprint(n.Properties["memory_mb"]) != fmt.Sprint(hw.MemoryMB) || fmt.Sprint(n.Properties["cpus"]) != fmt.Sprint(hw.TotalThreads()) ||
			n.Properties["cpu_arch"] != "x86_64" {
			t.Errorf("%s: properties %v, hardware memory %d threads %d", name, n.Properties, hw.MemoryMB, hw.TotalThreads())
		}
		wantGB := fmt.Sprint(hw.LocalGB())
		if name == "gen8-1" {
			wantGB = "100"
		}
		if fmt.Sprint(n.Properties["local_gb"]) != wantGB {
			t.Errorf("%s: local_gb %v, want %s", name, n.Properties["local_gb"], wantGB)
		}
		caps := fmt.Sprint(n.Properties["capabilities"])
		if !strings.Contains(caps, "server_model:"+hw.Model) || !strings.HasPrefix(caps, "boot_mode:") || !strings.Contains(caps, "ilo_license_type:advanced") {
			t.Errorf("%s: capabilities %q", name, caps)
		}
		if name == "gen9-0" && !strings.Contains(caps, "site_rack:r12") {
			t.Errorf("gen9-0: a site capability was lost: %q", caps)
		}
		var macs []string
		for _, p := range n.Ports {
			macs = append(macs, p.Address)
		}
		for _, nic := range hw.NICs {
			if nic.Embedded && !slices.Contains(macs, strings.ToLower(nic.MAC)) {
				t.Errorf("%s: no port for MAC %s (ports %v)", name, nic.MAC, macs)
			}
		}
		if st := srv.State(); st.Power != "OFF" || st.BootCount != 1 {
			t.Errorf("%s: power %s after %d boots, want OFF after 1 (powered on for inspection, then off)", name, st.Power, st.BootCount)
		}
	}
	if w := e.logs(res["gen8-1"].RunID, "warn"); len(w) == 0 || !strings.Contains(strings.Join(w, "\n"), "keeping 100") {
		t.Errorf("gen8-1: no warning about the kept local_gb: %v", w)
	}
}

// deployCase is one node to deploy and what its boot must look like.
type deployCase struct {
	node       string
	opts       app.DeployOptions
	props      map[string]any // properties to set first
	bootMode   string         // LEGACY | UEFI after deploy
	secureBoot bool
}

// TestDeployUndeploy provides gen8, gen9 and gen10 nodes (automated
// cleaning through the agent), deploys them in parallel — BIOS on gen8 and
// gen9, UEFI with secure boot on gen10, UEFI with a qcow2 image and an md5
// checksum on a second gen10 — checks the disks hold the image, then
// undeploys two (teardown + automated cleaning) and checks the disks are
// zero.
func TestDeployUndeploy(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(1, 1, 2)})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	all := []string{"gen8-0", "gen9-0", "gen10-0", "gen10-1"}

	// Automated cleaning (node provide): the agent erases the disks.
	for _, name := range all {
		writeJunk(t, f.server(t, name).DiskPath())
	}
	for _, name := range all {
		n, err := e.app.Provide(ctx, name)
		if err != nil {
			t.Fatalf("provide %s: %v", name, err)
		}
		if n.ProvisionState != states.Available || n.Maintenance {
			t.Fatalf("provide %s: state %s maintenance %v", name, n.ProvisionState, n.Maintenance)
		}
		if !diskIsZero(t, f.server(t, name).DiskPath()) {
			t.Errorf("%s: disk not erased by automated cleaning", name)
		}
		e.noMediaLeft(name)
	}
	runs, _ := e.app.Store.ListRuns(ctx, store.RunFilter{Node: "gen10-0"})
	cleanRun := runs[0].ID
	wantOrder := []string{"deploy.erase_devices_metadata", "management.reset_ilo_credential",
		"management.reset_secure_boot_keys_to_default", "management.reset_bios_to_default", "deploy.erase_devices", "management.reset_ilo"}
	if got := e.steps(cleanRun, "clean step "); !slices.Equal(got, wantOrder) {
		t.Errorf("gen10-0 automated clean order %v, want %v", got, wantOrder)
	}
	if got := f.server(t, "gen10-0").State().BIOSResets; got != 1 {
		t.Errorf("gen10-0: %d BIOS resets, want 1", got)
	}
	runs, _ = e.app.Store.ListRuns(ctx, store.RunFilter{Node: "gen8-0"})
	if st := e.stepStatus(runs[0].ID, "clean step "); st["management.reset_bios_to_default"] != "ok" ||
		!strings.Contains(strings.Join(e.logs(runs[0].ID, "warn"), "\n"), "'reset_bios_to_default' clean step is not supported") {
		t.Errorf("gen8-0: reset_bios_to_default not skipped with a warning: %v %v", st, e.logs(runs[0].ID, "warn"))
	}

	// Deploy all four in parallel.
	img, data := testImage(t, t.TempDir(), 3<<20+512)
	md5sum := md5.Sum(data)
	cases := []deployCase{
		{node: "gen8-0", opts: app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}, bootMode: "LEGACY"},
		{node: "gen9-0", opts: app.DeployOptions{ImageSource: img, ImageChecksum: "sha512:" + sha512hex(data)},
			props: map[string]any{"capabilities": "boot_mode:bios"}, bootMode: "LEGACY"},
		{node: "gen10-0", opts: app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data),
			Capabilities: map[string]string{"secure_boot": "true"}}, bootMode: "UEFI", secureBoot: true},
		{node: "gen10-1", opts: app.DeployOptions{ImageSource: img, ImageChecksum: hex.EncodeToString(md5sum[:]),
			Capabilities: map[string]string{"boot_mode": "uefi"}}, bootMode: "UEFI"},
	}
	if _, err := exec.LookPath("qemu-img"); err == nil || os.Getenv("LIGHTSOUT_INTEGRATION") != "" {
		testenv.RequireTools(t, "qemu-img")
		q := filepath.Join(t.TempDir(), "image.qcow2")
		if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", img, q).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v %s", err, out)
		}
		qdata, _ := os.ReadFile(q)
		qsum := md5.Sum(qdata)
		cases[3].opts = app.DeployOptions{ImageSource: q, ImageChecksum: hex.EncodeToString(qsum[:]), ImageDiskFormat: "qcow2",
			Capabilities: map[string]string{"boot_mode": "uefi"}}
	}
	for _, c := range cases {
		if c.props != nil {
			if _, err := e.app.UpdateNode(ctx, c.node, app.NodeChange{Properties: c.props}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.app.PrepareDeploy(ctx, c.node, c.opts); err != nil {
			t.Fatalf("%s: %v", c.node, err)
		}
	}
	res := e.runs(app.ScriptDeploy, all, nil)
	var secrets []string // what must never be at rest: agent tokens, iLO passwords
	for _, c := range cases {
		secrets = append(secrets, f.server(t, c.node).Password())
	}
	for _, c := range cases {
		e.mustSucceed(res[c.node])
		n := e.node(c.node)
		srv := f.server(t, c.node)
		st := srv.State()
		boot, _ := srv.LastBoot()
		if n.ProvisionState != states.Active || n.LastError != "" || n.PowerState != "power on" {
			t.Errorf("%s: state %q power %q last_error %q", c.node, n.ProvisionState, n.PowerState, n.LastError)
		}
		if st.Power != "ON" || boot.BootDevice != "HDD" || boot.BootMode != c.bootMode || boot.SecureBoot != c.secureBoot {
			t.Errorf("%s: power %s, booted %s in %s secure boot %v; want HDD in %s secure boot %v",
				c.node, st.Power, boot.BootDevice, boot.BootMode, boot.SecureBoot, c.bootMode, c.secureBoot)
		}
		if st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
			t.Errorf("%s: virtual media still inserted: %+v", c.node, st.Media)
		}
		if got := diskPrefixHash(t, srv.DiskPath(), len(data)); got != sha256hex(data) {
			t.Errorf("%s: the disk does not hold the image (sha256 %s, want %s)", c.node, got, sha256hex(data))
		}
		if n.DriverInternalInfo["deploy_boot_mode"] != map[string]string{"LEGACY": "bios", "UEFI": "uefi"}[c.bootMode] {
			t.Errorf("%s: deploy_boot_mode %v", c.node, n.DriverInternalInfo["deploy_boot_mode"])
		}
		e.noMediaLeft(c.node)
	}
	wantPhases := []string{"validate", "start", "prepare node", "boot deploy ramdisk", "wait for agent", "write image",
		"configure boot", "power off ramdisk", "clean up media", "boot instance"}
	if got := e.steps(res["gen10-0"].RunID, ""); !slices.Equal(got, wantPhases) {
		t.Errorf("deploy steps %v, want %v", got, wantPhases)
	}

	// Undeploy gen8-0 and gen10-0: teardown, then automated cleaning.
	res = e.runs(app.ScriptTeardown, []string{"gen8-0", "gen10-0"}, nil)
	for _, name := range []string{"gen8-0", "gen10-0"} {
		e.mustSucceed(res[name])
		n := e.node(name)
		st := f.server(t, name).State()
		if n.ProvisionState != states.Available || len(n.InstanceInfo) != 0 || n.Maintenance {
			t.Errorf("%s: state %s instance_info %v maintenance %v", name, n.ProvisionState, n.InstanceInfo, n.Maintenance)
		}
		if st.Power != "OFF" || st.SecureBootEnable {
			t.Errorf("%s: power %s secure boot %v after undeploy", name, st.Power, st.SecureBootEnable)
		}
		if !diskIsZero(t, f.server(t, name).DiskPath()) {
			t.Errorf("%s: disk not zero after undeploy (erase_devices)", name)
		}
		e.noMediaLeft(name)
	}
	if got := e.steps(res["gen10-0"].RunID, "clean step "); !slices.Equal(got, wantOrder) {
		t.Errorf("undeploy clean order %v, want %v", got, wantOrder)
	}
	tokens := f.agentTokens()
	if len(tokens) < len(all) {
		t.Fatalf("only %d agent tokens were seen on the ramdisks' floppies", len(tokens))
	}
	e.noSecretsAtRest(append(secrets, tokens...))
}

func writeJunk(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(strings.Repeat("junk", 4096)), 4<<20); err != nil {
		t.Fatal(err)
	}
}

// TestCleanPriorities: the order and skipping of automated clean steps
// follow [ilo] clean_priority_* (and [deploy] erase_devices_*) of a config
// file; with every in-band step disabled the agent is not even booted.
func TestCleanPriorities(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 2)})
	ctx := context.Background()
	t.Run("reordered", func(t *testing.T) {
		e := open(t, f, `
[ilo]
clean_priority_reset_bios_to_default = 0
clean_priority_reset_secure_boot_keys_to_default = 0
clean_priority_clear_secure_boot_keys = 5
clean_priority_erase_devices = 40
clean_priority_reset_ilo = 2
reset_ilo_settle = 0.2
[deploy]
erase_devices_metadata_priority = 0
`)
		e.importFleet()
		srv := f.server(t, "gen10-0")
		before := srv.State()
		if _, err := e.app.UpdateNode(ctx, "gen10-0", app.NodeChange{DriverInfo: map[string]any{"ilo_change_password": "n3w-Secret-pw"}}); err != nil {
			t.Fatal(err)
		}
		writeJunk(t, srv.DiskPath())
		if _, err := e.app.Provide(ctx, "gen10-0"); err != nil {
			t.Fatal(err)
		}
		runs, _ := e.app.Store.ListRuns(ctx, store.RunFilter{Node: "gen10-0"})
		want := []string{"deploy.erase_devices", "management.reset_ilo_credential", "management.clear_secure_boot_keys",
			"management.reset_ilo"}
		if got := e.steps(runs[0].ID, "clean step "); !slices.Equal(got, want) {
			t.Errorf("order %v, want %v", got, want)
		}
		after := srv.State()
		if after.ILOResets != before.ILOResets+1 {
			t.Errorf("iLO resets %d→%d, want one reset_ilo", before.ILOResets, after.ILOResets)
		}
		if after.BIOSResets != before.BIOSResets || before.SecureBootKeys != "default" || after.SecureBootKeys != "deleted" ||
			!diskIsZero(t, srv.DiskPath()) {
			t.Errorf("BIOS resets %d→%d, secure boot keys %s→%s, disk zero %v", before.BIOSResets, after.BIOSResets,
				before.SecureBootKeys, after.SecureBootKeys, diskIsZero(t, srv.DiskPath()))
		}
		n := e.node("gen10-0")
		if srv.Password() != "n3w-Secret-pw" || n.DriverInfo["ilo_password"] != "n3w-Secret-pw" || n.DriverInfo["ilo_change_password"] != nil {
			t.Errorf("credential not rotated: driver_info %v", n.DriverInfo)
		}
		for _, ev := range mustEvents(t, e, runs[0].ID) {
			if strings.Contains(fmt.Sprint(ev.Data), "n3w-Secret-pw") {
				t.Fatalf("the new iLO password is in event %s %s", ev.Kind, ev.Name)
			}
		}
	})
	t.Run("in-band disabled, a site step", func(t *testing.T) {
		site := t.TempDir()
		if err := os.WriteFile(filepath.Join(site, "site_steps.lua"), []byte(`
return {
  { step = "check_power_supplies", interface = "management", priority = 25,
    fn = function(ctx, args)
      local h = ctx.bmc:get_host_health_data()
      ctx.node:set_property("site_power_supplies", #h.power_supplies)
    end },
  { step = "never_automated", priority = 0, fn = function() error("must not run") end },
}
`), 0o644); err != nil {
			t.Fatal(err)
		}
		e := open(t, f, `
[ilo]
clean_priority_erase_devices = 0
[deploy]
erase_devices_metadata_priority = 0
`, site)
		e.importFleet()
		srv := f.server(t, "gen10-1")
		boots := srv.State().BootCount
		if _, err := e.app.Provide(ctx, "gen10-1"); err != nil {
			t.Fatal(err)
		}
		runs, _ := e.app.Store.ListRuns(ctx, store.RunFilter{Node: "gen10-1"})
		want := []string{"management.reset_ilo_credential", "management.check_power_supplies",
			"management.reset_secure_boot_keys_to_default", "management.reset_bios_to_default", "management.reset_ilo"}
		if got := e.steps(runs[0].ID, "clean step "); !slices.Equal(got, want) {
			t.Errorf("order %v, want %v", got, want)
		}
		if got := e.node("gen10-1").Properties["site_power_supplies"]; fmt.Sprint(got) != fmt.Sprint(srv.Hardware().PowerSupplies) {
			t.Errorf("the site step did not run: site_power_supplies = %v", got)
		}
		if b := srv.State().BootCount; b != boots {
			t.Errorf("the server booted %d times; no ramdisk is needed without in-band steps", b-boots)
		}
	})
}

func mustEvents(t *testing.T, e *env, id int64) []store.Event {
	t.Helper()
	evs, err := e.app.Store.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestManualClean runs an explicit step list on manageable gen8, gen9 and
// gen10 nodes: the steps run in the given order, an unsupported one is
// skipped, the node returns to manageable.
func TestManualClean(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(1, 1, 1)})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	steps, err := app.ParseCleanSteps(`[{"interface": "management", "step": "reset_bios_to_default"},
		{"interface": "deploy", "step": "erase_devices"}]`)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"gen8-0", "gen9-0", "gen10-0"}
	for _, name := range names {
		writeJunk(t, f.server(t, name).DiskPath())
		if _, err := e.app.PrepareClean(ctx, name, steps); err != nil {
			t.Fatal(err)
		}
	}
	res := e.runs(app.ScriptClean, names, map[string]string{"mode": "manual"})
	for _, name := range names {
		e.mustSucceed(res[name])
		n := e.node(name)
		srv := f.server(t, name)
		if n.ProvisionState != states.Manageable || n.DriverInternalInfo["manual_clean_steps"] != nil {
			t.Errorf("%s: state %s, internal %v", name, n.ProvisionState, n.DriverInternalInfo)
		}
		want := []string{"management.reset_bios_to_default", "deploy.erase_devices"}
		if got := e.steps(res[name].RunID, "clean step "); !slices.Equal(got, want) {
			t.Errorf("%s: steps %v, want %v", name, got, want)
		}
		wantResets := 1
		if name == "gen8-0" {
			wantResets = 0 // not supported over RIBCL: skipped
		}
		if st := srv.State(); st.BIOSResets != wantResets || st.Power != "OFF" {
			t.Errorf("%s: BIOS resets %d (want %d), power %s", name, st.BIOSResets, wantResets, st.Power)
		}
		if !diskIsZero(t, srv.DiskPath()) {
			t.Errorf("%s: disk not erased", name)
		}
		e.noMediaLeft(name)
	}
	if _, err := app.ParseCleanSteps(`[{"interface": "bogus", "step": "x"}]`); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("bad interface accepted: %v", err)
	}
}

// TestBootIntoISO boots manageable gen8, gen9 and gen10 nodes from an ISO;
// a node that is neither manageable nor in maintenance is refused.
func TestBootIntoISO(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(1, 1, 2)})
	e := open(t, f, "")
	e.importFleet()
	names := []string{"gen8-0", "gen9-0", "gen10-0"}
	res := e.runs(app.ScriptBootISO, names, map[string]string{"iso": f.deployISO})
	for _, name := range names {
		e.mustSucceed(res[name])
		srv := f.server(t, name)
		boot, _ := srv.LastBoot()
		if boot.BootDevice != "CDROM" || boot.Media["CDROM"] == "" || srv.State().Power != "ON" {
			t.Errorf("%s: booted %s with media %v", name, boot.BootDevice, boot.Media)
		}
		if n := e.node(name); n.ProvisionState != states.Manageable {
			t.Errorf("%s: state %s", name, n.ProvisionState)
		}
	}
	e.makeAvailable("gen10-1")
	r := e.runs(app.ScriptBootISO, []string{"gen10-1"}, map[string]string{"iso": f.deployISO})["gen10-1"]
	if r.Succeeded() || !strings.Contains(r.Error, "can be performed only when node gen10-1 is in manageable state") {
		t.Errorf("boot_into_iso on an available node: %s %s", r.Status, r.Error)
	}
	if f.server(t, "gen10-1").State().BootCount != 0 {
		t.Errorf("the refused node was booted")
	}
}

// TestFailures injects each failure and checks the documented failed
// state: last_error set, power off, no published object left behind.
func TestFailures(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 1, 8)})
	img, data := testImage(t, t.TempDir(), 1<<20)
	good := app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}
	tests := []struct {
		name, node string
		config     string
		failures   *ramdisk.Failures
		driverInfo map[string]any
		script     string // deploy (default), provide, inspect
		wantState  string
		wantErr    string
		maint      bool
	}{
		{name: "checksum mismatch", node: "gen10-0", failures: &ramdisk.Failures{ChecksumMismatch: true},
			wantState: states.DeployFailed, wantErr: "Image failed to verify against checksum"},
		{name: "image download 404", node: "gen10-1", failures: &ramdisk.Failures{DownloadNotFound: true},
			wantState: states.DeployFailed, wantErr: "status code 404"},
		{name: "no heartbeat", node: "gen10-2", failures: &ramdisk.Failures{NoHeartbeat: true},
			config: "[conductor]\ndeploy_callback_timeout = 1\n", wantState: states.DeployFailed, wantErr: "no agent heartbeat"},
		{name: "agent command fails", node: "gen10-3", failures: &ramdisk.Failures{FailCommands: []string{"prepare_image"}},
			wantState: states.DeployFailed, wantErr: "injected failure of standby.prepare_image"},
		{name: "iLO refuses the deploy ISO URL", node: "gen10-4",
			driverInfo: map[string]any{"ilo_deploy_iso": "http://127.0.0.1:9/ipa.iso"},
			wantState:  states.DeployFailed, wantErr: "insert_virtual_media"},
		{name: "iLO login fails", node: "gen9-0", driverInfo: map[string]any{"ilo_password": "wrong-password"},
			config: "[ilo]\nclient_timeout = 5\n", wantState: states.DeployFailed, wantErr: "login_failed"},
		{name: "clean step fails", node: "gen10-5", failures: &ramdisk.Failures{FailCommands: []string{"execute_clean_step"}},
			script: "provide", wantState: states.CleanFailed, wantErr: "injected failure of clean.execute_clean_step", maint: true},
		{name: "inspection iLO error", node: "gen10-6", driverInfo: map[string]any{"ilo_password": "wrong-password"},
			config: "[ilo]\nclient_timeout = 5\n", script: "inspect", wantState: states.InspectFailed, wantErr: "login_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := open(t, f, tt.config)
			e.importFleet()
			srv := f.server(t, tt.node)
			if tt.failures != nil {
				f.rd.SetFailures(tt.node, *tt.failures)
			}
			if tt.driverInfo != nil {
				if _, err := e.app.UpdateNode(ctx, tt.node, app.NodeChange{DriverInfo: tt.driverInfo}); err != nil {
					t.Fatal(err)
				}
			}
			var r struct {
				id  int64
				err string
			}
			switch tt.script {
			case "provide":
				_, err := e.app.Provide(ctx, tt.node)
				var rf *app.RunFailedError
				if !asRunFailed(err, &rf) {
					t.Fatalf("provide: %v", err)
				}
				r.id, r.err = rf.Result.RunID, rf.Result.Error
			default:
				script := app.ScriptDeploy
				if tt.script == "inspect" {
					script = app.ScriptInspect
				} else {
					e.makeAvailable(tt.node)
					if _, err := e.app.PrepareDeploy(ctx, tt.node, good); err != nil {
						t.Fatal(err)
					}
				}
				res := e.runs(script, []string{tt.node}, nil)[tt.node]
				if res.Succeeded() {
					t.Fatalf("%s succeeded", script)
				}
				r.id, r.err = res.RunID, res.Error
			}
			n := e.node(tt.node)
			if n.ProvisionState != tt.wantState || n.Maintenance != tt.maint {
				t.Errorf("state %q maintenance %v, want %q %v\n%s", n.ProvisionState, n.Maintenance, tt.wantState, tt.maint, e.timeline(r.id))
			}
			if !strings.Contains(n.LastError, tt.wantErr) || !strings.Contains(r.err, tt.wantErr) {
				t.Errorf("last_error %q / run error %q lack %q", n.LastError, r.err, tt.wantErr)
			}
			if st := srv.State(); st.Power != "OFF" || st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
				t.Errorf("server power %s media %+v, want off with nothing inserted", st.Power, st.Media)
			}
			e.noMediaLeft(tt.node)
			if n.DriverInternalInfo["clean_step"] != nil {
				t.Errorf("clean_step left set: %v", n.DriverInternalInfo["clean_step"])
			}
			if strings.Contains(n.LastError, "wrong-password") {
				t.Errorf("last_error shows the password: %q", n.LastError)
			}
		})
	}
}

func asRunFailed(err error, target **app.RunFailedError) bool {
	rf, ok := err.(*app.RunFailedError)
	if ok {
		*target = rf
	}
	return ok
}

// TestSiteDeployWrapsBundled: a site deploy.lua that requires the bundled
// one and adds a step runs in its place.
func TestSiteDeployWrapsBundled(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "deploy.lua"), []byte(`
local deploy = require("bundled.deploy")
deploy.add_step("write image", "site: record the image", function(ctx)
  ctx.node:set_property("site_deployed_image", ctx.node.instance_info.image_source)
end)
deploy.run()
`), 0o644); err != nil {
		t.Fatal(err)
	}
	e := open(t, f, "", site)
	e.importFleet()
	e.makeAvailable("gen10-0")
	img, data := testImage(t, t.TempDir(), 1<<20)
	if _, err := e.app.PrepareDeploy(context.Background(), "gen10-0", app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
		t.Fatal(err)
	}
	r, err := e.app.RunPlaybook(context.Background(), app.ScriptDeploy, "gen10-0", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, e.timeline(r.RunID))
	}
	n := e.node("gen10-0")
	if n.ProvisionState != states.Active || n.Properties["site_deployed_image"] != img {
		t.Errorf("state %s properties %v", n.ProvisionState, n.Properties)
	}
	got := e.steps(r.RunID, "")
	i := slices.Index(got, "write image")
	if i < 0 || i+1 >= len(got) || got[i+1] != "site: record the image" {
		t.Errorf("steps %v: the site step does not follow write image", got)
	}
	for _, ev := range mustEvents(t, e, r.RunID) {
		if ev.Kind == store.EventState && ev.Name == "started" && ev.Data["origin"] != "site" {
			t.Errorf("the bundled deploy ran instead of the site one: %v", ev.Data)
		}
	}
}

// TestDeployFromKernelAndRamdisk: a node without ilo_deploy_iso but with
// deploy_kernel + deploy_ramdisk (a pxe_ilo node, or Ironic's
// ilo-virtual-media with kernel/ramdisk) gets a deploy ISO built on the
// fly: BIOS-only for a BIOS deploy, hybrid for UEFI (host GRUB). The
// emulated ramdisk boots from it, reads its kernel command line and the
// floppy, and the image lands on the disk.
func TestDeployFromKernelAndRamdisk(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(1, 0, 1), cmdlines: true})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	dir := t.TempDir()
	kernel, ramdisk := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	for _, p := range []string{kernel, ramdisk} {
		b := make([]byte, 64<<10)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// gen10-0 gets its kernel and ramdisk over HTTP (downloaded), gen8-0 as local files.
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	uefi := "gen10-0"
	if _, err := exec.LookPath("grub-mkstandalone"); err != nil && os.Getenv("LIGHTSOUT_INTEGRATION") == "" {
		uefi = "" // no host GRUB for the UEFI half of a hybrid ISO
	}
	img, data := testImage(t, t.TempDir(), 1<<20)
	names := []string{"gen8-0"}
	if uefi != "" {
		names = append(names, uefi)
	}
	for _, name := range names {
		di := map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": ramdisk}
		if name == uefi {
			di["deploy_kernel"], di["deploy_ramdisk"] = srv.URL+"/vmlinuz", srv.URL+"/initrd"
		} else { // Ironic's per-node kernel command line wins over [ilo] kernel_append_params
			di["kernel_append_params"] = "console=ttyS0 lightsout.probe=per-node"
		}
		if _, err := e.app.UpdateNode(ctx, name, app.NodeChange{UnsetDriverInfo: []string{"ilo_deploy_iso"},
			DriverInfo: di}); err != nil {
			t.Fatal(err)
		}
		e.makeAvailable(name)
		if _, err := e.app.PrepareDeploy(ctx, name, app.DeployOptions{ImageSource: img,
			ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
			t.Fatal(err)
		}
	}
	res := e.runs(app.ScriptDeploy, names, nil)
	for _, name := range names {
		e.mustSucceed(res[name])
		srv := f.server(t, name)
		if got := diskPrefixHash(t, srv.DiskPath(), len(data)); got != sha256hex(data) {
			t.Errorf("%s: the disk does not hold the image", name)
		}
		if !strings.Contains(e.timeline(res[name].RunID), "call image.iso") {
			t.Errorf("%s: no deploy ISO was built:\n%s", name, e.timeline(res[name].RunID))
		}
		want := "nofb nomodeset vga=normal boot_method=vmedia" // [ilo] kernel_append_params
		if name != uefi {
			want = "console=ttyS0 lightsout.probe=per-node boot_method=vmedia" // driver_info's
		}
		if got := f.bootCmdlines(name); len(got) == 0 || !strings.Contains(got[0], want) {
			t.Errorf("%s: deploy ISO kernel command lines %q, want %q", name, got, want)
		}
		if name == uefi && strings.Count(e.timeline(res[name].RunID), "call vmedia.fetch") != 2 {
			t.Errorf("%s: kernel and ramdisk not fetched:\n%s", name, e.timeline(res[name].RunID))
		}
		e.noMediaLeft(name)
	}
	// Neither a deploy ISO nor a kernel + ramdisk: refused before the node changes state.
	if _, err := e.app.UpdateNode(ctx, "gen8-0", app.NodeChange{UnsetDriverInfo: []string{"deploy_kernel", "deploy_ramdisk"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.Transition(ctx, "gen8-0", "rebuild"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.Transition(ctx, "gen8-0", "fail"); err != nil { // deploy failed: deployable again
		t.Fatal(err)
	}
	r := e.runs(app.ScriptDeploy, []string{"gen8-0"}, nil)["gen8-0"]
	if r.Succeeded() || !strings.Contains(r.Error, "no deploy ramdisk") {
		t.Fatalf("deploy without a ramdisk: %s %q", r.Status, r.Error)
	}
	if n := e.node("gen8-0"); n.ProvisionState != states.DeployFailed {
		t.Fatalf("state %s", n.ProvisionState)
	}
}
