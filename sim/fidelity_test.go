package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
)

// TestRIBCLTransportAndModes: RIBCL answers chunked with Connection: close
// (python-hpilo needs Transfer-Encoding), and the hardware option makes
// /ribcl disabled, absent, failing or hanging.
func TestRIBCLTransportAndModes(t *testing.T) {
	modes := map[string]string{"gen10-1": "disabled", "gen10-2": "absent", "gen10-3": "error", "gen10-4": "hang", "gen12-1": "enabled"}
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 5, sim.Gen12, 2), Hardware: func(name string, _ sim.Generation, _ int, hw *sim.Hardware) {
		hw.RIBCL = modes[name]
	}})
	c := client(t, s)
	tests := []struct {
		name    string
		code    int
		body    string
		chunked bool
	}{
		{"gen10-0", 200, "ProLiant DL360 Gen10", true},
		{"gen10-1", 200, "RIBCLI is disabled", true},
		{"gen10-2", 404, "Not Found", false},
		{"gen10-3", 500, "Internal Server Error", false},
		{"gen12-0", 404, "Not Found", false},
		{"gen12-1", 200, "DL360 Gen12", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := s.ServerByName(tc.name)
			resp, err := c.Post(srv.URL()+"/ribcl", "", strings.NewReader(ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_PRODUCT_NAME />")))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, tc.code, tc.body)
			}
			chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
			if chunked != tc.chunked || tc.chunked && !resp.Close {
				t.Fatalf("Transfer-Encoding %v, Connection close %v; want chunked %v and close", resp.TransferEncoding, resp.Close, tc.chunked)
			}
		})
	}
	t.Run("gen10-4 hangs", func(t *testing.T) {
		srv, _ := s.ServerByName("gen10-4")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/ribcl", strings.NewReader(ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_PRODUCT_NAME />")))
		if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hanging /ribcl: %v, want a deadline error", err)
		}
		// Redfish still answers.
		if resp, _ := do(t, c, "GET", srv.URL()+"/redfish/v1/", "", ""); resp.StatusCode != 200 {
			t.Fatalf("Redfish root on a RIBCL-hanging iLO: %d", resp.StatusCode)
		}
	})
}

// TestRedfishLinksResolve follows every @odata.id from the service root on
// each Redfish generation: none may lead to a 404 (sushy and redfishtool
// follow them).
func TestRedfishLinksResolve(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1)})
	c := client(t, s)
	for _, srv := range s.Servers() {
		t.Run(srv.Name(), func(t *testing.T) {
			resp, body := do(t, c, "GET", srv.URL()+"/redfish", "", "")
			if resp.StatusCode != 200 || !strings.Contains(body, `"v1":"/redfish/v1/"`) {
				t.Fatalf("GET /redfish: %d %s", resp.StatusCode, body)
			}
			resp, _ = login(t, c, srv, srv.Password())
			tok := resp.Header.Get("X-Auth-Token")
			seen := map[string]bool{}
			queue := []string{"/redfish/v1/"}
			for len(queue) > 0 && len(seen) < 400 {
				u := queue[0]
				queue = queue[1:]
				key := strings.TrimSuffix(strings.ToLower(u), "/")
				if seen[key] {
					continue
				}
				seen[key] = true
				resp, body := do(t, c, "GET", srv.URL()+u, tok, "")
				if resp.StatusCode != 200 {
					t.Errorf("GET %s: %d %.200s", u, resp.StatusCode, body)
					continue
				}
				var v any
				if err := json.Unmarshal([]byte(body), &v); err != nil {
					t.Errorf("GET %s: not JSON: %v", u, err)
					continue
				}
				walkLinks(v, func(l string) {
					if strings.HasPrefix(l, "/redfish/v1") && !strings.Contains(l, "#") && !strings.Contains(strings.ToLower(l), "/actions/") {
						queue = append(queue, l)
					}
				})
			}
			if len(seen) < 40 {
				t.Fatalf("only %d resources reached", len(seen))
			}
		})
	}
}

func walkLinks(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "@odata.id" {
				fn(s)
				continue
			}
			walkLinks(e, fn)
		}
	case []any:
		for _, e := range x {
			walkLinks(e, fn)
		}
	}
}

