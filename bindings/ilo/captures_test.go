package ilo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/internal/replaytest"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

func replay(t *testing.T, tree string) *replaytest.Server {
	t.Helper()
	return replaytest.Start(t, filepath.Join(replaytest.CapturesDir(t), tree))
}

// A /ribcl answering 500, hanging, absent or with an HTML page leaves an
// iLO that has Redfish usable within one client_timeout; the outcome is
// cached, so the next run (a new client with the stored probe) sends no
// RIBCL at all. The iLO 5 tree's root is made to say "iLO 4", the one
// generation where lightsout still tries RIBCL first.
func TestRIBCLBrokenFallsBackToRedfish(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ribcl replaytest.RIBCL
	}{{"500", replaytest.RIBCL500}, {"hang", replaytest.RIBCLHang}, {"absent", replaytest.RIBCLAbsent}, {"html", replaytest.RIBCLHTML}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := replay(t, "cray-xl675d-gen10plus-ilo5")
			srv.RIBCL = tc.ribcl
			srv.Patch("/redfish/v1/", map[string]any{"Oem": map[string]any{"Hpe": map[string]any{"Manager": []any{
				map[string]any{"ManagerType": "iLO 4", "ManagerFirmwareVersion": "2.82"}}}}})
			info := srv.DriverInfo()
			info["client_timeout"] = int64(2)
			node := &moduletest.Node{ID: "u1", NodeName: "n1", Drv: "ilo", Info: info, Int: map[string]any{}}
			m := NewModule()
			defer m.Close()
			start := time.Now()
			run, err := runLua(t, m, node, `local b = require("ilo").connect(); assert(b:get_host_power_status() == "ON")`)
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second+500*time.Millisecond {
				t.Fatalf("first run took %s, want within client_timeout 2s", d)
			}
			p, ok := ProbeFromMap(asMap(node.Int[InternalProbe]))
			if !ok || p.RIBCL || p.Firmware != "2.82" || p.Model != "ProLiant XL675d Gen10 Plus" {
				t.Fatalf("cached probe %+v (ok %v); want Redfish, firmware 2.82", p, ok)
			}
			if n := countEvents(run, "ilo.session_login"); n != 1 {
				t.Errorf("%d logins in the first run", n)
			}
			before := srv.Count("POST", "/ribcl")
			start = time.Now()
			if _, err := runLua(t, m, node, `local b = require("ilo").connect(); assert(b:get_host_power_status() == "ON")`); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if n := srv.Count("POST", "/ribcl") - before; n != 0 {
				t.Fatalf("second run sent %d RIBCL requests, want 0 (probe cached)", n)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("second run took %s: it probed again", d)
			}
		})
	}
}

