package sim_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

// captureDir returns ../shared/fixtures/captures/<name> (beside the
// checkout), skipping the test where it is absent.
func captureDir(t *testing.T, name string) string {
	t.Helper()
	for _, base := range []string{"../../shared/fixtures/captures", "../../../shared/fixtures/captures"} {
		d, _ := filepath.Abs(filepath.Join(base, name))
		if fi, err := os.Stat(filepath.Join(d, "index.json")); err == nil && !fi.IsDir() {
			return d
		}
	}
	t.Skipf("captured tree %s not found: ../shared/fixtures/captures is absent beside the checkout", name)
	return ""
}

func getJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %v: %.200s", err, body)
	}
	return m
}

// TestCaptureReplay serves each captured tree and drives the overlay:
// power, boot override, virtual media, secure boot on the next reset, BIOS
// settings applied on reset, sessions.
func TestCaptureReplay(t *testing.T) {
	tests := []struct {
		dir        string
		gen        sim.Generation
		model      string // Systems/1 Model in the tree
		memoryMB   int    // MemorySummary.TotalSystemMemoryGiB * 1024
		hasBootAtt bool   // BIOS Attributes has BootMode
		biosAttr   string // an attribute the captured BIOS has
		threads    int    // ProcessorSummary.Count * Processors/<first>.TotalThreads
	}{
		{"cray-xl675d-gen10plus-ilo5", sim.Gen10, "ProLiant XL675d Gen10 Plus", 256 * 1024, true, "WorkloadProfile", 2 * 128},
		{"hpe-dl380a-gen11-ilo6", sim.Gen11, "ProLiant DL380a Gen11 -- SIMULATED", 512 * 1024, false, "WorkloadProfile", 2 * 64},
		{"hpe-dl380a-gen12-ilo7", sim.Gen12, "HPE ProLiant Compute DL380a Gen12 -- SIMULATED", 1536 * 1024, false, "WorkloadProfile", 2 * 172},
	}
	img := imageServer(t)
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			dir := captureDir(t, tc.dir)
			s := newSim(t, sim.Options{Captures: []string{dir}})
			c := client(t, s)
			srv := s.Server(0)
			if srv.Name() != tc.dir || srv.Generation() != tc.gen {
				t.Fatalf("server %s %s, want %s %s", srv.Name(), srv.Generation(), tc.dir, tc.gen)
			}
			hw := srv.Hardware()
			if hw.Model != tc.model || hw.MemoryMB != tc.memoryMB || hw.TotalThreads() != tc.threads || hw.SupportedBootModes != "UEFI_ONLY" {
				t.Fatalf("hardware from the tree: %q %d %s", hw.Model, hw.MemoryMB, hw.SupportedBootModes)
			}
			u := srv.URL() + "/redfish/v1"
			// Unauthenticated root, byte for byte; /ribcl is absent.
			resp, body := do(t, c, "GET", u+"/", "", "")
			if resp.StatusCode != 200 || !strings.Contains(body, `"ManagerType"`) {
				t.Fatalf("root: %d %.200s", resp.StatusCode, body)
			}
			if resp, _ := do(t, c, "POST", srv.URL()+"/ribcl", "", "<RIBCL/>"); resp.StatusCode != 404 {
				t.Fatalf("/ribcl on a capture: %d, want 404", resp.StatusCode)
			}
			if resp, _ := do(t, c, "GET", u+"/Systems/1/", "", ""); resp.StatusCode != 401 {
				t.Fatalf("unauthenticated system: %d, want 401", resp.StatusCode)
			}
			resp, _ = login(t, c, srv, srv.Password())
			tok := resp.Header.Get("X-Auth-Token")
			if resp.StatusCode != 201 || tok == "" {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			get := func(path string) map[string]any {
				t.Helper()
				resp, body := do(t, c, "GET", u+path, tok, "")
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %d %.200s", path, resp.StatusCode, body)
				}
				return getJSON(t, body)
			}
			send := func(method, path, body string, want int) {
				t.Helper()
				resp, out := do(t, c, method, u+path, tok, body)
				if resp.StatusCode != want {
					t.Fatalf("%s %s %s: %d, want %d: %.300s", method, path, body, resp.StatusCode, want, out)
				}
			}
			// Power: the trees were captured powered on.
			if p := get("/Systems/1/")["PowerState"]; p != "On" {
				t.Fatalf("PowerState %v, want On (as captured)", p)
			}
			send("POST", "/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"ForceOff"}`, 200)
			if p := get("/Systems/1")["PowerState"]; p != "Off" {
				t.Fatalf("after ForceOff: PowerState %v", p)
			}
			if p := get("/Chassis/1")["PowerState"]; p != "Off" {
				t.Fatalf("after ForceOff: Chassis PowerState %v", p)
			}
			send("POST", "/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, 200)
			if p := get("/Systems/1")["PowerState"]; p != "On" {
				t.Fatalf("after On: PowerState %v", p)
			}
			// Boot override.
			send("PATCH", "/Systems/1/", `{"Boot":{"BootSourceOverrideEnabled":"Once","BootSourceOverrideTarget":"Cd"}}`, 200)
			boot := get("/Systems/1")["Boot"].(map[string]any)
			if boot["BootSourceOverrideEnabled"] != "Once" || boot["BootSourceOverrideTarget"] != "Cd" {
				t.Fatalf("boot override: %v %v", boot["BootSourceOverrideEnabled"], boot["BootSourceOverrideTarget"])
			}
			// Virtual media: empty CD says Image "" as captured; insert shows it.
			if im := get("/Managers/1/VirtualMedia/2")["Image"]; im != "" {
				t.Fatalf("empty CD Image = %#v, want \"\"", im)
			}
			iso := img.URL + "/images/deploy.iso"
			send("POST", "/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia", `{"Image":"`+iso+`"}`, 200)
			vm := get("/Managers/1/VirtualMedia/2/")
			if vm["Image"] != iso || vm["Inserted"] != true || vm["ImageName"] != "deploy.iso" {
				t.Fatalf("after insert: %v %v %v", vm["Image"], vm["Inserted"], vm["ImageName"])
			}
			send("PATCH", "/Managers/1/VirtualMedia/2", `{"Oem":{"Hpe":{"BootOnNextServerReset":true}}}`, 200)
			if b := get("/Managers/1/VirtualMedia/2")["Oem"].(map[string]any)["Hpe"].(map[string]any)["BootOnNextServerReset"]; b != true {
				t.Fatalf("BootOnNextServerReset %v", b)
			}
			send("POST", "/Managers/1/VirtualMedia/2/Actions/Oem/Hpe/HpeiLOVirtualMedia.EjectVirtualMedia", `{}`, 200)
			if vm := get("/Managers/1/VirtualMedia/2"); vm["Inserted"] != false || vm["Image"] != "" {
				t.Fatalf("after eject: %v %v", vm["Inserted"], vm["Image"])
			}
			// Secure boot: the setting shows at once, the current boot at the next reset.
			send("PATCH", "/Systems/1/SecureBoot", `{"SecureBootEnable":true}`, 200)
			sb := get("/Systems/1/SecureBoot")
			if sb["SecureBootEnable"] != true || sb["SecureBootCurrentBoot"] != "Disabled" {
				t.Fatalf("before reset: %v %v", sb["SecureBootEnable"], sb["SecureBootCurrentBoot"])
			}
			// BIOS: an unknown attribute is refused; a known one is pending until reset.
			if !tc.hasBootAtt {
				send("PATCH", "/systems/1/bios/settings/", `{"Attributes":{"BootMode":"LegacyBios"}}`, 400)
			}
			send("PATCH", "/systems/1/bios/settings/", `{"Attributes":{"NoSuchAttribute":"x"}}`, 400)
			send("PATCH", "/systems/1/bios/settings/", `{"Attributes":{"`+tc.biosAttr+`":"Virtualization-MaxPerformance"}}`, 200)
			if v := get("/systems/1/bios/settings/")["Attributes"].(map[string]any)[tc.biosAttr]; v != "Virtualization-MaxPerformance" {
				t.Fatalf("pending %s = %v", tc.biosAttr, v)
			}
			if v := get("/systems/1/bios/")["Attributes"].(map[string]any)[tc.biosAttr]; v == "Virtualization-MaxPerformance" {
				t.Fatalf("%s applied before the reset", tc.biosAttr)
			}
			send("POST", "/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"ForceRestart"}`, 200)
			if sb := get("/Systems/1/SecureBoot"); sb["SecureBootCurrentBoot"] != "Enabled" {
				t.Fatalf("after reset: SecureBootCurrentBoot %v", sb["SecureBootCurrentBoot"])
			}
			if v := get("/systems/1/bios/")["Attributes"].(map[string]any)[tc.biosAttr]; v != "Virtualization-MaxPerformance" {
				t.Fatalf("after reset %s = %v", tc.biosAttr, v)
			}
			send("PATCH", "/Systems/1/SecureBoot", `{"SecureBootEnable":false}`, 200)
			send("POST", "/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"ForceRestart"}`, 200)
			if sb := get("/Systems/1/SecureBoot"); sb["SecureBootCurrentBoot"] != "Disabled" || sb["SecureBootEnable"] != false {
				t.Fatalf("after disable+reset: %v %v", sb["SecureBootEnable"], sb["SecureBootCurrentBoot"])
			}
			// Sessions: the collection lists ours; deleting it logs us out.
			ms := get("/SessionService/Sessions")["Members"].([]any)
			if len(ms) != 1 {
				t.Fatalf("sessions: %v", ms)
			}
			sess := ms[0].(map[string]any)["@odata.id"].(string)
			send("DELETE", strings.TrimPrefix(sess, "/redfish/v1"), "", 200)
			if resp, _ := do(t, c, "GET", u+"/Systems/1", tok, ""); resp.StatusCode != 401 {
				t.Fatalf("after logout: %d, want 401", resp.StatusCode)
			}
			// Writes to a replayed resource without an overlay: 405.
			resp, _ = login(t, c, srv, srv.Password())
			tok = resp.Header.Get("X-Auth-Token")
			send("PATCH", "/Managers/1/DateTime", `{"TimeZone":{"Name":"UTC"}}`, 405)
			send("GET", "/NoSuchThing", "", 404)
		})
	}
}

// TestCaptureInventoryAndErrors: a replayed tree joins the inventory under
// its folder name, with the tree's MACs as ports; bad folders are refused
// with the folder named.
func TestCaptureInventoryAndErrors(t *testing.T) {
	dir := captureDir(t, "hpe-dl380a-gen11-ilo6")
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1), Captures: []string{dir}})
	inv := s.Inventory()
	if len(inv) != 2 || inv[1].Name != "hpe-dl380a-gen11-ilo6" {
		t.Fatalf("inventory %+v", inv)
	}
	n := inv[1]
	// Systems/1/EthernetInterfaces/{77,78} MACAddress in the tree.
	if len(n.Ports) != 2 || n.Ports[0].Address != "58:a2:e1:03:96:f2" || n.Ports[1].Address != "58:a2:e1:03:96:f3" {
		t.Errorf("ports %+v", n.Ports)
	}
	if n.Properties["memory_mb"] != 512*1024 || !strings.Contains(n.Properties["capabilities"].(string), "boot_mode:uefi") {
		t.Errorf("properties %+v", n.Properties)
	}
	for _, tc := range []struct {
		dirs []string
		want string
	}{
		{[]string{t.TempDir()}, "no service root"},
		{[]string{""}, "empty directory name"},
		{[]string{dir, dir}, "already exists"},
	} {
		if _, err := sim.New(sim.Options{Captures: tc.dirs, DiskSize: 1 << 20}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Captures %v: %v, want %q", tc.dirs, err, tc.want)
		}
	}
}
