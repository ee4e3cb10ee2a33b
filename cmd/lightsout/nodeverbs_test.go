package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// simFleet starts a simulator with the given nodes and imports them.
func simFleet(t *testing.T, c *cli, spec string) *sim.Sim {
	t.Helper()
	specs, err := sim.ParseNodes(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sim.Options{Nodes: specs, DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	inv := filepath.Join(t.TempDir(), "fleet.json")
	if err := s.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	c.must("node", "import", inv)
	return s
}

func server(t *testing.T, s *sim.Sim, name string) *sim.Server {
	t.Helper()
	srv, ok := s.ServerByName(name)
	if !ok {
		t.Fatalf("no simulated server %s", name)
	}
	return srv
}

// fieldRows parses the --json output of the power and boot verbs.
func fieldRows(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	var rows []struct {
		Node   string
		Status string
		Result map[string]any
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := map[string]map[string]any{}
	for _, r := range rows {
		r.Result["status"] = r.Status
		m[r.Node] = r.Result
	}
	return m
}

// TestNodePowerVerbs: power on/off/reboot/state on gen8 and gen10 through
// the CLI, recorded runs, power_state refreshed in the store, nmi refused
// naming the generation.
func TestNodePowerVerbs(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen8=1,gen10=1")
	nodes := []string{"gen8-0", "gen10-0"}

	c.must("node", "power", "on", "--all")
	for _, n := range nodes {
		if p := server(t, s, n).State().Power; p != "ON" {
			t.Fatalf("%s: power %s after node power on", n, p)
		}
	}
	// the store learnt the state from the run
	var shown []struct {
		Name       string `json:"name"`
		PowerState string `json:"power_state"`
	}
	if err := json.Unmarshal([]byte(c.must("node", "list", "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	for _, n := range shown {
		if n.PowerState != "power on" {
			t.Fatalf("%s: power_state %q in the store after power on", n.Name, n.PowerState)
		}
	}

	c.must("node", "power", "off", "gen10-0")
	if p := server(t, s, "gen10-0").State().Power; p != "OFF" {
		t.Fatalf("gen10-0: power %s after off", p)
	}
	// state reads the iLO, not the store: change the server behind lightsout's back
	server(t, s, "gen8-0").Update(func(st *sim.State) { st.Power = "OFF" })
	rows := fieldRows(t, c.must("node", "power", "state", "gen8-0", "gen10-0", "--json"))
	for _, n := range nodes {
		if rows[n]["power_state"] != "power off" {
			t.Fatalf("%s: power state %v, want power off", n, rows[n])
		}
	}
	if out := c.must("node", "show", "gen8-0"); !strings.Contains(out, "power off") {
		t.Fatalf("node show after power state:\n%s", out)
	}
	c.must("node", "power", "reboot", "gen10-0")
	if p := server(t, s, "gen10-0").State().Power; p != "ON" {
		t.Fatalf("gen10-0: power %s after reboot from off", p)
	}
	c.must("node", "power", "soft-off", "gen10-0")
	if p := server(t, s, "gen10-0").State().Power; p != "OFF" {
		t.Fatalf("gen10-0: power %s after soft-off", p)
	}

	code, out, errOut := c.run("node", "power", "nmi", "gen10-0")
	if code != 1 || !strings.Contains(out+errOut, "not_supported") || !strings.Contains(out+errOut, "Gen10") {
		t.Fatalf("nmi: exit %d (want 1, not_supported naming Gen10)\n%s%s", code, out, errOut)
	}
	// every action was a recorded run of node_power
	if out := c.must("runs", "list", "--node", "gen10-0"); strings.Count(out, "node_power") < 6 {
		t.Fatalf("runs list lacks the power runs:\n%s", out)
	}
	if strings.Contains(c.allOut.String(), server(t, s, "gen10-0").Password()) {
		t.Fatal("the iLO password leaked")
	}
}

// TestSoftOffFallsBackToHard: a server that ignores the power button is
// held off after [conductor] soft_power_off_timeout.
func TestSoftOffFallsBackToHard(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen10=1")
	conf := filepath.Join(t.TempDir(), "lightsout.conf")
	if err := os.WriteFile(conf, []byte("[conductor]\nsoft_power_off_timeout = 1\n[ilo]\npower_wait = 0.2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIGHTSOUT_CONFIG", conf)
	// a site wrapper of the bundled playbook whose BMC ignores the button press
	dir := t.TempDir()
	wrapper := `local np = require("bundled.node_power")
local real = require("playbook").context().bmc
local fake = setmetatable({ press_pwr_btn = function() run.log("info", "button press ignored") end }, {
  __index = function(_, k) return function(_, ...) return real[k](real, ...) end end })
np.do_action.soft_off({ node = node, bmc = fake })
`
	if err := os.WriteFile(filepath.Join(dir, "soft_off_ignored.lua"), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node", "power", "on", "gen10-0")
	start := time.Now()
	c.must("--scripts", dir, "run", "soft_off_ignored", "--node", "gen10-0")
	if el := time.Since(start); el < time.Second {
		t.Fatalf("soft off gave up after %s, before soft_power_off_timeout (1s)", el)
	}
	if p := server(t, s, "gen10-0").State().Power; p != "OFF" {
		t.Fatalf("power %s: the fall-back did not hold the button", p)
	}
	out := c.must("runs", "show", "2")
	for _, want := range []string{"button press ignored", "soft power off did not complete", "ilo.hold_pwr_btn ok"} {
		if !strings.Contains(out, want) {
			t.Fatalf("runs show lacks %q:\n%s", want, out)
		}
	}
}

// TestBootVerbs: boot device, boot mode and secure boot on gen8 and gen10.
func TestBootVerbs(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen8=1,gen10=1")

	c.must("node", "boot-device", "set", "gen8-0", "gen10-0", "pxe")
	for _, n := range []string{"gen8-0", "gen10-0"} {
		if d := server(t, s, n).State().OneTimeBoot; d != "NETWORK" {
			t.Fatalf("%s: one-time boot %s after boot-device set pxe", n, d)
		}
	}
	rows := fieldRows(t, c.must("node", "boot-device", "show", "--all", "--json"))
	for _, n := range []string{"gen8-0", "gen10-0"} {
		if rows[n]["boot_device"] != "pxe" || rows[n]["persistent"] != false {
			t.Fatalf("%s: boot-device show %v, want pxe one-time", n, rows[n])
		}
	}
	c.must("node", "boot-device", "set", "gen10-0", "disk", "--persistent")
	if st := server(t, s, "gen10-0").State(); st.PersistentBoot[0] != "HDD" {
		t.Fatalf("persistent boot %v after set disk --persistent", st.PersistentBoot)
	}
	code, out, errOut := c.run("node", "boot-device", "set", "gen10-0", "bios")
	if code != 1 || !strings.Contains(out+errOut, "not_supported") {
		t.Fatalf("boot-device bios: exit %d (want 1, not_supported)\n%s%s", code, out, errOut)
	}

	c.must("node", "boot-mode", "set", "gen8-0", "bios")
	if m := server(t, s, "gen8-0").State().PendingBootMode; m != "LEGACY" {
		t.Fatalf("gen8: pending boot mode %s after boot-mode set bios", m)
	}
	code, out, errOut = c.run("node", "boot-mode", "set", "gen8-0", "uefi")
	if code != 1 || !strings.Contains(out+errOut, "not_supported") {
		t.Fatalf("boot-mode uefi on gen8: exit %d (want 1, not_supported)\n%s%s", code, out, errOut)
	}
	c.must("node", "boot-mode", "set", "gen10-0", "bios")
	if m := server(t, s, "gen10-0").State().PendingBootMode; m != "LEGACY" {
		t.Fatalf("pending boot mode %s after boot-mode set bios", m)
	}
	c.must("node", "boot-mode", "set", "gen10-0", "uefi")
	if m := server(t, s, "gen10-0").State().PendingBootMode; m != "UEFI" {
		t.Fatalf("pending boot mode %s after boot-mode set uefi", m)
	}

	c.must("node", "secure-boot", "on", "gen10-0")
	if !server(t, s, "gen10-0").State().SecureBootEnable {
		t.Fatal("secure boot not enabled")
	}
	c.must("node", "secure-boot", "off", "gen10-0")
	if server(t, s, "gen10-0").State().SecureBootEnable {
		t.Fatal("secure boot still enabled")
	}
	code, out, errOut = c.run("node", "secure-boot", "on", "gen8-0")
	if code != 1 || !strings.Contains(out+errOut, "not_supported") {
		t.Fatalf("secure-boot on gen8: exit %d (want 1, not_supported)\n%s%s", code, out, errOut)
	}
}

// TestNodeVerbsBadInput: unknown node, unknown device or mode, missing
// values: exit 2 before any run.
func TestNodeVerbsBadInput(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"power unknown node", []string{"node", "power", "on", "ghost"}, "ghost"},
		{"power no node", []string{"node", "power", "off"}, "name the nodes or use --all"},
		{"unknown boot device", []string{"node", "boot-device", "set", "n1", "floppy"}, `unknown boot device "floppy": use pxe, disk, cdrom, bios`},
		{"boot device missing", []string{"node", "boot-device", "set"}, "name the boot device"},
		{"boot device unknown node", []string{"node", "boot-device", "set", "ghost", "pxe"}, "ghost"},
		{"unknown boot mode", []string{"node", "boot-mode", "set", "n1", "efi"}, `unknown boot mode "efi": use uefi, bios`},
		{"secure boot unknown node", []string{"node", "secure-boot", "on", "ghost"}, "ghost"},
		{"validate unknown node", []string{"node", "validate", "ghost"}, "ghost"},
		{"unknown power action", []string{"node", "power", "sideways", "n1"}, `unknown command "sideways"`},
		{"follow with json", []string{"runs", "show", "1", "--follow", "--json"}, "--follow and --json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != 2 || !strings.Contains(out+errOut, tt.msg) {
				t.Fatalf("exit %d (want 2), output %q lacks %q", code, out+errOut, tt.msg)
			}
		})
	}
	if out := c.must("runs", "list"); strings.Count(out, "\n") > 1 {
		t.Fatalf("a refused verb started a run:\n%s", out)
	}
}

// TestMaintenance: set with a reason (shown by node list), the
// provisioning verbs refuse the node, boot-iso and the power verbs do not,
// unset clears it.
func TestMaintenance(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen10=1")
	c.must("node", "set", "gen10-0", "-i", "ilo_deploy_iso=http://127.0.0.1/ipa.iso")
	c.must("node", "manage", "gen10-0")
	c.must("node", "maintenance", "set", "gen10-0", "--reason", "fan 3 noisy")
	if out := c.must("node", "list"); !strings.Contains(out, "fan 3 noisy") {
		t.Fatalf("node list lacks the reason:\n%s", out)
	}
	for _, args := range [][]string{
		{"inspect", "gen10-0"},
		{"clean", "gen10-0", "--steps", `[{"interface": "deploy", "step": "erase_devices"}]`},
		{"undeploy", "gen10-0"},
		{"run", "inspect", "--node", "gen10-0"},
	} {
		code, out, errOut := c.run(args...)
		if code != 2 || !strings.Contains(out+errOut, "node gen10-0 is in maintenance (fan 3 noisy)") {
			t.Fatalf("%v: exit %d (want 2, refused for maintenance)\n%s%s", args, code, out, errOut)
		}
	}
	code, out, errOut := c.run("inspect", "--all")
	if code != 2 || !strings.Contains(errOut, "no node is in a state") {
		t.Fatalf("inspect --all took a node in maintenance: exit %d\n%s%s", code, out, errOut)
	}
	// Ironic allows power and management actions in maintenance
	c.must("node", "power", "on", "gen10-0")
	if p := server(t, s, "gen10-0").State().Power; p != "ON" {
		t.Fatalf("power %s", p)
	}
	c.must("node", "boot-device", "set", "gen10-0", "cdrom")
	if d := server(t, s, "gen10-0").State().OneTimeBoot; d != "CDROM" {
		t.Fatalf("one-time boot %s in maintenance", d)
	}
	code, out, errOut = c.run("node", "maintenance", "set", "ghost", "--reason", "x")
	if code != 2 || !strings.Contains(out+errOut, "ghost") {
		t.Fatalf("maintenance set of an unknown node: exit %d\n%s%s", code, out, errOut)
	}
	c.must("node", "maintenance", "unset", "gen10-0")
	if out := c.must("node", "list"); strings.Contains(out, "fan 3 noisy") {
		t.Fatalf("the reason is still listed after unset:\n%s", out)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdScript is a site playbook that holds its node until the simulated
// server is powered on (by the test), then succeeds or fails.
const holdScript = `local bmc = require("ilo").connect(node)
run.step("hold", function()
  run.log("info", "holding the node")
  while bmc:get_host_power_status() ~= "ON" do run.sleep(0.05) end
end)
if params.fail == "1" then run.fail("error", "asked to fail") end
`

// TestRunsShowFollowAndLockedNode: while a run holds a node, the verbs and
// node changes are refused; runs show --follow streams the run from another
// "terminal" until it ends and exits with the run's status.
func TestRunsShowFollowAndLockedNode(t *testing.T) {
	for _, tc := range []struct {
		name, fail string
		code       int
		final      string
	}{{"succeeds", "0", 0, "SUCCEEDED"}, {"fails", "1", 1, "FAILED"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			s := simFleet(t, c, "gen10=1")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "hold.lua"), []byte(holdScript), 0o644); err != nil {
				t.Fatal(err)
			}
			server(t, s, "gen10-0").Update(func(st *sim.State) { st.Power = "OFF" })
			var runOut, runErr testenv.SyncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run([]string{"--scripts", dir, "run", "hold", "--node", "gen10-0", "--param", "fail=" + tc.fail}, &runOut, &runErr)
			}()
			// synchronise on the recorded event: the run holds the node
			waitFor(t, "the run's 'holding' event", func() bool {
				select {
				case code := <-done:
					t.Fatalf("the run ended (exit %d) before holding the node:\n%s%s", code, runOut.String(), runErr.String())
				default:
				}
				_, out, _ := c.run("runs", "log", "1")
				return strings.Contains(out, "holding the node")
			})

			for _, args := range [][]string{
				{"node", "power", "on", "gen10-0"},
				{"node", "power", "state", "gen10-0"},
				{"node", "boot-device", "set", "gen10-0", "pxe"},
				{"node", "boot-device", "show", "gen10-0"},
				{"node", "boot-mode", "set", "gen10-0", "uefi"},
				{"node", "secure-boot", "off", "gen10-0"},
				{"node", "validate", "gen10-0"},
				{"node", "maintenance", "set", "gen10-0", "--reason", "x"},
				{"node", "set", "gen10-0", "-p", "memory_mb=1"},
			} {
				code, out, errOut := c.run(args...)
				if code != 1 || !strings.Contains(out+errOut, "locked by run 1") {
					t.Fatalf("%v while locked: exit %d (want 1, locked by run 1)\n%s%s", args, code, out, errOut)
				}
			}

			var follow testenv.SyncBuffer
			fdone := make(chan int, 1)
			go func() {
				fdone <- run([]string{"runs", "show", "1", "--follow", "--interval", "50ms"}, &follow, &follow)
			}()
			waitFor(t, "--follow to print the timeline so far", func() bool { return strings.Contains(follow.String(), "holding the node") })
			select {
			case code := <-fdone:
				t.Fatalf("--follow ended (exit %d) while the run is going:\n%s", code, follow.String())
			default:
			}
			server(t, s, "gen10-0").Update(func(st *sim.State) { st.Power = "ON" })
			var code int
			select {
			case code = <-fdone:
			case <-time.After(60 * time.Second):
				t.Fatal("--follow did not end with the run")
			}
			if rc := <-done; rc != tc.code {
				t.Fatalf("the run exited %d\n%s%s", rc, runOut.String(), runErr.String())
			}
			out := follow.String()
			if code != tc.code || !strings.Contains(out, "Run 1 "+tc.final) {
				t.Fatalf("--follow: exit %d (want %d), output lacks %q:\n%s", code, tc.code, "Run 1 "+tc.final, out)
			}
			if strings.Count(out, "holding the node") != 1 {
				t.Fatalf("--follow printed an event twice:\n%s", out)
			}
		})
	}
}

// TestNodeValidate: the per-interface table of a ready node, and the
// reasons of one that is not.
func TestNodeValidate(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen8=1,gen10=1")
	iso := filepath.Join(t.TempDir(), "ipa.iso")
	img := filepath.Join(t.TempDir(), "disk.img")
	for _, f := range []string{iso, img} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"gen8-0", "gen10-0"} {
		c.must("node", "set", n, "-i", "ilo_deploy_iso="+iso, "-i", "console_port=5000", "--instance-info", "image_source="+img,
			"--instance-info", "image_checksum="+strings.Repeat("a", 32), "--port", map[string]string{"gen8-0": "52:54:00:00:00:08", "gen10-0": "52:54:00:00:00:10"}[n])
		server(t, s, n).Update(func(st *sim.State) {
			st.Licenses = []sim.License{{Type: "iLO Advanced", Key: "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"}}
		})
	}
	type result struct {
		Node       string
		Interfaces []struct {
			Interface string
			Result    bool
			Reason    string
		}
	}
	parse := func(out string) map[string]map[string]string {
		var rs []result
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		m := map[string]map[string]string{}
		for _, r := range rs {
			m[r.Node] = map[string]string{}
			for _, i := range r.Interfaces {
				if i.Result {
					m[r.Node][i.Interface] = "ok"
				} else {
					m[r.Node][i.Interface] = i.Reason
				}
			}
		}
		return m
	}
	got := parse(c.must("node", "validate", "gen8-0", "gen10-0", "--json"))
	for _, n := range []string{"gen8-0", "gen10-0"} {
		for _, i := range []string{"power", "management", "boot", "deploy", "console", "inspect"} {
			if got[n][i] != "ok" {
				t.Fatalf("%s %s: %q, want ok (%v)", n, i, got[n][i], got[n])
			}
		}
	}
	before := c.must("node", "show", "gen10-0", "--json")

	// break gen10-0 in every way validate checks
	server(t, s, "gen10-0").Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Standard"}} })
	c.must("node", "set", "gen10-0", "--instance-info", "image_source="+img+".missing")
	var shown struct{ Ports []struct{ Address string } }
	if err := json.Unmarshal([]byte(before), &shown); err != nil {
		t.Fatal(err)
	}
	unset := []string{"node", "unset", "gen10-0", "-i", "console_port"}
	for _, p := range shown.Ports {
		unset = append(unset, "--port", p.Address)
	}
	c.must(unset...)
	code, out, errOut := c.run("node", "validate", "gen10-0", "--json")
	if code != 1 {
		t.Fatalf("validate of a broken node: exit %d (want 1)\n%s%s", code, out, errOut)
	}
	broken := parse(out)["gen10-0"]
	for i, want := range map[string]string{
		"power":   "ok",
		"boot":    "does not allow virtual media",
		"deploy":  "does not have any port",
		"console": "Missing 'console_port'",
	} {
		if !strings.Contains(broken[i], want) {
			t.Fatalf("%s: %q lacks %q", i, broken[i], want)
		}
	}
	if !strings.Contains(broken["boot"], `licence "iLO Standard"`) || !strings.Contains(broken["boot"], "pxe_ilo") {
		t.Fatalf("boot: %q does not name the licence and suggest pxe_ilo", broken["boot"])
	}
	// pxe_ilo boots over PXE: an iLO 4 with iLO Standard is fine for it,
	// and it needs deploy_kernel and deploy_ramdisk, not a deploy ISO.
	server(t, s, "gen8-0").Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Standard"}} })
	c.must("node", "set", "gen8-0", "--driver", "pxe_ilo", "-i", "deploy_kernel="+iso, "-i", "deploy_ramdisk="+iso)
	if got := parse(c.must("node", "validate", "gen8-0", "--json"))["gen8-0"]["boot"]; got != "ok" {
		t.Fatalf("pxe_ilo on iLO Standard: boot %q, want ok", got)
	}
	c.must("node", "set", "gen8-0", "--driver", "agent_ilo")
	if _, out, _ := c.run("node", "validate", "gen8-0", "--json"); !strings.Contains(parse(out)["gen8-0"]["boot"], `iLO 4 licence "iLO Standard" does not allow virtual media`) {
		t.Fatalf("agent_ilo on an iLO 4 with iLO Standard: boot %q", parse(out)["gen8-0"]["boot"])
	}
	// the image reference is checked once the rest is fine
	c.must("node", "set", "gen10-0", "--port", "52:54:00:00:00:10")
	server(t, s, "gen10-0").Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Advanced"}} })
	_, out, _ = c.run("node", "validate", "gen10-0", "--json")
	if got := parse(out)["gen10-0"]["deploy"]; !strings.Contains(got, "missing does not resolve") {
		t.Fatalf("deploy: %q lacks the unresolved image", got)
	}
	// wrong credentials
	c.must("node", "set", "gen10-0", "-i", "ilo_password=wrong-"+sentinel)
	_, out, _ = c.run("node", "validate", "gen10-0")
	if !strings.Contains(out, "power") || !strings.Contains(out, "refused the credentials") {
		t.Fatalf("validate with a wrong password:\n%s", out)
	}
	// nothing but the password (set by the test) changed on the node
	var b, a map[string]any
	json.Unmarshal([]byte(before), &b)
	json.Unmarshal([]byte(c.must("node", "show", "gen10-0", "--json")), &a)
	if b["provision_state"] != a["provision_state"] || b["power_state"] != a["power_state"] {
		t.Fatalf("validate changed the node: %v → %v", b["provision_state"], a["provision_state"])
	}
	if strings.Contains(c.allOut.String(), sentinel) || strings.Contains(c.allOut.String(), server(t, s, "gen10-0").Password()) {
		t.Fatal("a password leaked")
	}
}