// iLO 7 has no RIBCL: nothing is ever sent to /ribcl, on any tree where
// the service root says iLO 5, 6 or 7.
func TestNoRIBCLToILO567(t *testing.T) {
	ctx := context.Background()
	for _, tree := range []string{"cray-xl675d-gen10plus-ilo5", "hpe-dl380a-gen11-ilo6", "hpe-dl380a-gen12-ilo7"} {
		srv := replay(t, tree)
		o, err := ParseDriverInfo(srv.DriverInfo())
		if err != nil {
			t.Fatal(err)
		}
		r, err := Connect(o, Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []func(context.Context) error{
			func(ctx context.Context) error { _, err := r.GetHostPowerStatus(ctx); return err },
			func(ctx context.Context) error { _, err := r.GetHostHealthData(ctx); return err },
			func(ctx context.Context) error { _, err := r.GetCurrentBootMode(ctx); return err },
			func(ctx context.Context) error { _, err := r.GetEssentialProperties(ctx); return err },
		} {
			if err := f(ctx); err != nil {
				t.Errorf("%s: %v", tree, err)
			}
		}
		p, _ := r.Probe(ctx)
		wantGen := map[string]int{"cray-xl675d-gen10plus-ilo5": 10, "hpe-dl380a-gen11-ilo6": 11, "hpe-dl380a-gen12-ilo7": 12}[tree]
		if p.RIBCL || p.Generation != wantGen {
			t.Errorf("%s: probe %+v, want Redfish gen%d", tree, p, wantGen)
		}
		if n := srv.Count("POST", "/ribcl"); n != 0 {
			t.Errorf("%s: %d RIBCL requests", tree, n)
		}
		r.Close()
	}
}

// A stored probe with another firmware version is re-done.
func TestFirmwareChangeReprobes(t *testing.T) {
	ctx := context.Background()
	srv := replay(t, "hpe-dl380a-gen11-ilo6")
	o, err := ParseDriverInfo(srv.DriverInfo())
	if err != nil {
		t.Fatal(err)
	}
	var got []Probe
	old := Probe{Address: o.Address(), Model: "ProLiant DL380a Gen11", Generation: 11, ManagerType: "iLO 6", Firmware: "1.55"}
	r, err := Connect(o, Config{Probe: &old, OnProbe: func(p Probe) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.GetHostPowerStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Firmware != "1.66" {
		t.Fatalf("re-probes %+v, want one with firmware 1.66", got)
	}
	// Same firmware: no re-probe.
	same := got[0]
	got = nil
	r2, err := Connect(o, Config{Probe: &same, OnProbe: func(p Probe) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.GetHostPowerStatus(ctx); err != nil || len(got) != 0 {
		t.Fatalf("same firmware: %v, re-probes %+v", err, got)
	}
}

// A 20-call script on one node logs in once; a session killed on the iLO
// side mid-run is recovered with one re-login, recorded as an event.
func TestTwentyCallsOneLogin(t *testing.T) {
	srv := replay(t, "hpe-dl380a-gen12-ilo7")
	node := &moduletest.Node{ID: "u1", NodeName: "n1", Drv: "ilo", Info: srv.DriverInfo(), Int: map[string]any{}}
	m := NewModule()
	defer m.Close()
	run := moduletest.NewRun(context.Background(), node)
	L := moduletest.Open(run, m)
	defer L.Close()
	L.SetGlobal("kill_sessions", L.NewFunction(func(*lua.LState) int { srv.KillSessions(); return 0 }))
	script := `
local b = require("ilo").connect()
for i = 1, 20 do
  if i == 11 then kill_sessions() end
  b:get_host_power_status()
end`
	if err := L.DoString(script); err != nil {
		t.Fatal(err)
	}
	if n := len(run.Calls()); n != 20 {
		t.Errorf("%d calls recorded, want 20", n)
	}
	if srv.Logins() != 2 {
		t.Errorf("%d logins, want 2 (one, plus one re-login after the kill)", srv.Logins())
	}
	if a, b := countEvents(run, "ilo.session_login"), countEvents(run, "ilo.session_relogin"); a != 1 || b != 1 {
		t.Errorf("session events: %d login, %d relogin; want 1 and 1", a, b)
	}
	if err := m.Close(); err != nil || srv.Sessions() != 0 {
		t.Fatalf("module Close: %v, %d sessions left", err, srv.Sessions())
	}
}

// The captured trees replayed by the simulator (`sim --capture`) and the
// simulated gen11 and gen12: UEFI boot mode, secure boot on and off across
// a reset, virtual media round trip, power, and the inspection values
// (derived from the raw JSON in redfish/captures_test.go).
func TestSimCaptureAndUEFIOnlyGenerations(t *testing.T) {
	ctx := context.Background()
	dir := replaytest.CapturesDir(t)
	type target struct {
		name     string
		gen      int
		memoryMB int
		localGB  int
		macs     int
		s        *sim.Sim
	}
	var targets []target
	for _, tc := range []target{
		{name: "cray-xl675d-gen10plus-ilo5", gen: 10, memoryMB: 262144, localGB: 893, macs: 2},
		{name: "hpe-dl380a-gen11-ilo6", gen: 11, memoryMB: 524288, localGB: 1488, macs: 2},
		{name: "hpe-dl380a-gen12-ilo7", gen: 12, memoryMB: 1572864, localGB: 446, macs: 6},
	} {
		s, err := sim.New(sim.Options{Captures: []string{filepath.Join(dir, tc.name)}, DiskSize: 1 << 20, RequestLog: true})
		if err != nil {
			t.Fatalf("sim --capture %s: %v", tc.name, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		tc.s = s
		targets = append(targets, tc)
	}
	for _, gen := range []int{11, 12} {
		targets = append(targets, target{name: fmt.Sprintf("sim-gen%d", gen), gen: gen, s: simtest.Start(t, fmt.Sprintf("gen%d=1", gen), simtest.WithRequestLog())})
	}
	img := simtest.ImageServer(t) + "/boot.iso"
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseDriverInfo(simtest.DriverInfo(tc.s, 0))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Connect(o, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			p, err := r.Probe(ctx)
			if err != nil || p.RIBCL || p.Generation != tc.gen {
				t.Fatalf("probe %+v, %v; want Redfish gen%d", p, err, tc.gen)
			}
			for name, f := range map[string]func(context.Context) (string, error){"current": r.GetCurrentBootMode, "pending": r.GetPendingBootMode} {
				if m, err := f(ctx); err != nil || m != "UEFI" {
					t.Errorf("%s boot mode %q, %v", name, m, err)
				}
			}
			if err := r.SetPendingBootMode(ctx, "UEFI"); err != nil {
				t.Errorf("set UEFI: %v", err)
			}
			if err := r.SetPendingBootMode(ctx, "LEGACY"); luaCode(err) != "not_supported" {
				t.Errorf("set LEGACY: %v (%s), want not_supported", err, luaCode(err))
			}
			if err := r.SetHostPower(ctx, "ON"); err != nil {
				t.Fatal(err)
			}
			for _, on := range []bool{true, false} {
				if err := r.SetSecureBootMode(ctx, on); err != nil {
					t.Fatalf("secure boot %v: %v", on, err)
				}
				if err := r.ResetServer(ctx); err != nil {
					t.Fatal(err)
				}
				if got, err := r.GetSecureBootMode(ctx); err != nil || got != on {
					t.Fatalf("secure boot after reset = %v, %v; want %v", got, err, on)
				}
			}
			if err := r.InsertVirtualMedia(ctx, img, "CDROM"); err != nil {
				t.Fatal(err)
			}
			if st, err := r.GetVMStatus(ctx, "CDROM"); err != nil || st.ImageInserted != "YES" || st.ImageURL != img {
				t.Fatalf("after insert %+v, %v", st, err)
			}
			if err := r.EjectVirtualMedia(ctx, "CDROM"); err != nil {
				t.Fatal(err)
			}
			if err := r.SetHostPower(ctx, "OFF"); err != nil {
				t.Fatal(err)
			}
			if pw, err := r.GetHostPowerStatus(ctx); err != nil || pw != "OFF" {
				t.Fatalf("power %q, %v", pw, err)
			}
			if tc.memoryMB > 0 {
				ep, err := r.GetEssentialProperties(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ep.MemoryMB != tc.memoryMB || ep.LocalGB != tc.localGB || len(ep.MACs) != tc.macs {
					t.Errorf("inspection memory %d local_gb %d macs %d; want %d %d %d", ep.MemoryMB, ep.LocalGB, len(ep.MACs), tc.memoryMB, tc.localGB, tc.macs)
				}
			}
			for _, l := range tc.s.Server(0).RequestLog() {
				if strings.Contains(strings.ToLower(l), "/ribcl") {
					t.Fatalf("RIBCL sent to an iLO 5/6/7: %q", l)
				}
			}
		})
	}
}

// The same against the simulator, the session ended through its admin
// side (DELETE /servers/{name}/sessions does srv.EndSessions).
func TestTwentyCallsOneLoginSimulator(t *testing.T) {
	s, srv := simtest.ILO(t, 11, simtest.WithRequestLog())
	node := &moduletest.Node{ID: "u1", NodeName: "n1", Drv: "ilo", Info: simtest.DriverInfo(s, 0), Int: map[string]any{}}
	m := NewModule()
	defer m.Close()
	run := moduletest.NewRun(context.Background(), node)
	L := moduletest.Open(run, m)
	defer L.Close()
	L.SetGlobal("kill_sessions", L.NewFunction(func(*lua.LState) int { srv.EndSessions(""); return 0 }))
	if err := L.DoString(`
local b = require("ilo").connect()
for i = 1, 20 do
  if i == 11 then kill_sessions() end
  b:get_host_power_status()
end`); err != nil {
		t.Fatal(err)
	}
	logins := 0
	for _, l := range srv.RequestLog() {
		if strings.HasPrefix(l, "POST /redfish/v1/SessionService/Sessions") {
			logins++
		}
	}
	if logins != 2 || countEvents(run, "ilo.session_login") != 1 || countEvents(run, "ilo.session_relogin") != 1 {
		t.Fatalf("%d logins on the wire, events login %d relogin %d; want 2, 1, 1", logins,
			countEvents(run, "ilo.session_login"), countEvents(run, "ilo.session_relogin"))
	}
	if err := m.Close(); err != nil || srv.Sessions() != 0 {
		t.Fatalf("module Close: %v, %d sessions left", err, srv.Sessions())
	}
}
