package ipmi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim/simtest"
)

const nodeUUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"

// TestLuaFace drives the simulator from Lua through require("ipmi"), with
// driver_info as the store hands it (iLO keys plus ipmi_address/ipmi_port),
// and checks the recorded calls.
func TestLuaFace(t *testing.T) {
	s := simtest.Start(t, "gen10=1")
	srv := s.Server(0)
	srv.PowerOff()
	info := simtest.DriverInfo(s, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := moduletest.NewRun(ctx, &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info})
	L := moduletest.Open(r, ipmi.NewModule())
	defer L.Close()
	if err := L.DoString(`
		local b = require("ipmi").connect(node)
		assert(b:power_status() == "off")
		b:power_on()
		assert(b:power_status() == "on")
		assert(b:chassis_status().power == "on")
		b:set_boot_device("pxe", {efi = true})
		local bd = b:get_boot_device()
		assert(bd.device == "pxe" and bd.efi and not bd.persistent, bd.device)
		local fan
		for _, s in ipairs(b:sensors()) do if s.name == "Fan 1" then fan = s end end
		assert(fan and fan.reading > 0 and fan.unit == "RPM", "fan")
		assert(b:nic_capacity() == "1Gb", tostring(b:nic_capacity()))
		local frus = b:fru()
		assert(#frus >= 2 and frus[1].product.name ~= nil)
		local sel = b:sel()
		local up = false
		for _, e in ipairs(sel) do up = up or (e.event == "Initiated by power up" and e.asserted) end
		assert(up, "no power-up event in the SEL")
		b:clear_sel()
		assert(b:bmc_info().ipmi_version == "2.0")
		local ok, err = pcall(b.power, b, "sideways")
		assert(not ok and err.code == "invalid_argument", tostring(err))
	`); err != nil {
		t.Fatal(err)
	}
	if st := srv.State(); st.Power != "ON" || st.OneTimeBoot != "NETWORK" {
		t.Fatalf("server state %s %s", st.Power, st.OneTimeBoot)
	}
	calls := strings.Join(r.Calls(), " ")
	for _, want := range []string{"ipmi.power_status", "ipmi.power_on", "ipmi.set_boot_device", "ipmi.sensors", "ipmi.nic_capacity", "ipmi.sel", "ipmi.clear_sel", "ipmi.bmc_info"} {
		if !strings.Contains(calls, want) {
			t.Errorf("call %s not recorded: %s", want, calls)
		}
	}
	for _, e := range r.Events {
		if e.Name == "ipmi.set_boot_device" && (e.Data["device"] != "pxe" || e.Data["efi"] != true || e.Data["outcome"] != "ok") {
			t.Errorf("set_boot_device event: %v", e.Data)
		}
	}
}

// TestLuaErrorsAndSecrets: a wrong password raises login_failed naming the
// method called, and the password appears in no event.
func TestLuaErrorsAndSecrets(t *testing.T) {
	s := simtest.Start(t, "gen9=1")
	info := simtest.DriverInfo(s, 0)
	const pw = "Wr0ng-Secret-77"
	info["ipmi_password"] = pw
	r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info})
	L := moduletest.Open(r, ipmi.NewModule())
	defer L.Close()
	if err := L.DoString(`
		local b = require("ipmi").connect()
		local ok, err = pcall(b.power_status, b)
		assert(not ok and err.code == "login_failed", tostring(err))
		assert(err.operation == "ipmi.power_status", err.operation)
	`); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r.Events)
	if strings.Contains(string(b), pw) {
		t.Fatalf("password recorded: %s", b)
	}
	if !strings.Contains(string(b), "login_failed") {
		t.Fatalf("outcome not recorded: %s", b)
	}
}

// TestConnectOnlyTheRunsNode: a node table, UUID or name of another node,
// and any node in a node-less run, is refused before the BMC is contacted.
func TestConnectOnlyTheRunsNode(t *testing.T) {
	const other = "2c37d1a0-5b1e-4f7e-9d2c-0e1f2a3b4c5d"
	info := map[string]any{"ipmi_address": "127.0.0.1", "ipmi_username": "u", "ipmi_password": "p"}
	for _, tt := range []struct {
		name string
		node *moduletest.Node
		arg  string
		code string
	}{
		{"other uuid", &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info}, `"` + other + `"`, "forbidden"},
		{"other name", &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info}, `{ name = "n2", driver_info = { ipmi_address = "127.0.0.1" } }`, "forbidden"},
		{"other uuid, own name", &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info}, `{ uuid = "` + other + `", name = "n1" }`, "forbidden"},
		{"node-less run", nil, `"` + nodeUUID + `"`, "forbidden"},
		{"node-less run, no argument", nil, `nil`, "invalid_argument"},
		{"bad driver_info", &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: map[string]any{"ipmi_address": "h", "ipmi_port": "x"}}, `nil`, "invalid_argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := moduletest.NewRun(context.Background(), tt.node)
			L := moduletest.Open(r, ipmi.NewModule())
			defer L.Close()
			if err := L.DoString(`
				local ok, err = pcall(require("ipmi").connect, ` + tt.arg + `)
				assert(not ok, "accepted")
				assert(err.code == "` + tt.code + `", tostring(err))
			`); err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 0 {
				t.Fatalf("BMC calls made: %v", calls)
			}
		})
	}
}