// TestCompletion: cobra's dynamic completion offers node names, playbook
// names, clean steps and run ids from the store and the scripts in effect.
func TestCompletion(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	c.createNode("n2")
	c.must("run", "hello")
	tests := []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"node", "power", "on", ""}, []string{"n1\tenroll", "n2\tenroll"}, nil},
		{[]string{"node", "power", "on", "n1", ""}, []string{"n2"}, []string{"n1\t"}},
		{[]string{"node", "boot-device", "set", "n1", ""}, []string{"pxe", "disk", "cdrom", "bios", "n2"}, nil},
		{[]string{"deploy", ""}, []string{"n1", "n2"}, nil},
		{[]string{"run", ""}, []string{"deploy", "node_power", "hello"}, []string{"playbook"}},
		{[]string{"clean", "n1", "--steps", ""}, []string{`[{"interface":"deploy","step":"erase_devices"}]`}, nil},
		{[]string{"runs", "show", ""}, []string{"1\thello - succeeded"}, nil},
		{[]string{"--log-format", ""}, []string{"compact", "json"}, nil},
	}
	for _, tt := range tests {
		code, out, errOut := c.run(append([]string{"__complete"}, tt.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", tt.args, code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("completion of %v lacks %q:\n%s", tt.args, w, out)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(out, w) {
				t.Errorf("completion of %v offers %q:\n%s", tt.args, w, out)
			}
		}
	}
	if out := c.must("completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash:\n%.200s", out)
	}
}

