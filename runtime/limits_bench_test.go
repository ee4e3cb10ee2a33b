package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/config"
)

const loopScript = `local n = 0 for i = 1, 1e6 do n = n + i % 7 end`

func benchLoop(b *testing.B, setup func(L *lua.LState) func()) {
	proto, _, err := (&Engine{protos: map[string]*lua.FunctionProto{}}).compile("loop.lua", []byte(loopScript))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		L := lua.NewState()
		done := setup(L)
		L.Push(L.NewFunctionFromProto(proto))
		if err := L.PCall(0, 0, nil); err != nil {
			b.Fatal(err)
		}
		done()
		L.Close()
	}
}

// BenchmarkScriptLoopPlainContext: 1e6 iterations (about 4e6 instructions)
// under a plain cancel context, gopher-lua's per-instruction Done check.
func BenchmarkScriptLoopPlainContext(b *testing.B) {
	benchLoop(b, func(L *lua.LState) func() {
		ctx, cancel := context.WithCancel(context.Background())
		L.SetContext(ctx)
		return cancel
	})
}

// BenchmarkScriptLoopGuardedContext: the same loop under a run's guard
// (luaCtx, with its heap sampler running).
func BenchmarkScriptLoopGuardedContext(b *testing.B) {
	p := filepath.Join(b.TempDir(), "c.conf")
	if err := os.WriteFile(p, []byte("[lightsout]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{cfg: cfg}
	benchLoop(b, func(L *lua.LState) func() {
		g := e.newGuard(context.Background(), L)
		return g.close
	})
}