// TestRedfishFidelity checks the details independent clients trip over.
func TestRedfishFidelity(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1),
		Hardware: func(name string, _ sim.Generation, _ int, hw *sim.Hardware) {
			if name == "gen10-0" {
				hw.NICs[1].Status, hw.NICs[2].Status = "null", "offline"
				hw.UnconfiguredDisksGB = []int{1200}
				hw.AssetTag = "rack7-u12"
			}
		}})
	c := client(t, s)
	tok := map[string]string{}
	for _, srv := range s.Servers() {
		resp, _ := login(t, c, srv, srv.Password())
		tok[srv.Name()] = resp.Header.Get("X-Auth-Token")
	}
	get := func(name, path string) map[string]any {
		t.Helper()
		srv, _ := s.ServerByName(name)
		resp, body := do(t, c, "GET", srv.URL()+"/redfish/v1"+path, tok[name], "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s GET %s: %d %s", name, path, resp.StatusCode, body)
		}
		return getJSON(t, body)
	}
	send := func(name, method, path, body string) int {
		t.Helper()
		srv, _ := s.ServerByName(name)
		resp, _ := do(t, c, method, srv.URL()+"/redfish/v1"+path, tok[name], body)
		return resp.StatusCode
	}
	for _, name := range []string{"gen9-0", "gen10-0", "gen11-0", "gen12-0"} {
		if ss := get(name, "/SessionService/"); ss["Name"] == nil || ss["Id"] != "SessionService" {
			t.Errorf("%s SessionService without Name: %v", name, ss)
		}
		us := get(name, "/UpdateService/")
		acts, _ := us["Actions"].(map[string]any)
		if us["Name"] == nil || acts["#UpdateService.SimpleUpdate"] == nil || us["FirmwareInventory"] == nil {
			t.Errorf("%s UpdateService lacks Name, SimpleUpdate or FirmwareInventory: %v", name, us)
		}
		if fw := get(name, "/UpdateService/FirmwareInventory/"); fw["Members@odata.count"].(float64) < 2 {
			t.Errorf("%s FirmwareInventory: %v", name, fw)
		}
		if _, ok := get(name, "/Systems/1/")["AssetTag"]; !ok {
			t.Errorf("%s Systems/1 has no AssetTag", name)
		}
		if im := get(name, "/Managers/1/VirtualMedia/2/")["Image"]; im != "" {
			t.Errorf("%s empty CD Image = %#v, want \"\"", name, im)
		}
	}
	// iLO 4 has no graceful reset types.
	rt := get("gen9-0", "/Systems/1/")["Actions"].(map[string]any)["#ComputerSystem.Reset"].(map[string]any)["ResetType@Redfish.AllowableValues"]
	if strings.Contains(strings.Join(toStrings(rt), ","), "Graceful") {
		t.Errorf("gen9 reset types %v include Graceful*", rt)
	}
	s.Server(0).PowerOn()
	if code := send("gen9-0", "POST", "/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"GracefulShutdown"}`); code != 400 {
		t.Errorf("gen9 GracefulShutdown: %d, want 400", code)
	}
	// AssetTag, PATCHable.
	if v := get("gen10-0", "/Systems/1/")["AssetTag"]; v != "rack7-u12" {
		t.Errorf("AssetTag %v", v)
	}
	if code := send("gen10-0", "PATCH", "/Systems/1/", `{"AssetTag":"new-tag"}`); code != 200 || get("gen10-0", "/Systems/1/")["AssetTag"] != "new-tag" {
		t.Errorf("PATCH AssetTag: %d", code)
	}
	// NIC states and unconfigured disks.
	for i, want := range []string{`{"Health":"OK","State":"Enabled"}`, `{"Health":null,"State":null}`, `{"Health":null,"State":"UnavailableOffline"}`} {
		st, _ := json.Marshal(get("gen10-0", "/Systems/1/EthernetInterfaces/"+string(rune('1'+i))+"/")["Status"])
		if string(st) != want {
			t.Errorf("NIC %d Status %s, want %s", i+1, st, want)
		}
	}
	if n := get("gen10-0", "/Systems/1/SmartStorage/ArrayControllers/0/UnconfiguredDrives/")["Members@odata.count"]; n != 1.0 {
		t.Errorf("unconfigured drives: %v", n)
	}
	if gb := get("gen10-0", "/Systems/1/SmartStorage/ArrayControllers/0/UnconfiguredDrives/0/")["CapacityGB"]; gb != 1200.0 {
		t.Errorf("unconfigured drive CapacityGB %v", gb)
	}
	// UEFI-only iLO 6/7: no BootMode attribute, UefiClass 3; PATCHing an
	// attribute the BIOS does not have is refused.
	for _, name := range []string{"gen11-0", "gen12-0"} {
		attrs := get(name, "/Systems/1/bios/")["Attributes"].(map[string]any)
		if _, ok := attrs["BootMode"]; ok {
			t.Errorf("%s BIOS has BootMode", name)
		}
		if c := get(name, "/Systems/1/")["Oem"].(map[string]any)["Hpe"].(map[string]any)["Bios"].(map[string]any)["UefiClass"]; c != 3.0 {
			t.Errorf("%s UefiClass %v", name, c)
		}
		if code := send(name, "PATCH", "/Systems/1/bios/settings/", `{"Attributes":{"BootMode":"Uefi","UefiOptimizedBoot":"Enabled"}}`); code != 400 {
			t.Errorf("%s PATCH BootMode: %d, want 400", name, code)
		}
	}
	if _, ok := get("gen10-0", "/Systems/1/bios/")["Attributes"].(map[string]any)["BootMode"]; !ok {
		t.Errorf("gen10 BIOS lost BootMode")
	}
	// Ending the session on the iLO side (admin endpoint) gives 401 next.
	au, err := s.StartAdmin("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("DELETE", au+"/servers/gen11-0/sessions", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ended":1`) {
		t.Fatalf("admin DELETE sessions: %d %s", resp.StatusCode, b)
	}
	if code := send("gen11-0", "GET", "/Systems/1/", ""); code != 401 {
		t.Fatalf("after the admin ended the session: %d, want 401", code)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// TestRIBCLMemoryUnits: a Gen8 reports memory in MB, a Gen9 in GB.
func TestRIBCLMemoryUnits(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1, sim.Gen9, 1)})
	c := client(t, s)
	for _, tc := range []struct {
		srv  *sim.Server
		want string
	}{{s.Server(0), `TOTAL_MEMORY_SIZE VALUE="16384 MB"`}, {s.Server(1), `TOTAL_MEMORY_SIZE VALUE="32 GB"`}} {
		_, body := post(t, c, tc.srv.URL()+"/ribcl", ribcl(tc.srv.Username(), tc.srv.Password(), "SERVER_INFO", "read", "<GET_EMBEDDED_HEALTH />"))
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s: no %s in the health data", tc.srv.Name(), tc.want)
		}
	}
}

// TestLatencyProfile: with Faults.Profile a new connection pays the
// handshake and each request its cost; without it nothing is added.
func TestLatencyProfile(t *testing.T) {
	p := sim.LatencyProfile{Handshake: 80 * time.Millisecond, Login: 120 * time.Millisecond, Get: 40 * time.Millisecond,
		Write: 60 * time.Millisecond, RIBCL: 100 * time.Millisecond}
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1), LatencyProfiles: map[sim.Generation]sim.LatencyProfile{sim.Gen10: p}})
	srv := s.Server(0)
	c := client(t, s) // no keep-alive: every request is a new handshake
	timed := func(fn func()) time.Duration {
		start := time.Now()
		fn()
		return time.Since(start)
	}
	if err := srv.SetFaults(sim.Faults{Profile: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func()
		min  time.Duration
	}{
		{"GET root: handshake + GET", func() { do(t, c, "GET", srv.URL()+"/redfish/v1/", "", "") }, p.Handshake + p.Get},
		{"login: handshake + login", func() { login(t, c, srv, srv.Password()) }, p.Handshake + p.Login},
		{"RIBCL: handshake + document", func() {
			post(t, c, srv.URL()+"/ribcl", ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_PRODUCT_NAME />"))
		}, p.Handshake + p.RIBCL},
	}
	for _, tc := range tests {
		if d := timed(tc.fn); d < tc.min {
			t.Errorf("%s took %s, want at least %s", tc.name, d, tc.min)
		}
	}
	if err := srv.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if d := timed(func() { login(t, c, srv, srv.Password()) }); d >= p.Handshake+p.Login {
		t.Errorf("profile off: login took %s", d)
	}
}

// TestBootSourceOverrideMode: read-only on iLO 4/5; iLO 6/7 take "UEFI".
func TestBootSourceOverrideMode(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1)})
	c := client(t, s)
	for _, tc := range []struct {
		srv  *sim.Server
		body string
		want int
	}{
		{s.Server(0), `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}`, 400},
		{s.Server(1), `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}`, 200},
		{s.Server(2), `{"Boot":{"BootSourceOverrideMode":"Legacy"}}`, 400},
	} {
		resp, _ := login(t, c, tc.srv, tc.srv.Password())
		if resp, body := do(t, c, "PATCH", tc.srv.URL()+"/redfish/v1/Systems/1/", resp.Header.Get("X-Auth-Token"), tc.body); resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.srv.Name(), tc.body, resp.StatusCode, body, tc.want)
		}
	}
	if st := s.Server(1).State(); st.OneTimeBoot != "CDROM" {
		t.Errorf("gen11 one-time boot %q after the PATCH", st.OneTimeBoot)
	}
}
