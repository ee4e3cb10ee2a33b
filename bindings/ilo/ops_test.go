package ilo

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// snake turns a Go method name into its Lua name: GetVMStatus ->
// get_vm_status, ResetBIOSToDefault -> reset_bios_to_default.
func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// captureLayer records which operation each call claimed to be.
type captureLayer struct{ op *string }

func (l captureLayer) do(ctx context.Context, c call, fn func(inner Client, ctx context.Context) (any, error)) (any, error) {
	*l.op = c.op
	return nil, nil
}

// Every iloapi.Client method is one operation: ops records it under its
// Lua name, the Lua face has it, and stdlib/types/ilo.lua annotates it.
func TestEveryOperationHasALuaFace(t *testing.T) {
	types, err := os.ReadFile("../../stdlib/types/ilo.lua")
	if err != nil {
		t.Fatal(err)
	}
	lua := luaMethods()
	it := reflect.TypeFor[iloapi.Client]()
	var got string
	o := reflect.ValueOf(ops{captureLayer{&got}})
	for i := range it.NumMethod() {
		m := it.Method(i)
		name := snake(m.Name)
		args := []reflect.Value{reflect.ValueOf(context.Background())}
		for j := 1; j < m.Type.NumIn(); j++ {
			args = append(args, reflect.Zero(m.Type.In(j)))
		}
		got = ""
		o.MethodByName(m.Name).Call(args)
		if got != name {
			t.Errorf("%s is recorded as %q, want %q", m.Name, got, name)
		}
		if _, ok := lua[name]; !ok {
			t.Errorf("%s has no Lua method %q in luaMethods", m.Name, name)
		}
		if !strings.Contains(string(types), "function Client:"+name+"(") {
			t.Errorf("%s has no LuaLS annotation function Client:%s in stdlib/types/ilo.lua", m.Name, name)
		}
	}
	if len(lua) != it.NumMethod() {
		t.Errorf("%d Lua methods for %d operations", len(lua), it.NumMethod())
	}
}