// TestConnectRetryTimeout: the retry timeout is driver_info's, else
// [ipmi] retry_timeout, else the default, capped by connect's
// opts.retry_timeout.
func TestConnectRetryTimeout(t *testing.T) {
	for _, tt := range []struct {
		name   string
		info   map[string]any // nil: credentials passed as a table
		config string
		args   string
		want   time.Duration
	}{
		{"default", map[string]any{}, "", `nil`, ipmi.DefaultRetryTimeout},
		{"config", map[string]any{}, "20", `nil`, 20 * time.Second},
		{"driver_info over config", map[string]any{"ipmi_retry_timeout": 30}, "20", `nil`, 30 * time.Second},
		{"opts caps driver_info", map[string]any{"ipmi_retry_timeout": 30}, "", `nil, { retry_timeout = 10 }`, 10 * time.Second},
		{"shorter driver_info wins", map[string]any{"ipmi_retry_timeout": 5}, "", `nil, { retry_timeout = 10 }`, 5 * time.Second},
		{"shorter config wins", map[string]any{}, "5", `nil, { retry_timeout = 10 }`, 5 * time.Second},
		{"opts without driver_info or config", map[string]any{}, "", `nil, { retry_timeout = 120 }`, 120 * time.Second},
		{"fractions round up", map[string]any{}, "", `nil, { retry_timeout = 2.5 }`, 3 * time.Second},
		{"credentials' retry_timeout over config", nil, "20", `{ address = "127.0.0.1", username = "u", password = "p", retry_timeout = 7 }`, 7 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := map[string]any{"ipmi_address": "127.0.0.1", "ipmi_username": "u", "ipmi_password": "p"}
			for k, v := range tt.info {
				info[k] = v
			}
			r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info})
			if tt.config != "" {
				r.Cfg["ipmi."+ipmi.ConfigRetryTimeout] = tt.config
			}
			L := moduletest.Open(r, ipmi.NewModule())
			defer L.Close()
			if err := L.DoString(`b = require("ipmi").connect(` + tt.args + `)`); err != nil {
				t.Fatal(err)
			}
			rec, ok := ipmi.ClientType.Test(L.GetGlobal("b"))
			if !ok {
				t.Fatalf("connect returned %v, not an ipmi.client", L.GetGlobal("b"))
			}
			if got := rec.Client().Options().RetryTimeout; got != tt.want {
				t.Errorf("retry timeout %v, want %v", got, tt.want)
			}
			if calls := r.Calls(); len(calls) != 0 {
				t.Fatalf("connect contacted the BMC: %v", calls)
			}
		})
	}
}

// TestBadArguments: a bad argument or option raises invalid_argument naming
// the function called, before the BMC is contacted or a call recorded.
func TestBadArguments(t *testing.T) {
	info := map[string]any{"ipmi_address": "127.0.0.1", "ipmi_username": "u", "ipmi_password": "p"}
	for _, tt := range []struct{ op, code, msg string }{
		{"ipmi.connect", `ipmi.connect(true)`, "argument #1 (node)"},
		{"ipmi.connect", `ipmi.connect(nil, { retry_timeout = "soon" })`, "opts.retry_timeout"},
		{"ipmi.connect", `ipmi.connect(nil, { retry_timeout = -1 })`, "opts.retry_timeout"},
		{"ipmi.connect", `ipmi.connect(nil, { retry_timeout = 7200 })`, "at most 3600"},
		{"ipmi.connect", `ipmi.connect(nil, 5)`, "argument #2 (opts)"},
		{"ipmi.power", `b:power("sideways")`, "argument #1 (action)"},
		{"ipmi.power", `b:power()`, "argument #1 (action)"},
		{"ipmi.set_boot_device", `b:set_boot_device("usb")`, "argument #1 (device)"},
		{"ipmi.set_boot_device", `b:set_boot_device("pxe", { efi = "yes" })`, "opts.efi"},
		{"ipmi.set_boot_device", `b:set_boot_device("pxe", "persistent")`, "argument #2 (opts)"},
		{"ipmi.power_on", `b.power_on()`, "ipmi.client from ipmi.connect(node)"},
		{"ipmi.sensors", `b.sensors({})`, "call methods with a colon"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeUUID, NodeName: "n1", Info: info})
			L := moduletest.Open(r, ipmi.NewModule())
			defer L.Close()
			if err := L.DoString(`
				ipmi = require("ipmi")
				b = ipmi.connect()
				local ok, err = pcall(function() ` + tt.code + ` end)
				assert(not ok, "accepted")
				last_error = err
			`); err != nil {
				t.Fatal(err)
			}
			e, ok := L.GetGlobal("last_error").(*lua.LTable)
			if !ok {
				t.Fatalf("raised %v, want an error table", L.GetGlobal("last_error"))
			}
			code, op, msg := lua.LVAsString(e.RawGetString("code")), lua.LVAsString(e.RawGetString("operation")), lua.LVAsString(e.RawGetString("message"))
			if code != "invalid_argument" || op != tt.op || !strings.Contains(msg, tt.msg) {
				t.Errorf("raised %s %s %q, want invalid_argument %s with %q", code, op, msg, tt.op, tt.msg)
			}
			if calls := r.Calls(); len(calls) != 0 {
				t.Fatalf("calls recorded: %v", calls)
			}
		})
	}
}
