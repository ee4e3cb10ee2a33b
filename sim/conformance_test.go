package sim_test

// Conformance suites (issue 11 item 7): clients we did not write drive the
// simulator, every generation they apply to. They run under `make test`
// (LIGHTSOUT_INTEGRATION=1, Debian packages from testdata/tools/deps.sh) and
// skip otherwise when the package is missing.
//
//   - python-hpilo (python3-hpilo) speaks RIBCL to gen8 and gen9 over its own
//     raw HTTP/1.1 socket code: it needs Transfer-Encoding: chunked and reads
//     until the iLO closes the connection.
//   - sushy (python3-sushy) walks Redfish on gen9..gen12: session service,
//     update service, system, power, boot, BIOS, secure boot, virtual media.
//   - redfishtool (redfishtool) checks versions (GET /redfish), the root,
//     Systems, Chassis, Managers and a reset, with basic and session auth.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// requirePython skips (fails under make test) unless module imports with
// Debian's python3.
func requirePython(t *testing.T, module, pkg string) {
	t.Helper()
	testenv.RequireTools(t, python)
	if out, err := exec.Command(python, "-c", "import "+module).CombinedOutput(); err != nil {
		if testenv.Integration() {
			t.Fatalf("%s does not import (run testdata/tools/deps.sh to install %s): %v\n%s", module, pkg, err, out)
		}
		t.Skipf("%s not importable (Debian %s): %v", module, pkg, err)
	}
}

// hpiloCall is one python-hpilo method call and its checked outcome.
type hpiloCall struct {
	op   string
	args []any
	// want is the JSON of the result (empty: only success is checked).
	want string
	// check, when set, checks the decoded result.
	check func(t *testing.T, res any)
}

