package ilo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// The protocol packages are a plain Go library: nothing under runtime/
// (and so no Lua engine) among their dependencies. Only the ilo package,
// the Lua face, maps their errors to Lua codes.
func TestProtocolPackagesImportNoRuntime(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	const mod = "github.com/lightsout/lightsout/"
	pkgs := []string{"./iloapi", "./ribcl", "./redfish"}
	out, err := exec.Command(goBin, append([]string{"list", "-deps", "-json=ImportPath"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		if strings.HasPrefix(p.ImportPath, mod+"runtime/") || strings.HasPrefix(p.ImportPath, "github.com/yuin/gopher-lua") {
			t.Errorf("%v depend on %s; map errors to Lua codes in bindings/ilo, not below it", pkgs, p.ImportPath)
		}
	}
	if seen < 3 {
		t.Fatalf("go list returned %d packages", seen)
	}
}

func TestLuaCodeOfEachKind(t *testing.T) {
	tests := []struct {
		err  error
		code string
	}{
		{iloapi.NotSupported("op", "no", nil), module.CodeNotSupported},
		{iloapi.LoginFailed("op", "no", nil), module.CodeLoginFailed},
		{iloapi.Transient("op", "503", nil), module.CodeTransient},
		{iloapi.ILOError("op", &iloapi.StatusError{Protocol: "ribcl", Status: "0x0035", Message: "bad"}), module.CodeILOError},
		{iloapi.Timeout("op", "slow", nil), module.CodeTimeout},
		{iloapi.Invalid("op", "bad %s", "x"), module.CodeInvalid},
		{iloapi.Errorf("op", nil, "tls"), module.CodeError},
		{fmt.Errorf("wrapped: %w", iloapi.Transient("op", "503", nil)), module.CodeTransient},
		{iloapi.WithOperation("op", fmt.Errorf("x: %w", errContext{})), module.CodeError},
		{module.Errorf(module.CodeInvalid, "ilo.connect", "bad"), module.CodeInvalid},
	}
	for _, tc := range tests {
		if got := luaCode(tc.err); got != tc.code {
			t.Errorf("%v: code %q, want %q", tc.err, got, tc.code)
		}
		le := luaError("op", tc.err)
		var me *module.Error
		if !errors.As(le, &me) || me.Code != tc.code {
			t.Errorf("%v: luaError %#v", tc.err, le)
		}
		if ie := (*iloapi.Error)(nil); errors.As(tc.err, &ie) && (me.Operation != "ilo.op" || !errors.Is(le, ie.Kind)) {
			t.Errorf("%v: operation %q, kind lost", tc.err, me.Operation)
		}
	}
}

type errContext struct{}

func (errContext) Error() string { return "other" }
