package ilo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/simtest"
)

func newNode(info map[string]any) *moduletest.Node {
	return &moduletest.Node{ID: "uuid-1", NodeName: "node-1", Drv: "ilo", Info: info, Int: map[string]any{}}
}

// runLua runs script with the ilo module for node and returns the run.
func runLua(t testing.TB, m *Module, node *moduletest.Node, script string) (*moduletest.Run, error) {
	t.Helper()
	run := moduletest.NewRun(context.Background(), node)
	L := moduletest.Open(run, m)
	defer L.Close()
	err := L.DoString(script)
	return run, err
}

const lifecycle = `
local ilo = require("ilo")
local bmc = ilo.connect()
assert(tostring(bmc):find("ilo.client"))
local name = bmc:get_product_name()
assert(name:find("ProLiant"), name)
bmc:set_host_power("ON")
assert(bmc:get_host_power_status() == "ON")
bmc:set_host_power("OFF")
assert(bmc:get_host_power_status() == "OFF")
bmc:set_pending_boot_mode("LEGACY")
assert(bmc:get_pending_boot_mode() == "LEGACY", bmc:get_pending_boot_mode())
if SECURE then -- the UEFI generations
  bmc:set_pending_boot_mode("UEFI")
  assert(bmc:get_pending_boot_mode() == "UEFI")
end
local ok, err = pcall(function() bmc:set_secure_boot_mode(true) end)
if SECURE then
  assert(ok, tostring(err))
  bmc:set_host_power("ON") -- like a real iLO, the setting applies at the next boot
  assert(bmc:get_secure_boot_mode() == true)
  bmc:set_secure_boot_mode(false)
  bmc:reset_server()
  assert(bmc:get_secure_boot_mode() == false)
  bmc:set_host_power("OFF")
else
  assert(not ok and err.code == "not_supported", tostring(err))
  assert(err.operation == "ilo.set_secure_boot_mode", err.operation)
end
bmc:eject_virtual_media("CDROM") -- nothing inserted: no-op
bmc:insert_virtual_media(IMAGE, "CDROM")
local st = bmc:get_vm_status("CDROM")
assert(st.inserted and st.image_url == IMAGE, st.image_url)
bmc:eject_virtual_media("CDROM")
assert(bmc:get_vm_status("CDROM").image_inserted == "NO")
local props = bmc:get_essential_properties()
assert(props.properties.cpus > 0 and props.properties.memory_mb > 0, "props")
assert(props.properties.cpu_arch == "x86_64")
local caps = bmc:get_server_capabilities()
assert(caps.server_model == name)
local ok2, err2 = pcall(function() bmc:set_host_power("SIDEWAYS") end)
assert(not ok2 and err2.code == "invalid_argument", tostring(err2))
`

func TestLuaLifecyclePerGeneration(t *testing.T) {
	tests := []struct {
		gen      int
		secure   bool
		protocol string // protocol of set_host_power
		ribcl    bool
	}{
		{8, false, "ribcl", true},
		{9, true, "redfish", true},
		{10, true, "redfish", false}, // iLO 5: Redfish only (decided from the service root)
		{11, true, "redfish", false},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSpace(tc.protocol)+"-gen"+itoa(tc.gen), func(t *testing.T) {
			s, srv := simtest.ILO(t, tc.gen, simtest.WithRequestLog(), simtest.WithBootModes(map[bool]string{true: "LEGACY_UEFI", false: "LEGACY_ONLY"}[tc.secure]))
			node := newNode(simtest.DriverInfo(s, 0))
			m := NewModule()
			script := "SECURE = " + map[bool]string{true: "true", false: "false"}[tc.secure] + "\nIMAGE = '" + simtest.ImageServer(t) + "/boot.iso'\n" + lifecycle
			run, err := runLua(t, m, node, script)
			if err != nil {
				t.Fatal(err)
			}
			if n := countEvents(run, "ilo.session_login"); srv.Sessions() != n || n > 1 {
				t.Fatalf("%d Redfish sessions open after %d logins, want at most 1 shared session", srv.Sessions(), n)
			}
			if err := m.Close(); err != nil || srv.Sessions() != 0 {
				t.Fatalf("module Close: %v, %d sessions left", err, srv.Sessions())
			}
			p, ok := ProbeFromMap(node.Int[InternalProbe].(map[string]any))
			if !ok || p.Generation != tc.gen || p.RIBCL != tc.ribcl || p.Model != srv.Hardware().Model {
				t.Fatalf("cached probe %+v", p)
			}
			var seen bool
			for _, e := range run.Events {
				if e.Kind != "call" {
					continue
				}
				b, _ := json.Marshal(e.Data)
				if strings.Contains(string(b), srv.Password()) {
					t.Fatalf("password in event %s", b)
				}
				if e.Name == "ilo.set_host_power" && !seen {
					seen = true
					if e.Data["protocol"] != tc.protocol || e.Data["outcome"] != "ok" || e.Data["node"] != "node-1" {
						t.Fatalf("event %+v", e.Data)
					}
				}
			}
			if !seen {
				t.Fatalf("no ilo.set_host_power event in %v", run.Calls())
			}
			// A second run uses the cached probe: no GET_PRODUCT_NAME, no Systems walk first.
			before := len(srv.RequestLog())
			if _, err := runLua(t, m, node, `local b = require("ilo").connect(); assert(b:get_host_power_status() == "OFF")`); err != nil {
				t.Fatal(err)
			}
			for _, l := range srv.RequestLog()[before:] {
				if strings.Contains(l, "GET_PRODUCT_NAME") {
					t.Fatalf("second run re-probed: %s", l)
				}
			}
		})
	}
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+n/10)) + string(rune('0'+n%10)))
}

