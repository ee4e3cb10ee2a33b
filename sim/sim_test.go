package sim_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
)

func newSim(t testing.TB, opts sim.Options) *sim.Sim {
	t.Helper()
	if opts.DiskSize == 0 {
		opts.DiskSize = 1 << 20
	}
	if opts.Password == "" {
		opts.Password = "sim-password"
	}
	s, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func nodes(specs ...any) []sim.NodeSpec {
	var out []sim.NodeSpec
	for i := 0; i+1 < len(specs); i += 2 {
		out = append(out, sim.NodeSpec{Generation: specs[i].(sim.Generation), Count: specs[i+1].(int)})
	}
	return out
}

// client trusts only the simulator's CA.
func client(t testing.TB, s *sim.Sim) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("bad CA PEM")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

func ribcl(user, pw, section, mode, cmd string) string {
	return `<RIBCL VERSION="2.0"><LOGIN USER_LOGIN="` + user + `" PASSWORD="` + pw + `"><` + section + ` MODE="` + mode + `">` + cmd + `</` + section + `></LOGIN></RIBCL>`
}

func post(t testing.TB, c *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func do(t testing.TB, c *http.Client, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func login(t testing.TB, c *http.Client, srv *sim.Server, pw string) (*http.Response, string) {
	t.Helper()
	return do(t, c, "POST", srv.URL()+"/redfish/v1/SessionService/Sessions/", "",
		`{"UserName":"`+srv.Username()+`","Password":"`+pw+`"}`)
}

func TestProtocolsPerGeneration(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1, sim.Gen9, 1, sim.Gen10, 1, sim.Gen11, 1, sim.Gen12, 1)})
	c := client(t, s)
	tests := []struct {
		name               string
		ribclCode          int    // HTTP status of /ribcl
		ribclStatus        string // in the answer to GET_PRODUCT_NAME
		redfish, rest      int    // HTTP status of the service root / Systems/1
		model, redfishOEMs string
	}{
		{"gen8-0", 200, `STATUS="0x0000"`, 404, 404, "ProLiant DL380p Gen8", ""},
		{"gen9-0", 200, `STATUS="0x0000"`, 200, 200, "ProLiant DL380 Gen9", `"Hp"`},
		{"gen10-0", 200, `STATUS="0x0000"`, 200, 404, "ProLiant DL360 Gen10", `"Hpe"`},
		{"gen11-0", 200, `STATUS="0x0000"`, 200, 404, "ProLiant DL360 Gen11", `"Hpe"`},       // iLO 6: RIBCL present (optional)
		{"gen12-0", 404, `Not Found`, 200, 404, "HPE ProLiant Compute DL360 Gen12", `"Hpe"`}, // iLO 7: no RIBCL
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, ok := s.ServerByName(tc.name)
			if !ok {
				t.Fatalf("no server %s", tc.name)
			}
			code, body := post(t, c, srv.URL()+"/ribcl", ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_PRODUCT_NAME />"))
			if code != tc.ribclCode || !strings.Contains(body, tc.ribclStatus) {
				t.Errorf("RIBCL: %d %s", code, body)
			}
			if tc.ribclStatus == `STATUS="0x0000"` && !strings.Contains(body, tc.model) {
				t.Errorf("RIBCL product name missing: %s", body)
			}
			resp, _ := do(t, c, "GET", srv.URL()+"/redfish/v1/", "", "")
			if resp.StatusCode != tc.redfish {
				t.Errorf("GET /redfish/v1/ = %d", resp.StatusCode)
			}
			if tc.redfish == 200 {
				req, _ := http.NewRequest("GET", srv.URL()+"/redfish/v1/Systems/1", nil)
				req.SetBasicAuth(srv.Username(), srv.Password())
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), tc.model) || !strings.Contains(string(b), tc.redfishOEMs) {
					t.Errorf("Systems/1 lacks model or OEM %s: %s", tc.redfishOEMs, b)
				}
			}
			req, _ := http.NewRequest("GET", srv.URL()+"/rest/v1/Systems/1", strings.NewReader("null"))
			req.Header.Set("Authorization", "BASIC "+basic(srv.Username(), srv.Password()))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.rest {
				t.Errorf("GET /rest/v1/Systems/1 = %d, want %d", resp.StatusCode, tc.rest)
			}
		})
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestRIBCLLoginAndErrors(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1)})
	srv := s.Server(0)
	c := client(t, s)
	tests := []struct {
		name, body, want string
	}{
		{"bad password", ribcl(srv.Username(), "wrong", "SERVER_INFO", "read", "<GET_PRODUCT_NAME />"), `STATUS="0x005F"`},
		{"unknown command", ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_FOO />"), "syntax error"},
		{"write command in read mode", ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", `<SET_HOST_POWER HOST_POWER="Yes" />`), `STATUS="0x0023"`},
		{"bad vm device", ribcl(srv.Username(), srv.Password(), "RIB_INFO", "read", `<GET_VM_STATUS DEVICE="TAPE" />`), `STATUS="0x0035"`},
		{"not xml", "<<<", "Syntax error"},
		{"short password", ribcl(srv.Username(), srv.Password(), "USER_INFO", "write", `<MOD_USER USER_LOGIN="`+srv.Username()+`"><PASSWORD VALUE="abc"/></MOD_USER>`), `STATUS="0x0004"`},
		{"bad licence", ribcl(srv.Username(), srv.Password(), "RIB_INFO", "write", `<LICENSE><ACTIVATE KEY="x"/></LICENSE>`), `STATUS="0x002E"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, c, srv.URL()+"/ribcl", tc.body)
			if code != 200 || !strings.Contains(body, tc.want) {
				t.Errorf("got %d %s, want %s", code, body, tc.want)
			}
			if st := srv.State(); st.Power != "OFF" || st.Users[0].Password != "sim-password" || st.Licenses[0].Key != "" {
				t.Errorf("state changed by a refused request: %+v", st)
			}
		})
	}
	// Every document of the answer stream parses on its own.
	_, body := post(t, c, srv.URL()+"/ribcl", ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "read", "<GET_EMBEDDED_HEALTH />"))
	docs := strings.Split(body, "<?xml")
	if len(docs) < 3 {
		t.Fatalf("want a multi-document stream, got %d parts", len(docs))
	}
}

func TestRedfishSessionsAndLimit(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1)})
	srv := s.Server(0)
	c := client(t, s)
	if err := srv.SetFaults(sim.Faults{SessionLimit: 2}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := login(t, c, srv, "wrong"); resp.StatusCode != 401 {
		t.Fatalf("bad password login = %d", resp.StatusCode)
	}
	var tokens, locs []string
	for i := 0; i < 2; i++ {
		resp, _ := login(t, c, srv, srv.Password())
		if resp.StatusCode != 201 || resp.Header.Get("X-Auth-Token") == "" || resp.Header.Get("Location") == "" {
			t.Fatalf("login %d = %d %v", i, resp.StatusCode, resp.Header)
		}
		tokens = append(tokens, resp.Header.Get("X-Auth-Token"))
		locs = append(locs, resp.Header.Get("Location"))
	}
	resp, body := login(t, c, srv, srv.Password())
	if resp.StatusCode != 503 || !strings.Contains(body, "SessionLimitExceeded") {
		t.Fatalf("third login = %d %s, want 503 SessionLimitExceeded", resp.StatusCode, body)
	}
	if resp, _ := do(t, c, "GET", srv.URL()+"/redfish/v1/Systems/1/", tokens[0], ""); resp.StatusCode != 200 {
		t.Errorf("GET with token = %d", resp.StatusCode)
	}
	if resp, _ := do(t, c, "DELETE", srv.URL()+locs[0], tokens[0], ""); resp.StatusCode != 200 {
		t.Errorf("logout = %d", resp.StatusCode)
	}
	if n := srv.Sessions(); n != 1 {
		t.Errorf("sessions after logout = %d", n)
	}
	if resp, _ := do(t, c, "GET", srv.URL()+"/redfish/v1/Systems/1/", tokens[0], ""); resp.StatusCode != 401 {
		t.Errorf("GET with a logged-out token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := login(t, c, srv, srv.Password()); resp.StatusCode != 201 {
		t.Errorf("login after logout = %d", resp.StatusCode)
	}
}

func TestRedfishQuirks(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen10, 1)})
	c := client(t, s)
	img := imageServer(t)
	gen9, gen10 := s.Server(0), s.Server(1)
	tok := func(srv *sim.Server) string {
		resp, _ := login(t, c, srv, srv.Password())
		return resp.Header.Get("X-Auth-Token")
	}
	t9, t10 := tok(gen9), tok(gen10)
	tests := []struct {
		name         string
		srv          *sim.Server
		token        string
		method, path string
		body         string
		status       int
		check        func(st sim.State) bool
	}{
		{"boot override with mode refused", gen10, t10, "PATCH", "/redfish/v1/Systems/1/", `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}`, 400,
			func(st sim.State) bool { return st.OneTimeBoot == "Normal" }},
		{"minimal boot override", gen10, t10, "PATCH", "/redfish/v1/systems/1", `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Once"}}`, 200,
			func(st sim.State) bool { return st.OneTimeBoot == "NETWORK" }},
		{"iLO 4 vmedia refuses Inserted", gen9, t9, "PATCH", "/redfish/v1/Managers/1/VirtualMedia/2/", `{"Image":"` + img.URL + `/images/a.iso","Inserted":true}`, 400,
			func(st sim.State) bool { return !st.Media["CDROM"].Inserted }},
		{"iLO 4 vmedia Image only", gen9, t9, "PATCH", "/redfish/v1/Managers/1/VirtualMedia/2/", `{"Image":"` + img.URL + `/images/a.iso"}`, 200,
			func(st sim.State) bool { return st.Media["CDROM"].Inserted }},
		{"insert unreachable URL", gen10, t10, "POST", "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia/", `{"Image":"http://127.0.0.1:1/x.iso"}`, 400,
			func(st sim.State) bool { return !st.Media["CDROM"].Inserted }},
		{"insert via action", gen10, t10, "POST", "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia/", `{"Image":"` + img.URL + `/images/b.iso"}`, 200,
			func(st sim.State) bool { return st.Media["CDROM"].URL == img.URL+"/images/b.iso" }},
		{"eject via OEM action", gen10, t10, "POST", "/redfish/v1/Managers/1/VirtualMedia/2/Actions/Oem/Hpe/HpeiLOVirtualMedia.EjectVirtualMedia/", `{}`, 200,
			func(st sim.State) bool { return !st.Media["CDROM"].Inserted }},
		{"eject when empty", gen10, t10, "POST", "/redfish/v1/Managers/1/VirtualMedia/2/Actions/VirtualMedia.EjectMedia/", ``, 400, nil},
		{"power on", gen10, t10, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"On"}`, 200,
			func(st sim.State) bool { return st.Power == "ON" }},
		{"power on twice", gen10, t10, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset/", `{"ResetType":"On"}`, 400, nil},
		{"pending boot mode", gen10, t10, "PATCH", "/redfish/v1/systems/1/bios/settings/", `{"Attributes":{"BootMode":"LegacyBios"}}`, 200,
			func(st sim.State) bool { return st.PendingBootMode == "LEGACY" && st.BootMode == "UEFI" }},
		{"bios is read-only", gen10, t10, "PATCH", "/redfish/v1/systems/1/bios/", `{"Attributes":{"BootMode":"Uefi"}}`, 404, nil},
		{"no token", gen10, "", "GET", "/redfish/v1/Systems/1/", ``, 401, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, tc.method, tc.srv.URL()+tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.status)
			}
			if tc.check != nil && !tc.check(tc.srv.State()) {
				t.Errorf("state after %s: %+v", tc.name, tc.srv.State())
			}
		})
	}
}

func TestFaults(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1), Seed: 7})
	srv := s.Server(0)
	c := client(t, s)
	get := func() (int, error) {
		req, _ := http.NewRequest("GET", srv.URL()+"/redfish/v1/", nil)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	t.Run("error rate 503", func(t *testing.T) {
		_ = srv.SetFaults(sim.Faults{ErrorRate: 0.5, ErrorKinds: []string{"503"}})
		n503 := 0
		for i := 0; i < 200; i++ {
			code, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if code == 503 {
				n503++
			} else if code != 200 {
				t.Fatalf("unexpected %d", code)
			}
		}
		if n503 < 60 || n503 > 140 {
			t.Errorf("%d of 200 requests got 503 at rate 0.5", n503)
		}
	})
	t.Run("connection reset", func(t *testing.T) {
		_ = srv.SetFaults(sim.Faults{ErrorRate: 1, ErrorKinds: []string{"reset"}})
		if _, err := get(); err == nil {
			t.Fatal("request succeeded through a reset fault")
		}
	})
	t.Run("latency", func(t *testing.T) {
		_ = srv.SetFaults(sim.Faults{Latency: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL()+"/redfish/v1/", nil)
		_, err := c.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("want the client's deadline to expire first, got %v", err)
		}
	})
	t.Run("hang until cleared", func(t *testing.T) {
		_ = srv.SetFaults(sim.Faults{Hang: true})
		before := srv.Requests()
		done := make(chan int, 1)
		go func() {
			code, _ := get()
			done <- code
		}()
		// The request must still be pending while the fault is set.
		deadline := time.Now().Add(5 * time.Second)
		for srv.Requests() == before {
			if time.Now().After(deadline) {
				t.Fatal("request never reached the server")
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case code := <-done:
			t.Fatalf("hung request returned %d", code)
		default:
		}
		_ = srv.SetFaults(sim.Faults{})
		select {
		case code := <-done:
			if code != 200 {
				t.Errorf("released request = %d", code)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("request still hanging after the fault was cleared")
		}
	})
	t.Run("busy then success", func(t *testing.T) {
		_ = srv.SetFaults(sim.Faults{Busy: 2})
		resp, _ := login(t, c, srv, srv.Password())
		tok := resp.Header.Get("X-Auth-Token")
		for i, want := range []int{400, 400, 200} {
			resp, body := do(t, c, "PATCH", srv.URL()+"/redfish/v1/Systems/1", tok, `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`)
			if resp.StatusCode != want {
				t.Fatalf("attempt %d = %d %s, want %d", i, resp.StatusCode, body, want)
			}
			if want == 400 && !strings.Contains(body, "UnableToModifyDuringSystemPOST") {
				t.Errorf("busy body %s", body)
			}
		}
		if srv.State().OneTimeBoot != "CDROM" {
			t.Errorf("override not applied after busy")
		}
	})
}

func TestBootHook(t *testing.T) {
	type event struct {
		ev  sim.BootEvent
		ctx context.Context
	}
	events := make(chan event, 8)
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1), BootHook: func(ctx context.Context, ev sim.BootEvent) {
		events <- event{ev, ctx}
		<-ctx.Done()
	}})
	srv := s.Server(0)
	srv.Update(func(st *sim.State) { st.OneTimeBoot = "NETWORK"; st.PendingBootMode = "LEGACY" })
	srv.PowerOn()
	first := <-events
	if first.ev.Server != "gen10-0" || first.ev.Generation != "gen10" || first.ev.BootDevice != "NETWORK" ||
		first.ev.BootMode != "LEGACY" || len(first.ev.MACs) != 4 || first.ev.DiskPath != srv.DiskPath() {
		t.Errorf("first boot event %+v", first.ev)
	}
	srv.Reset()
	second := <-events
	if first.ctx.Err() == nil {
		t.Error("reset did not cancel the previous boot's context")
	}
	if second.ev.BootDevice != "CDROM" && second.ev.BootDevice != "HDD" {
		t.Errorf("second boot device %s (one-time boot not consumed?)", second.ev.BootDevice)
	}
	// The "OS" shuts the server down.
	if err := s.PowerOff("gen10-0"); err != nil {
		t.Fatal(err)
	}
	<-second.ctx.Done()
	if p := srv.State().Power; p != "OFF" {
		t.Errorf("power after OS shutdown = %s", p)
	}
	srv.PowerOn()
	third := <-events
	s.Close()
	if third.ctx.Err() == nil {
		t.Error("Close did not cancel the running hook")
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := sim.Options{Nodes: nodes(sim.Gen8, 1, sim.Gen10, 1), StateDir: dir, DiskSize: 1 << 20}
	s1, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := s1.Server(1)
	srv.PowerOn()
	srv.Update(func(st *sim.State) {
		st.PendingBootMode = "LEGACY"
		st.Media["CDROM"] = sim.Media{URL: "http://127.0.0.1/x.iso", Inserted: true, BootOption: "BOOT_ONCE"}
	})
	want := srv.State()
	pw, port, fp := srv.Password(), srv.Port(), s1.CertFingerprint()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got := s2.Server(1).State()
	if got.Power != want.Power || got.PendingBootMode != "LEGACY" || got.Media["CDROM"] != want.Media["CDROM"] || got.BootCount != want.BootCount {
		t.Errorf("state after restart %+v, want %+v", got, want)
	}
	if s2.Server(1).Password() != pw || s2.Server(1).Port() != port || s2.CertFingerprint() != fp {
		t.Errorf("identity changed: password/port/fingerprint")
	}
}

func TestAdminEndpoint(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 1)})
	u, err := s.StartAdmin("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartAdmin("0.0.0.0:0"); err == nil {
		t.Error("admin endpoint accepted a non-loopback address")
	}
	req, _ := http.NewRequest("PUT", u+"/servers/gen8-0/faults", strings.NewReader(`{"latency":"5ms","error_rate":0.25,"busy":1}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT faults = %d", resp.StatusCode)
	}
	if f := s.Server(0).Faults(); f.Latency != 5*time.Millisecond || f.ErrorRate != 0.25 || f.Busy != 1 {
		t.Errorf("faults %+v", f)
	}
	req, _ = http.NewRequest("PUT", u+"/servers/gen8-0/faults", strings.NewReader(`{"error_rate":2}`))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("invalid faults accepted: %d", resp.StatusCode)
	}
	resp, err = http.Post(u+"/servers/gen8-0/power", "application/json", strings.NewReader(`{"action":"on"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.Server(0).State().Power != "ON" {
		t.Error("power action not applied")
	}
	resp, err = http.Get(u + "/servers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(b, []byte(s.Server(0).Password())) {
		t.Error("admin endpoint shows a password")
	}
	var list []sim.AdminServer
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 || list[0].State.Power != "ON" {
		t.Errorf("GET /servers = %s (%v)", b, err)
	}
}

func TestRunCLIWritesInventoryThenReady(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- sim.RunCLI(ctx, sim.CLIConfig{Options: sim.Options{Nodes: nodes(sim.Gen9, 1, sim.Gen11, 2), DiskSize: 1 << 20, DeployISO: "http://127.0.0.1/deploy.iso"},
			Inventory: dir + "/inv.json", AdminAddr: "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "ready\n") {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("output ended before ready: %q %v", out.String(), err)
		}
		out.Write(buf[:n])
	}
	var inv []sim.Node
	b, err := os.ReadFile(dir + "/inv.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &inv); err != nil || len(inv) != 3 {
		t.Fatalf("inventory %s: %v", b, err)
	}
	for _, n := range inv {
		if n.Driver != "agent_ilo" || n.DriverInfo["ilo_address"] != "127.0.0.1" || n.DriverInfo["ilo_verify_ca"] == "" ||
			n.DriverInfo["ilo_deploy_iso"] != "http://127.0.0.1/deploy.iso" || len(n.Ports) != 4 {
			t.Errorf("inventory node %+v", n)
		}
		if strings.Contains(out.String(), n.DriverInfo["ilo_password"].(string)) {
			t.Error("password printed on stdout")
		}
	}
	if !strings.Contains(out.String(), "fingerprint (SHA-256): ") {
		t.Errorf("no fingerprint in %q", out.String())
	}
	go io.Copy(io.Discard, pr)
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("RunCLI: %v", err)
	}
}

func TestParseNodesAndFaults(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"gen8=2,gen9=1,gen10=2,gen11=1", ""},
		{"gen7=1", "unknown generation"},
		{"gen8", "GEN=COUNT"},
		{"gen8=x", "non-negative"},
		{"gen8=1,gen8=2", "twice"},
		{"", "no servers"},
	}
	for _, tc := range tests {
		_, err := sim.ParseNodes(tc.in)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseNodes(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
	name, f, err := sim.ParseFaultSpec("gen10-0:latency=2s,error-rate=0.5,error-kinds=503+reset,hang,busy=3,session-limit=2")
	if err != nil || name != "gen10-0" || f.Latency != 2*time.Second || f.ErrorRate != 0.5 || len(f.ErrorKinds) != 2 || !f.Hang || f.Busy != 3 || f.SessionLimit != 2 {
		t.Errorf("ParseFaultSpec = %s %+v %v", name, f, err)
	}
	for _, bad := range []string{"nocolon", "gen8-0:error-rate=3", "gen8-0:colour=red", "gen8-0:error-kinds=404"} {
		if _, _, err := sim.ParseFaultSpec(bad); err == nil {
			t.Errorf("ParseFaultSpec(%q) accepted", bad)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen8, 2, sim.Gen10, 2)})
	c := client(t, s)
	var wg sync.WaitGroup
	for _, srv := range s.Servers() {
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Post(srv.URL()+"/ribcl", "", strings.NewReader(ribcl(srv.Username(), srv.Password(), "SERVER_INFO", "write", `<PRESS_PWR_BTN />`)))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
	}
	wg.Wait()
	for _, srv := range s.Servers() {
		if st := srv.State(); st.Power != "OFF" || st.BootCount != 4 {
			t.Errorf("%s after 8 presses: power %s boots %d, want OFF and 4", srv.Name(), st.Power, st.BootCount)
		}
	}
}

func TestHardwareFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := dir + "/hw.json"
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fn, err := sim.LoadHardwareFile(write(`{"gen10": {"memory_mb": 262144}, "gen10-1": {"logical_drives_gb": [], "gpus": [{"vendor": "NVIDIA", "name": "A100"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 2), Hardware: fn})
	h0, h1 := s.Server(0).Hardware(), s.Server(1).Hardware()
	if h0.MemoryMB != 262144 || h1.MemoryMB != 262144 || len(h0.LogicalDrivesGB) != 1 || h1.LocalGB() != 0 || len(h1.GPUs) != 1 {
		t.Errorf("overrides not applied: %+v / %+v", h0, h1)
	}
	if h0.Model != "ProLiant DL360 Gen10" || len(h0.NICs) != 4 {
		t.Errorf("defaults lost: %+v", h0)
	}
	if _, err := sim.LoadHardwareFile(write(`{"gen10": {"memory": 1}}`)); err == nil {
		t.Error("unknown field accepted")
	}
	// The licence: Advanced by default, Standard by generation, and a
	// server's own override keeps its generation's licence.
	fn, err = sim.LoadHardwareFile(write(`{"gen9": {"license": "iLO Standard"}, "gen9-1": {"memory_mb": 131072}}`))
	if err != nil {
		t.Fatal(err)
	}
	s = newSim(t, sim.Options{Nodes: nodes(sim.Gen9, 2, sim.Gen10, 1), Hardware: fn})
	for i, want := range []string{"iLO Standard", "iLO Standard", sim.DefaultLicense} {
		if l := s.Server(i).State().Licenses; len(l) != 1 || l[0].Type != want {
			t.Errorf("%s licences %+v, want %s", s.Server(i).Name(), l, want)
		}
	}
	fn, _ = sim.LoadHardwareFile(write(`{"gen8": {"memory_mb": 1000}}`))
	if _, err := sim.New(sim.Options{Nodes: nodes(sim.Gen8, 1), Hardware: fn, DiskSize: 1 << 20}); err == nil || !strings.Contains(err.Error(), "memory_mb") {
		t.Errorf("invalid memory accepted: %v", err)
	}
}