// TestNodeValidateDrivers: the boot and deploy rows follow the node's
// driver — pxe_ilo needs ports, deploy_kernel + deploy_ramdisk that
// resolve, [deploy] http_url with iPXE, and no UEFI whole-disk netboot;
// iscsi_ilo refuses swap on a whole-disk image and a bad iscsi_port — each
// reason naming the field to fix.
func TestNodeValidateDrivers(t *testing.T) {
	c := newCLI(t)
	s := simFleet(t, c, "gen8=1")
	const n, mac = "gen8-0", "52:54:00:00:00:08"
	dir := t.TempDir()
	kernel, ramdisk, img := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd"), filepath.Join(dir, "disk.img")
	for _, f := range []string{kernel, ramdisk, img} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	server(t, s, n).Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Advanced"}} })
	c.must("node", "set", n, "-i", "ilo_deploy_iso="+img, "-i", "deploy_kernel="+kernel, "-i", "deploy_ramdisk="+ramdisk,
		"--instance-info", "image_source="+img, "--instance-info", "image_checksum="+strings.Repeat("a", 32), "--port", mac)
	var shown struct{ Ports []struct{ Address string } }
	if err := json.Unmarshal([]byte(c.must("node", "show", n, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, p := range shown.Ports {
		ports = append(ports, "--port", p.Address)
	}
	var props struct {
		Properties map[string]any `json:"properties"`
	}
	json.Unmarshal([]byte(c.must("node", "show", n, "--json")), &props)
	caps, _ := props.Properties["capabilities"].(string)
	ipxe := filepath.Join(dir, "ipxe.conf")
	if err := os.WriteFile(ipxe, []byte("[pxe]\nipxe_enabled = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		driver       string
		set, unset   []string // node set / node unset arguments, undone after the case
		config       string
		boot, deploy string // "ok" or a part of the reason
	}{
		{name: "pxe_ilo ok", driver: "pxe_ilo", boot: "ok", deploy: "ok"},
		{name: "pxe_ilo without ports", driver: "pxe_ilo", unset: ports,
			boot: "has no ports: pxe_ilo names the PXE config after the port MACs", deploy: "port"},
		{name: "pxe_ilo without deploy_kernel", driver: "pxe_ilo", unset: []string{"-i", "deploy_kernel"},
			boot: "Missing are: [deploy_kernel, deploy_ramdisk]", deploy: "boot:"},
		{name: "pxe_ilo kernel missing", driver: "pxe_ilo", set: []string{"-i", "deploy_kernel=" + kernel + ".missing"},
			boot: "vmlinuz.missing does not resolve", deploy: "ok"},
		{name: "pxe_ilo iPXE without http_url", driver: "pxe_ilo", config: ipxe,
			boot: "[pxe] ipxe_enabled needs [deploy] http_url", deploy: "boot:"},
		{name: "pxe_ilo UEFI whole-disk netboot", driver: "pxe_ilo",
			set: []string{"-p", "capabilities=boot_mode:uefi",
				"--instance-info", `capabilities={"boot_mode": "uefi", "boot_option": "netboot"}`},
			boot: "ok", deploy: "Conflict: Whole disk image being used for deploy"},
		{name: "pxe_ilo partition image", driver: "pxe_ilo",
			set:  []string{"--instance-info", "kernel=" + kernel, "--instance-info", "ramdisk=" + kernel},
			boot: "ok", deploy: "make this a partition image, which pxe_ilo cannot deploy"},
		{name: "agent_ilo partition image", driver: "agent_ilo",
			set:  []string{"--instance-info", "kernel=" + kernel, "--instance-info", "ramdisk=" + kernel},
			boot: "ok", deploy: "set the node's driver to iscsi_ilo"},
		{name: "iscsi_ilo ok", driver: "iscsi_ilo", boot: "ok", deploy: "ok"},
		{name: "iscsi_ilo whole-disk with swap", driver: "iscsi_ilo", set: []string{"--instance-info", "swap_mb=512"},
			boot: "ok", deploy: "Cannot deploy whole disk image with swap or ephemeral size set (instance_info.swap_mb=512: unset it"},
		{name: "iscsi_ilo bad port", driver: "iscsi_ilo", set: []string{"-i", "iscsi_port=x"},
			boot: "ok", deploy: "driver_info.iscsi_port must be a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			// the baseline, then the case's change
			c.must("node", "set", n, "-i", "deploy_kernel="+kernel, "--port", mac)
			c.must("node", "unset", n, "-i", "iscsi_port", "--instance-info", "swap_mb", "--instance-info", "capabilities",
				"--instance-info", "kernel", "--instance-info", "ramdisk")
			c.must("node", "set", n, "-p", "capabilities="+caps)
			c.must(append([]string{"node", "set", n, "--driver", tt.driver}, tt.set...)...)
			if tt.unset != nil {
				c.must(append([]string{"node", "unset", n}, tt.unset...)...)
			}
			args := []string{"node", "validate", n, "--json"}
			if tt.config != "" {
				args = append([]string{"--config", tt.config}, args...)
			}
			_, out, errOut := c.run(args...)
			var rs []struct {
				Interfaces []struct {
					Interface string
					Result    bool
					Reason    string
				}
			}
			if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
				t.Fatalf("validate: %v\n%s%s", err, out, errOut)
			}
			got := map[string]string{}
			for _, i := range rs[0].Interfaces {
				got[i.Interface] = i.Reason
				if i.Result {
					got[i.Interface] = "ok"
				}
			}
			for iface, want := range map[string]string{"boot": tt.boot, "deploy": tt.deploy} {
				if want == "ok" && got[iface] != "ok" || want != "ok" && !strings.Contains(got[iface], want) {
					t.Errorf("%s: %q, want %q", iface, got[iface], want)
				}
			}
		})
	}
}