func TestLuaConnectPlainTableAndErrors(t *testing.T) {
	_, srv := simtest.ILO(t, 10)
	m := NewModule()
	script := `
local ilo = require("ilo")
local ok, err = pcall(ilo.connect, {address = "127.0.0.1"})
assert(not ok and err.code == "invalid_argument" and err.message:find("ilo_username"), tostring(err))
local bmc = ilo.connect({address = ADDR, port = PORT, username = "Administrator", password = "wrong", insecure = true, timeout = 3})
local ok2, err2 = pcall(function() return bmc:get_host_power_status() end)
assert(not ok2 and err2.code == "login_failed", tostring(err2))
assert(err2.operation == "ilo.get_host_power_status", tostring(err2.operation))
assert(not tostring(err2):find("wrong"))
`
	run := moduletest.NewRun(context.Background(), nil)
	L := moduletest.Open(run, m)
	defer L.Close()
	L.SetGlobal("ADDR", lua.LString("127.0.0.1"))
	L.SetGlobal("PORT", lua.LNumber(srv.Port()))
	if err := L.DoString(script); err != nil {
		t.Fatal(err)
	}
	if calls := run.Calls(); len(calls) != 1 || calls[0] != "ilo.get_host_power_status" {
		t.Fatalf("calls %v", calls)
	}
	if run.Events[0].Data["outcome"] != module.CodeLoginFailed {
		t.Fatalf("event %+v", run.Events[0].Data)
	}
}

// Go callers (vmedia, agent) type-assert the userdata's Value and are recorded.
func TestUserdataValueIsRecordedClient(t *testing.T) {
	s, srv := simtest.ILO(t, 8)
	node := newNode(simtest.DriverInfo(s, 0))
	run := moduletest.NewRun(context.Background(), node)
	L := moduletest.Open(run, NewModule())
	defer L.Close()
	if err := L.DoString(`bmc = require("ilo").connect()`); err != nil {
		t.Fatal(err)
	}
	ud := L.GetGlobal("bmc").(*lua.LUserData)
	vm, ok := ud.Value.(interface {
		InsertVirtualMedia(ctx context.Context, url, device string) error
		EjectVirtualMedia(ctx context.Context, device string) error
		SetOneTimeBoot(ctx context.Context, device string) error
		GetVMStatus(ctx context.Context, device string) (VMStatus, error)
		SetHostPower(ctx context.Context, power string) error
		GetHostPowerStatus(ctx context.Context) (string, error)
	})
	if !ok {
		t.Fatalf("userdata value %T lacks the methods", ud.Value)
	}
	img := simtest.ImageServer(t) + "/x.img"
	if err := vm.InsertVirtualMedia(context.Background(), img, "FLOPPY"); err != nil {
		t.Fatal(err)
	}
	if srv.State().Media["FLOPPY"].URL != img {
		t.Fatal("not inserted")
	}
	if c := run.Calls(); len(c) != 1 || c[0] != "ilo.insert_virtual_media" {
		t.Fatalf("calls %v", c)
	}
}

// connectTo connects a router to the simulator's first server, after mod
// changed its driver_info.
func connectTo(t *testing.T, s *sim.Sim, mod func(map[string]any)) *Router {
	t.Helper()
	info := simtest.DriverInfo(s, 0)
	if mod != nil {
		mod(info)
	}
	o, err := ParseDriverInfo(info)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Connect(o, Config{})
	if err != nil {
		t.Fatal(err)
	}
	r.Transport().MinBackoff, r.Transport().MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	t.Cleanup(r.Close)
	return r
}

func TestFaultCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		gen     int
		timeout float64
		faults  sim.Faults
		ctx     time.Duration // 0: no deadline of the run's own
		code    string        // "" : the call succeeds
		within  time.Duration
	}{
		{"busy is retried", 10, 5, sim.Faults{Busy: 2}, 0, "", 5 * time.Second},
		{"503 forever is transient within client_timeout", 8, 1, sim.Faults{ErrorRate: 1, ErrorKinds: []string{"503"}}, 0, module.CodeTransient, 2 * time.Second},
		{"hang is a timeout within client_timeout", 10, 0.5, sim.Faults{Hang: true}, 0, module.CodeTimeout, 1500 * time.Millisecond},
		{"run cancelled", 10, 5, sim.Faults{Hang: true}, 200 * time.Millisecond, module.CodeTimeout, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := simtest.ILO(t, tc.gen)
			r := connectTo(t, s, func(m map[string]any) { m["client_timeout"] = tc.timeout })
			if err := srv.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = srv.SetFaults(sim.Faults{}) }()
			cctx := ctx
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			start := time.Now()
			var err error
			if tc.code == "" {
				err = r.SetHostPower(cctx, "ON")
			} else {
				_, err = r.GetHostPowerStatus(cctx)
			}
			if c := luaCode(err); tc.code == "" && err != nil || tc.code != "" && c != tc.code {
				t.Fatalf("want %q, got %s: %v", tc.code, c, err)
			}
			if d := time.Since(start); d > tc.within {
				t.Fatalf("took %s, want within %s", d, tc.within)
			}
			if tc.code == "" && srv.State().Power != "ON" {
				t.Fatal("not powered on")
			}
		})
	}
	// An exhausted session limit (the login and the basic-auth fall-back
	// both refused, as on a real iLO) is covered by TestSimulatorFaults.
}

func writeCert(t *testing.T, s *sim.Sim) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLS(t *testing.T) {
	ctx := context.Background()
	s, _ := simtest.ILO(t, 8)
	secure := func(m map[string]any) { delete(m, "ilo_verify_ca"); delete(m, "ilo_insecure") }

	r := connectTo(t, s, secure)
	_, err := r.GetHostPowerStatus(ctx)
	if err == nil || !strings.Contains(err.Error(), "ilo_verify_ca") || iloapi.IsTransient(err) {
		t.Fatalf("unverified certificate must fail with a hint: %v", err)
	}

	ca := writeCert(t, s)
	r = connectTo(t, s, func(m map[string]any) { secure(m); m["ilo_verify_ca"] = ca })
	if _, err := r.GetHostPowerStatus(ctx); err != nil {
		t.Fatalf("with ilo_verify_ca: %v", err)
	}
	r = connectTo(t, s, func(m map[string]any) { secure(m); m["ilo_verify_ca"] = filepath.Dir(ca) })
	if _, err := r.GetHostPowerStatus(ctx); err != nil {
		t.Fatalf("with ilo_verify_ca dir: %v", err)
	}

	// Trust on first use through the Lua module: recorded, then enforced.
	node := newNode(simtest.DriverInfo(s, 0))
	secure(node.Info)
	node.Info["ilo_cert_pin"] = "tofu"
	m := NewModule()
	if _, err := runLua(t, m, node, `assert(require("ilo").connect():get_host_power_status())`); err != nil {
		t.Fatal(err)
	}
	want := iloapi.Fingerprint(s.CertDER())
	if node.Int[InternalCertPin] != want {
		t.Fatalf("pin %v, want %s", node.Int[InternalCertPin], want)
	}
	other, otherSrv := simtest.ILO(t, 8, simtest.WithPassword(node.Info["ilo_password"].(string))) // a fresh CA and certificate
	node.Info["client_port"] = int64(otherSrv.Port())
	node.Int[InternalProbe] = nil
	_, err = runLua(t, m, node, `local ok, e = pcall(function() return require("ilo").connect():get_host_power_status() end)
assert(not ok); error(e.message)`)
	got := iloapi.Fingerprint(other.CertDER())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), got) {
		t.Fatalf("pin mismatch must name both fingerprints %s and %s: %v", want, got, err)
	}

	// An explicit fingerprint pin.
	r = connectTo(t, s, func(m map[string]any) { secure(m); m["ilo_cert_pin"] = got })
	_, err = r.GetHostPowerStatus(ctx)
	var pe *PinMismatchError
	if !errors.As(err, &pe) || pe.Expected != got || pe.Got != want {
		t.Fatalf("explicit pin: %v", err)
	}
}

