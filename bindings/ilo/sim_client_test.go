package ilo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

// simLifecycle runs against the product simulator: power cycle, pending
// boot mode applied at reset, secure boot (UEFI generations), virtual media.
const simLifecycle = `
local ilo = require("ilo")
local bmc = ilo.connect()
bmc:set_host_power("ON")
assert(bmc:get_host_power_status() == "ON")
bmc:set_host_power("OFF")
assert(bmc:get_host_power_status() == "OFF")
bmc:set_host_power("ON")
local supported = bmc:get_supported_boot_mode()
local cur = bmc:get_current_boot_mode()
local want = (cur == "UEFI") and "LEGACY" or "UEFI"
local ok, err = pcall(function() bmc:set_pending_boot_mode(want) end)
if supported == "legacy bios and uefi" then
  assert(ok, tostring(err))
  assert(bmc:get_pending_boot_mode() == want, bmc:get_pending_boot_mode())
  bmc:reset_server()
  assert(bmc:get_current_boot_mode() == want, "pending boot mode not applied at reset")
  bmc:set_pending_boot_mode("UEFI")
  bmc:reset_server()
  assert(bmc:get_current_boot_mode() == "UEFI")
else
  -- a single-mode server refuses the other mode with the iLO's own error
  assert(not ok and (err.code == "ilo_error" or err.code == "not_supported"), supported .. ": " .. tostring(err))
  assert(bmc:get_pending_boot_mode() == cur)
end
if SECURE then
  bmc:set_secure_boot_mode(true)
  bmc:reset_server()
  assert(bmc:get_secure_boot_mode() == true, "secure boot not on after reset")
  bmc:set_secure_boot_mode(false)
  bmc:reset_server()
  assert(bmc:get_secure_boot_mode() == false)
else
  local ok2, err2 = pcall(function() return bmc:get_secure_boot_mode() end)
  assert(not ok2 and err2.code == "not_supported", tostring(err2))
end
bmc:eject_virtual_media("CDROM")
bmc:insert_virtual_media(IMAGE, "CDROM")
local st = bmc:get_vm_status("CDROM")
assert(st.inserted and st.image_url == IMAGE, st.image_url)
bmc:set_one_time_boot("CDROM")
assert(bmc:get_one_time_boot() == "CDROM", bmc:get_one_time_boot())
bmc:eject_virtual_media("CDROM")
assert(not bmc:get_vm_status("CDROM").inserted)
bmc:eject_virtual_media("CDROM")
local p = bmc:get_essential_properties()
assert(p.properties.memory_mb > 0 and p.properties.cpus > 0, "essential properties")
bmc:set_host_power("OFF")
`

// simNode is server i of s as a node of the store.
func simNode(s *sim.Sim, i int) *moduletest.Node {
	inv := s.Inventory()[i]
	return &moduletest.Node{ID: "uuid-" + inv.Name, NodeName: inv.Name, Drv: inv.Driver, Info: simtest.DriverInfo(s, i), Int: map[string]any{}}
}

func TestAgainstSimulator(t *testing.T) {
	s := simtest.Start(t, "gen8=1,gen9=1,gen10=1,gen11=1")
	img := simtest.ImageServer(t) + "/images/boot.iso"
	m := NewModule()
	for i, srv := range s.Servers() {
		gen := string(srv.Generation())
		t.Run(gen, func(t *testing.T) {
			node := simNode(s, i)
			run := moduletest.NewRun(context.Background(), node)
			L := moduletest.Open(run, m)
			defer L.Close()
			L.SetGlobal("IMAGE", lua.LString(img))
			L.SetGlobal("SECURE", lua.LBool(gen != "gen8"))
			if err := L.DoString(simLifecycle); err != nil {
				t.Fatalf("%v\ncalls: %v", err, run.Calls())
			}
			if n := srv.Sessions(); n > 1 {
				t.Fatalf("%d sessions open, want at most the one shared session", n)
			}
			if n := countEvents(run, "ilo.session_login"); n > 1 {
				t.Fatalf("%d session logins in one run, want at most 1", n)
			}
			st := srv.State()
			if st.Power != "OFF" {
				t.Fatalf("sim state power %s", st.Power)
			}
			for _, e := range run.Events {
				b, _ := json.Marshal(e.Data)
				if strings.Contains(string(b), srv.Password()) {
					t.Fatalf("password in event %s", b)
				}
				expectedRefusal := e.Name == "ilo.set_pending_boot_mode" && e.Data["outcome"] == module.CodeILOError
				if e.Kind == "call" && e.Data["outcome"] != "ok" && e.Data["outcome"] != module.CodeNotSupported && !expectedRefusal {
					t.Errorf("call %s: %v", e.Name, e.Data)
				}
			}
			if p, ok := ProbeFromMap(asMap(node.Int[InternalProbe])); !ok || GenerationOf(p.Model) == 0 {
				t.Fatalf("probe not cached: %v", node.Int)
			}
		})
	}
}

