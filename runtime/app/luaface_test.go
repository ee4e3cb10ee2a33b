package app_test

import (
	"context"
	"log/slog"
	"sort"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/bindings/pxe"
	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/bindings/vmedia"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

// luaFaceModules are the default bindings, built as runtime/app builds them.
func luaFaceModules(t *testing.T) []module.Module {
	vm := vmedia.NewModule()
	t.Cleanup(func() { _ = vm.Close() })
	api := agentapi.New(nil, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	return []module.Module{ilo.NewModule(), ipmi.NewModule(), image.NewModule(), pxe.NewModule(), swift.NewModule(), vm, agent.NewModule(api)}
}

// noArguments are the functions that take no argument, so none can be bad.
var noArguments = map[string]bool{"vmedia.store": true, "agent.callback_url": true}

// callBad calls fn with args under pcall and returns the error value (nil
// when the call succeeded).
func callBad(t *testing.T, L *lua.LState, fn lua.LValue, args ...lua.LValue) lua.LValue {
	t.Helper()
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), lua.MultRet, nil)
	L.SetTop(0)
	if err == nil {
		return nil
	}
	if ae, ok := err.(*lua.ApiError); ok {
		return ae.Object
	}
	t.Fatalf("unexpected error %v", err)
	return nil
}

// checkBad asserts that errv is the invalid_argument error table of op.
func checkBad(t *testing.T, op string, errv lua.LValue) {
	t.Helper()
	tb, ok := errv.(*lua.LTable)
	if !ok {
		t.Errorf("%s: a bad argument raised %v (%s), want an error table {code, message, operation}", op, errv, errv.Type())
		return
	}
	if got := lua.LVAsString(tb.RawGetString("operation")); got != op {
		t.Errorf("%s: err.operation = %q, want %q (always <module>.<function>)", op, got, op)
	}
	if got := lua.LVAsString(tb.RawGetString("code")); got != module.CodeInvalid {
		t.Errorf("%s: err.code = %q, want %q (message %q)", op, got, module.CodeInvalid, lua.LVAsString(tb.RawGetString("message")))
	}
}

// Every function of every binding, and every method of ilo.client and
// ipmi.client, raises a bad argument as invalid_argument with err.operation
// "<module>.<function>".
func TestEveryBindingFunctionSpellsItsOperation(t *testing.T) {
	dir := t.TempDir()
	run := moduletest.NewRun(context.Background(), &moduletest.Node{ID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", NodeName: "n1"})
	run.Allow(dir)
	mods := luaFaceModules(t)
	L := moduletest.Open(run, mods...)
	defer L.Close()

	bad := lua.LTrue // no argument of any function is a boolean in first place
	seen := 0
	for _, m := range mods {
		if err := L.DoString(`return require("` + m.Name() + `")`); err != nil {
			t.Fatal(err)
		}
		tbl, ok := L.Get(-1).(*lua.LTable)
		L.SetTop(0)
		if !ok {
			t.Fatalf("require(%q) is not a table", m.Name())
		}
		var names []string
		tbl.ForEach(func(k, v lua.LValue) {
			if _, ok := v.(*lua.LFunction); ok {
				names = append(names, lua.LVAsString(k))
			}
		})
		sort.Strings(names)
		for _, name := range names {
			op := m.Name() + "." + name
			seen++
			if noArguments[op] {
				continue
			}
			checkBad(t, op, callBad(t, L, tbl.RawGetString(name), bad, bad, bad, bad))
		}
	}
	if seen < 25 {
		t.Fatalf("walked %d functions: the modules were not all opened", seen)
	}

	// Client methods: a bad receiver (called with a dot) and a bad argument.
	for _, ty := range []struct {
		name, module string
		min          int
	}{
		{ilo.ClientType.Name, ilo.ClientType.Module, 25},
		{ipmi.ClientType.Name, ipmi.ClientType.Module, 15},
	} {
		mt, ok := L.GetTypeMetatable(ty.name).(*lua.LTable)
		if !ok {
			t.Fatalf("no %s metatable", ty.name)
		}
		methods, ok := mt.RawGetString("__index").(*lua.LTable)
		if !ok {
			t.Fatalf("%s has no methods", ty.name)
		}
		n := 0
		methods.ForEach(func(k, fn lua.LValue) {
			n++
			checkBad(t, ty.module+"."+lua.LVAsString(k), callBad(t, L, fn, bad))
		})
		if n < ty.min {
			t.Fatalf("walked %d %s methods", n, ty.name)
		}
	}

	// A bad argument after a good one, and a bad option, name the same operation.
	probes := []struct{ op, code string }{
		{"ilo.set_host_power", `bmc:set_host_power(true)`},
		{"ilo.set_secure_boot_mode", `bmc:set_secure_boot_mode("yes")`},
		{"ilo.update_persistent_boot", `bmc:update_persistent_boot(42)`},
		{"ipmi.connect", `ipmi.connect(nil, { retry_timeout = "soon" })`},
		{"ipmi.power", `ipmb:power(true)`},
		{"ipmi.set_boot_device", `ipmb:set_boot_device("pxe", { efi = "yes" })`},
		{"image.floppy", `image.floppy("f.img", {}, { size = 1.5 })`},
		{"image.iso", `image.iso("x.iso", { kernel = true })`},
		{"swift.temp_url", `swift.temp_url("o", { expires = "soon" })`},
		{"vmedia.resolve", `vmedia.resolve("x.iso", { expires = -1 })`},
		{"vmedia.cleanup", `vmedia.cleanup(nil, "not a bmc")`},
		{"agent.wait_heartbeat", `agent.wait_heartbeat(nil, { timeout = true })`},
		{"agent.command", `agent.command(nil, "standby.x", {}, { wait = "no" })`},
	}
	for _, p := range probes {
		err := L.DoString(`
			local ilo, ipmi, image, swift, vmedia, agent = require("ilo"), require("ipmi"), require("image"), require("swift"), require("vmedia"), require("agent")
			bmc = bmc or ilo.connect({ address = "127.0.0.1", username = "u", password = "p" })
			ipmb = ipmb or ipmi.connect({ address = "127.0.0.1", username = "u", password = "p" })
			local ok, err = pcall(function() ` + p.code + ` end)
			assert(not ok, "no error")
			last_error = err`)
		if err != nil {
			t.Errorf("%s: %v", p.code, err)
			continue
		}
		checkBad(t, p.op, L.GetGlobal("last_error"))
	}
}