func TestParseDriverInfo(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		info map[string]any
		bad  string
		chk  func(o Options) bool
	}{
		{"defaults", map[string]any{"ilo_address": "10.0.0.1", "ilo_username": "a", "ilo_password": "b"}, "",
			func(o Options) bool { return o.Port == 443 && o.Timeout == 60*time.Second && o.VerifyCA && !o.Insecure }},
		{"missing", map[string]any{"ilo_address": "x"}, "ilo_username, ilo_password", nil},
		{"address with port", map[string]any{"ilo_address": "127.0.0.1:8443", "ilo_username": "a", "ilo_password": "b"}, "",
			func(o Options) bool { return o.Port == 8443 && o.Host == "127.0.0.1" }},
		{"bad port", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "client_port": "70000"}, "client_port", nil},
		{"bad timeout", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "client_timeout": "soon"}, "client_timeout", nil},
		{"verify false", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "ilo_verify_ca": "False"}, "",
			func(o Options) bool { return !o.VerifyCA && o.VerifyCASet }},
		{"verify dir", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "ilo_verify_ca": dir}, "",
			func(o Options) bool { return o.CAPath == dir }},
		{"verify missing path", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "ilo_verify_ca": "/nonexistent/ca"}, "Boolean or the path", nil},
		{"pin", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "ilo_cert_pin": "SHA256:" + strings.Repeat("AB:", 31) + "AB"}, "",
			func(o Options) bool { return o.CertPin == strings.Repeat("ab", 32) }},
		{"bad pin", map[string]any{"ilo_address": "h", "ilo_username": "a", "ilo_password": "b", "ilo_cert_pin": "abc"}, "SHA-256", nil},
		{"insecure", map[string]any{"address": "h", "username": "a", "password": "b", "insecure": true}, "",
			func(o Options) bool { return o.Insecure }},
	}
	for _, tc := range tests {
		o, err := ParseDriverInfo(tc.info)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.bad)
			}
			continue
		}
		if err != nil || !tc.chk(o) {
			t.Errorf("%s: %+v %v", tc.name, o, err)
		}
	}
}

func TestLimiterSharedAcrossRuns(t *testing.T) {
	s, srv := simtest.ILO(t, 8)
	if err := srv.SetFaults(sim.Faults{Latency: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	m := &Module{MaxRequests: 2}
	node := newNode(simtest.DriverInfo(s, 0))
	node.Int[InternalProbe] = Probe{Address: srv.Addr(), Model: srv.Hardware().Model, Generation: 8, RIBCL: true}.Map()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := runLua(t, m, node, `assert(require("ilo").connect():get_host_power_status() == "OFF")`)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.MaxInFlight(); got != 2 {
		t.Fatalf("max in flight %d, want 2", got)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		s, srv := simtest.ILO(t, 10)
		defer s.Close()
		r := connectTo(t, s, nil)
		ctx := context.Background()
		for i := 0; i < 5; i++ {
			if _, err := r.GetHostPowerStatus(ctx); err != nil {
				t.Fatal(err)
			}
		}
		_ = srv.SetFaults(sim.Faults{Hang: true})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, _ = r.GetHostPowerStatus(cctx)
		cancel()
		_ = srv.SetFaults(sim.Faults{})
		r.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d > %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGenerationOf(t *testing.T) {
	for model, want := range map[string]int{"ProLiant ML110 G7": 7, "ProLiant DL380 Gen8": 8, "ProLiant DL360 Gen10 Plus": 10,
		"ProLiant DL380 Gen11": 11, "ProLiant DL320 Gen12": 12, "Synergy 480": 0} {
		if got := GenerationOf(model); got != want {
			t.Errorf("%s: %d want %d", model, got, want)
		}
	}
}

// A binding that records the BMC step itself (vmedia) takes the
// unrecorded client: the call is not an ilo.* event, and its errors still
// carry their Lua codes.
func TestUnrecordedClientRecordsNothing(t *testing.T) {
	s, srv := simtest.ILO(t, 10)
	node := newNode(simtest.DriverInfo(s, 0))
	run := moduletest.NewRun(context.Background(), node)
	L := moduletest.Open(run, NewModule())
	defer L.Close()
	if err := L.DoString(`bmc = require("ilo").connect()`); err != nil {
		t.Fatal(err)
	}
	u, ok := L.GetGlobal("bmc").(*lua.LUserData).Value.(interface{ Unrecorded() iloapi.Client })
	if !ok {
		t.Fatal("the userdata value has no Unrecorded method")
	}
	c := u.Unrecorded()
	ctx := context.Background()
	img := simtest.ImageServer(t) + "/boot.iso"
	if err := c.InsertVirtualMedia(ctx, img, "CDROM"); err != nil || !srv.State().Media["CDROM"].Inserted {
		t.Fatalf("insert: %v", err)
	}
	err := c.SetOneTimeBoot(ctx, "FLOPPYDISK")
	var me *module.Error
	if !errors.As(err, &me) || me.Code != module.CodeInvalid || me.Operation != "ilo.set_one_time_boot" {
		t.Fatalf("bad device: %#v", err)
	}
	if calls := run.Calls(); len(calls) != 0 {
		t.Fatalf("the unrecorded client recorded %v", calls)
	}
}