func simRouter(t *testing.T, s *sim.Sim, i int, timeout float64) *Router {
	t.Helper()
	info := simNode(s, i).Info
	info["client_timeout"] = timeout
	o, err := ParseDriverInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Connect(o, Config{})
	if err != nil {
		t.Fatal(err)
	}
	r.Transport().MinBackoff, r.Transport().MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	t.Cleanup(r.Close)
	return r
}

func TestSimulatorFaults(t *testing.T) {
	base := runtime.NumGoroutine()
	s := simtest.Start(t, "gen8=1,gen10=1")
	ctx := context.Background()
	const timeout = 1.0
	limit := time.Duration(timeout*float64(time.Second)) + 700*time.Millisecond
	for i, srv := range s.Servers() {
		gen := string(srv.Generation())
		r := simRouter(t, s, i, timeout)
		if _, err := r.GetProductName(ctx); err != nil { // probe before the faults
			t.Fatalf("%s: %v", gen, err)
		}
		cases := []struct {
			name   string
			faults sim.Faults
			check  func(err error) bool
		}{
			{"latency above client_timeout", sim.Faults{Latency: 3 * time.Second}, func(err error) bool { return luaCode(err) == module.CodeTimeout }},
			{"hang", sim.Faults{Hang: true}, func(err error) bool { return luaCode(err) == module.CodeTimeout }},
			{"always 503", sim.Faults{ErrorRate: 1, ErrorKinds: []string{"503"}}, func(err error) bool { return luaCode(err) == module.CodeTransient }},
			{"connection resets", sim.Faults{ErrorRate: 1, ErrorKinds: []string{"reset"}}, func(err error) bool { return luaCode(err) == module.CodeTransient }},
			{"50% 503", sim.Faults{ErrorRate: 0.5, ErrorKinds: []string{"503"}}, func(err error) bool { return err == nil || luaCode(err) == module.CodeTransient }},
		}
		for _, tc := range cases {
			if err := srv.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := r.GetHostPowerStatus(ctx)
			d := time.Since(start)
			if err := srv.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
			if !tc.check(err) {
				t.Errorf("%s %s: wrong outcome %s: %v", gen, tc.name, luaCode(err), err)
			}
			if d > limit {
				t.Errorf("%s %s: took %s, beyond client_timeout plus retries (%s)", gen, tc.name, d, limit)
			}
		}
		// 50 % 503s: most calls still succeed thanks to the retries.
		if err := srv.SetFaults(sim.Faults{ErrorRate: 0.5, ErrorKinds: []string{"503"}}); err != nil {
			t.Fatal(err)
		}
		okCalls := 0
		for j := 0; j < 6; j++ {
			if _, err := r.GetHostPowerStatus(ctx); err == nil {
				okCalls++
			} else if luaCode(err) != module.CodeTransient {
				t.Errorf("%s 50%% 503: %v", gen, err)
			}
		}
		_ = srv.SetFaults(sim.Faults{})
		if okCalls < 4 {
			t.Errorf("%s: only %d of 6 calls succeeded with 50%% 503s", gen, okCalls)
		}
		// Busy answers are retried.
		_ = srv.SetFaults(sim.Faults{Busy: 2})
		if err := r.SetHostPower(ctx, "ON"); err != nil {
			t.Errorf("%s busy: %v", gen, err)
		}
		_ = srv.SetFaults(sim.Faults{})
		if srv.State().Power != "ON" {
			t.Errorf("%s: power not on after busy retries", gen)
		}
		r.Close() // deletes its session
	}

	// Exhausted session limit on the Redfish server (another client holds
	// the only slot): the session login and the basic-auth fall-back are
	// both refused, so the call ends transient within client_timeout plus
	// retries, leaving no session behind; once the slot is free it works.
	srv := s.Server(1)
	// A login the client gave up on (hang, latency) may still complete on
	// the iLO: such orphans hold slots nobody can delete; count them.
	orphans := srv.Sessions()
	if orphans > 2 {
		t.Fatalf("%d sessions left after the faults were cleared", orphans)
	}
	_ = srv.SetFaults(sim.Faults{SessionLimit: orphans + 1})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body := strings.NewReader(`{"UserName":"` + s.Inventory()[1].DriverInfo["ilo_username"].(string) + `","Password":"` + srv.Password() + `"}`)
	resp, err := hc.Post("https://"+srv.Addr()+"/redfish/v1/SessionService/Sessions/", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if srv.Sessions() != orphans+1 {
		t.Fatalf("holding session not created: %d (%s)", srv.Sessions(), resp.Status)
	}
	r := simRouter(t, s, 1, timeout)
	start := time.Now()
	_, err = r.GetSecureBootMode(ctx)
	if luaCode(err) != module.CodeTransient || !strings.Contains(err.Error(), "SessionLimitExceeded") {
		t.Fatalf("with the session limit reached: %v (code %s), want transient naming SessionLimitExceeded", err, luaCode(err))
	}
	if d := time.Since(start); d > limit {
		t.Fatalf("session limit: gave up after %s, want within %s", d, limit)
	}
	if srv.Sessions() != orphans+1 {
		t.Fatalf("sessions %d, want only the holding one", srv.Sessions())
	}
	_ = srv.SetFaults(sim.Faults{})
	if _, err := r.GetSecureBootMode(ctx); err != nil {
		t.Fatalf("after the session limit was lifted: %v", err)
	}
	if srv.Sessions() != orphans+2 {
		t.Fatalf("sessions %d after recovery, want the holding one and ours", srv.Sessions())
	}
	r.Close()
	if srv.Sessions() != orphans+1 {
		t.Fatalf("sessions %d after Close, want only the holding one", srv.Sessions())
	}
	hc.CloseIdleConnections()

	// No goroutine outlives the clients.
	for _, x := range []*Router{r} {
		x.Close()
	}
	s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d > %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countEvents counts the run's events named name.
func countEvents(run *moduletest.Run, name string) int {
	n := 0
	for _, e := range run.Events {
		if e.Name == name {
			n++
		}
	}
	return n
}

// TestGetLicenseBothProtocols reads the licence of every generation from
// the simulator through the router, then through RIBCL and Redfish each
// (where the generation has them) after the licence is changed to
// Standard: each protocol reports the state's licence and the iLO.
func TestGetLicenseBothProtocols(t *testing.T) {
	s := simtest.Start(t, "gen8=1,gen9=1,gen10=1,gen11=1,gen12=1")
	wantILO := map[string]int{"gen8": 4, "gen9": 4, "gen10": 5, "gen11": 6, "gen12": 7}
	for i, srv := range s.Servers() {
		gen := string(srv.Generation())
		t.Run(gen, func(t *testing.T) {
			ctx := context.Background()
			r := simRouter(t, s, i, 30)
			l, err := r.GetLicense(ctx)
			if err != nil || l.Name != sim.DefaultLicense || l.Tier != "advanced" || l.ILO != wantILO[gen] {
				t.Fatalf("router: %+v %v, want %s advanced on iLO %d", l, err, sim.DefaultLicense, wantILO[gen])
			}
			srv.Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Standard"}} })
			protocols := 0
			for name, get := range map[string]func(context.Context) (LicenseInfo, error){
				"ribcl": r.RIBCL().GetLicense, "redfish": r.Redfish().GetLicense,
			} {
				if (name == "ribcl" && gen == "gen12") || (name == "redfish" && gen == "gen8") {
					continue // iLO 7 has no RIBCL, iLO 3/4 on Gen8 no REST
				}
				protocols++
				l, err := get(ctx)
				if err != nil || l.Name != "iLO Standard" || l.Tier != "standard" || l.ILO != wantILO[gen] {
					t.Errorf("%s: %+v %v, want iLO Standard on iLO %d", name, l, err, wantILO[gen])
				}
			}
			if protocols == 0 {
				t.Fatal("no protocol tried")
			}
		})
	}
}