type pyOutcome struct {
	OK      bool   `json:"ok"`
	Result  any    `json:"result"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// runHpilo runs calls through testdata/hpilo_driver.py against srv.
func runHpilo(t *testing.T, srv *sim.Server, calls []hpiloCall) []pyOutcome {
	t.Helper()
	var in []map[string]any
	for _, c := range calls {
		args := c.args
		if args == nil {
			args = []any{}
		}
		in = append(in, map[string]any{"op": c.op, "args": args})
	}
	callsJSON, _ := json.Marshal(in)
	cfg, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": srv.Port(), "user": srv.Username(), "password": srv.Password()})
	cmd := exec.Command(python, "testdata/hpilo_driver.py", string(cfg))
	cmd.Env = pyEnv()
	cmd.Stdin = strings.NewReader(string(callsJSON))
	cmd.Stderr = &testWriter{t: t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hpilo driver: %v\n%s", err, out)
	}
	var res []pyOutcome
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(calls) {
		t.Fatalf("hpilo driver output (%v): %.500s", err, out)
	}
	return res
}

// TestConformancePythonHpilo drives gen8 and gen9 RIBCL with python-hpilo.
func TestConformancePythonHpilo(t *testing.T) {
	requirePython(t, "hpilo", "python3-hpilo")
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1, sim.Gen9, 1)})
	img := imageServer(t)
	iso := img.URL + "/images/deploy.iso"
	for _, srv := range s.Servers() {
		t.Run(srv.Name(), func(t *testing.T) {
			hw := srv.Hardware()
			mode := map[sim.Generation]string{sim.Gen8: "LEGACY", sim.Gen9: "UEFI"}[srv.Generation()]
			supported := map[sim.Generation]string{sim.Gen8: "LEGACY_ONLY", sim.Gen9: "LEGACY_UEFI"}[srv.Generation()]
			memUnit := map[sim.Generation]string{sim.Gen8: fmt.Sprintf("%d MB", hw.MemoryMB/2), sim.Gen9: fmt.Sprintf("%d GB", hw.MemoryMB/2048)}[srv.Generation()]
			calls := []hpiloCall{
				{op: "get_product_name", want: `"` + hw.Model + `"`},
				{op: "get_fw_version", check: func(t *testing.T, r any) {
					if m := r.(map[string]any); m["management_processor"] != "iLO4" {
						t.Errorf("fw version %v", m)
					}
				}},
				{op: "get_network_settings", check: func(t *testing.T, r any) {
					m := r.(map[string]any)
					if m["ip_address"] != "127.0.0.1" || m["enable_nic"] != true || len(fmt.Sprint(m["mac_address"])) != 17 {
						t.Errorf("network settings %v", m)
					}
				}},
				{op: "get_global_settings", check: func(t *testing.T, r any) {
					if m := r.(map[string]any); m["https_port"] != float64(srv.Port()) || m["min_password"] != 8.0 {
						t.Errorf("global settings %v", m)
					}
				}},
				{op: "get_all_users", want: `["Administrator"]`},
				{op: "get_uid_status", want: `"OFF"`},
				{op: "uid_control", args: []any{"Yes"}},
				{op: "get_uid_status", want: `"ON"`},
				{op: "uid_control", args: []any{"No"}},
				{op: "get_server_power_on_time", check: func(t *testing.T, r any) {
					if _, ok := r.(float64); !ok {
						t.Errorf("power-on time %v", r)
					}
				}},
				{op: "get_asset_tag", want: `{"asset_tag":null}`},
				{op: "set_asset_tag", args: []any{"rack4-u7"}},
				{op: "get_asset_tag", want: `{"asset_tag":"rack4-u7"}`},
				{op: "get_tpm_status", want: `{"tpm_enabled":"Yes","tpm_present":"Yes","tpm_support":"Yes"}`},
				// Power.
				{op: "get_host_power_status", want: `"OFF"`},
				{op: "set_host_power", args: []any{true}},
				{op: "get_host_power_status", want: `"ON"`},
				{op: "reset_server"},
				{op: "press_pwr_btn"},
				{op: "get_host_power_status", want: `"OFF"`},
				{op: "set_host_power", args: []any{true}},
				{op: "hold_pwr_btn"},
				{op: "get_host_power_status", want: `"OFF"`},
				// Boot.
				{op: "get_one_time_boot", want: `"normal"`},
				{op: "set_one_time_boot", args: []any{"cdrom"}},
				{op: "get_one_time_boot", want: `"cdrom"`},
				{op: "get_current_boot_mode", want: `"` + mode + `"`},
				{op: "get_pending_boot_mode", want: `"` + mode + `"`},
				{op: "get_supported_boot_mode", want: `"` + supported + `"`},
				{op: "get_persistent_boot", check: func(t *testing.T, r any) {
					if l, ok := r.([]any); !ok || len(l) < 3 {
						t.Errorf("persistent boot %v", r)
					}
				}},
				// Virtual media.
				{op: "get_vm_status", want: `{"boot_option":"BOOT_ALWAYS","device":"CDROM","image_inserted":"NO","image_url":"","vm_applet":"DISCONNECTED","write_protect":"NO"}`},
				{op: "insert_virtual_media", args: []any{"cdrom", iso}},
				{op: "set_vm_status", args: []any{"cdrom", "boot_once", true}},
				{op: "get_vm_status", want: `{"boot_option":"BOOT_ONCE","device":"CDROM","image_inserted":"YES","image_url":"` + iso + `","vm_applet":"DISCONNECTED","write_protect":"YES"}`},
				{op: "eject_virtual_media", args: []any{"cdrom"}},
				{op: "get_vm_status", check: func(t *testing.T, r any) {
					if m := r.(map[string]any); m["image_inserted"] != "NO" {
						t.Errorf("after eject %v", m)
					}
				}},
				// Health.
				{op: "get_embedded_health", check: func(t *testing.T, r any) {
					m := r.(map[string]any)
					mem, _ := json.Marshal(m["memory"])
					if !strings.Contains(string(mem), memUnit) {
						t.Errorf("memory %s lacks %q", mem, memUnit)
					}
					if g, _ := m["health_at_a_glance"].(map[string]any); g == nil || g["fans"] == nil {
						t.Errorf("health at a glance %v", m["health_at_a_glance"])
					}
					if p, _ := m["processors"].(map[string]any); len(p) != len(hw.CPUs) {
						t.Errorf("processors %v", m["processors"])
					}
				}},
				{op: "get_power_readings", check: func(t *testing.T, r any) {
					if _, ok := r.(map[string]any)["present_power_reading"]; !ok {
						t.Errorf("power readings %v", r)
					}
				}},
				{op: "get_host_data", check: func(t *testing.T, r any) {
					if l, ok := r.([]any); !ok || len(l) < 3 {
						t.Errorf("host data %v", r)
					}
				}},
				{op: "get_all_licenses", check: func(t *testing.T, r any) {
					l, ok := r.([]any)
					if !ok || len(l) != 1 {
						t.Fatalf("licenses %v", r)
					}
					if m, _ := l[0].(map[string]any); m["license_type"] != sim.DefaultLicense {
						t.Errorf("licence %v, want the default %s", l[0], sim.DefaultLicense)
					}
				}},
				// What lightsout's get_license reads (GET_FW_VERSION).
				{op: "get_fw_version", check: func(t *testing.T, r any) {
					if m, _ := r.(map[string]any); m["license_type"] != sim.DefaultLicense || m["management_processor"] != "iLO4" {
						t.Errorf("fw version %v, want license_type %s on iLO4", r, sim.DefaultLicense)
					}
				}},
			}
			res := runHpilo(t, srv, calls)
			for i, c := range calls {
				r := res[i]
				if !r.OK {
					t.Errorf("%s%v: %s: %s", c.op, c.args, r.Error, r.Message)
					continue
				}
				if c.want != "" {
					var want any
					_ = json.Unmarshal([]byte(c.want), &want)
					got, _ := json.Marshal(r.Result)
					wantJ, _ := json.Marshal(want)
					if string(got) != string(wantJ) {
						t.Errorf("%s%v = %s, want %s", c.op, c.args, got, wantJ)
					}
				}
				if c.check != nil {
					c.check(t, r.Result)
				}
			}
		})
	}
}

// TestConformanceSushy drives gen9..gen12 Redfish with sushy.
func TestConformanceSushy(t *testing.T) {
	requirePython(t, "sushy", "python3-sushy")
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1)})
	img := imageServer(t)
	iso := img.URL + "/images/a.iso"
	for _, srv := range s.Servers() {
		t.Run(srv.Name(), func(t *testing.T) {
			cfg, _ := json.Marshal(map[string]any{"url": srv.URL(), "user": srv.Username(), "password": srv.Password(),
				"cacert": s.CAFile(), "image": iso})
			cmd := exec.Command(python, "testdata/sushy_suite.py", string(cfg))
			cmd.Env = pyEnv()
			cmd.Stderr = &testWriter{t: t}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sushy suite: %v\n%s", err, out)
			}
			var obs map[string]any
			if err := json.Unmarshal(out, &obs); err != nil {
				t.Fatalf("sushy suite output: %v: %.500s", err, out)
			}
			hw := srv.Hardware()
			g := srv.Generation()
			uefiOnly := g == sim.Gen11 || g == sim.Gen12
			want := map[string]any{
				"product":                          hw.Model,
				"session_service.name":             "Session Service",
				"session_service.sessions":         1.0,
				"update_service.name":              "Update Service",
				"system.serial":                    hw.SerialNumber,
				"system.uuid":                      hw.UUID,
				"system.power":                     "Off",
				"system.memory_gib":                float64(hw.MemoryMB / 1024),
				"system.cpus":                      float64(hw.TotalThreads()),
				"system.asset_tag":                 "",
				"power.after_on":                   "On",
				"power.after_restart":              "On",
				"boot.target":                      "Cd",
				"boot.enabled":                     "Once",
				"bios.boot_mode":                   map[bool]any{true: "<absent>", false: "Uefi"}[uefiOnly],
				"bios.pending":                     "Virtualization-MaxPerformance",
				"bios.current":                     "GeneralPowerEfficientCompute",
				"secure_boot.before":               false,
				"secure_boot.enabled":              true,
				"secure_boot.current_before_reset": "Disabled",
				"secure_boot.current_after_reset":  "Enabled",
				"secure_boot.after_disable":        false,
				"vmedia.empty_image":               "",
				"vmedia.inserted":                  true,
				"vmedia.image":                     iso,
				"vmedia.after_eject":               false,
			}
			if g == sim.Gen9 {
				// iLO 4 takes only Image in a VirtualMedia PATCH (no
				// standard InsertMedia action): sushy's PATCH with Inserted
				// and WriteProtected is refused, as on a real iLO 4.
				for _, k := range []string{"vmedia.inserted", "vmedia.image", "vmedia.after_eject"} {
					delete(want, k)
				}
				if e, _ := obs["virtual_media.error"].(string); !strings.Contains(e, "The property Inserted is not in the list of valid properties") {
					t.Errorf("gen9 virtual media: %q, want the iLO 4 refusal of Inserted", e)
				}
				delete(obs, "virtual_media.error")
			}
			for k, v := range obs {
				if strings.HasSuffix(k, ".error") {
					t.Errorf("%s: %v", k, v)
				}
			}
			for k, v := range want {
				if got := obs[k]; fmt.Sprint(got) != fmt.Sprint(v) {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			rt := fmt.Sprint(obs["system.reset_types"])
			if strings.Contains(rt, "Graceful") == (g == sim.Gen9) {
				t.Errorf("reset types %s on %s", rt, g)
			}
			fw, _ := obs["update_service.firmware"].([]any)
			if len(fw) < 3 || !strings.Contains(fmt.Sprint(fw), map[sim.Generation]string{sim.Gen9: "iLO 4", sim.Gen10: "iLO 5", sim.Gen11: "iLO 6", sim.Gen12: "iLO 7"}[g]) {
				t.Errorf("firmware inventory %v", fw)
			}
			macs := fmt.Sprint(obs["system.macs"])
			for _, m := range hw.MACs() {
				if !strings.Contains(macs, m) {
					t.Errorf("MAC %s missing from %s", m, macs)
				}
			}
			// The state the simulator ends in is what sushy asked for.
			st := srv.State()
			if st.Power != "ON" || st.SecureBootEnable || st.BootCount < 3 {
				t.Errorf("final state: power %s secure boot %v boots %d", st.Power, st.SecureBootEnable, st.BootCount)
			}
		})
	}
}

// TestConformanceRedfishtool runs DMTF's redfishtool against gen9..gen12.
func TestConformanceRedfishtool(t *testing.T) {
	testenv.RequireTools(t, "redfishtool")
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1)})
	for _, srv := range s.Servers() {
		t.Run(srv.Name(), func(t *testing.T) {
			rft := func(auth string, args ...string) map[string]any {
				t.Helper()
				base := []string{"-r", srv.Addr(), "-u", srv.Username(), "-p", srv.Password(), "-S", "Always", "-A", auth, "-T", "20"}
				cmd := exec.Command("redfishtool", append(base, args...)...)
				cmd.Env = pyEnv()
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("redfishtool %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				if len(strings.TrimSpace(string(out))) == 0 {
					return nil
				}
				var m map[string]any
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatalf("redfishtool %s: not JSON: %v\n%.300s", strings.Join(args, " "), err, out)
				}
				return m
			}
			if v := rft("Basic", "versions"); v["v1"] != "/redfish/v1/" {
				t.Errorf("versions: %v", v)
			}
			root := rft("Basic", "root")
			if root["Product"] != srv.Hardware().Model || root["Systems"] == nil {
				t.Errorf("root: %v", root)
			}
			if sys := rft("Session", "Systems", "-1"); sys["PowerState"] != "Off" || sys["UUID"] != srv.Hardware().UUID {
				t.Errorf("Systems -1: %v %v", sys["PowerState"], sys["UUID"])
			}
			if n := rft("Basic", "Systems")["Members@odata.count"]; n != 1.0 {
				t.Errorf("Systems collection count %v", n)
			}
			if ch := rft("Session", "Chassis", "-1"); ch["Id"] != "1" || ch["PowerState"] != "Off" {
				t.Errorf("Chassis -1: %v", ch)
			}
			if mg := rft("Session", "Managers", "-1"); mg["ManagerType"] != "BMC" || mg["Model"] == nil {
				t.Errorf("Managers -1: %v", mg)
			}
			rft("Session", "Systems", "-1", "reset", "On")
			if st := srv.State(); st.Power != "ON" {
				t.Fatalf("after redfishtool reset On: power %s", st.Power)
			}
			rft("Basic", "Systems", "-1", "reset", "ForceOff")
			if st := srv.State(); st.Power != "OFF" {
				t.Fatalf("after redfishtool reset ForceOff: power %s", st.Power)
			}
			// Session auth logs out at the end: no session is left behind.
			if n := srv.Sessions(); n != 0 {
				t.Errorf("%d sessions left after redfishtool", n)
			}
		})
	}
}
