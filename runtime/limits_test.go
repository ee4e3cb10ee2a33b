package runtime_test

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// newLimitEnv is newEnv with extra [lightsout] options and extra modules.
func newLimitEnv(t testing.TB, conf string, mods ...module.Module) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	c, err := secrets.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"), c)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(writeFile(t, dir, "lightsout.conf", "[lightsout]\nstate_dir = "+dir+"\n"+conf))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	n := &store.Node{UUID: "11111111-2222-3333-4444-555555555555", Name: "n1", Driver: "agent_ilo",
		DriverInfo: map[string]any{}, ProvisionState: "manageable"}
	if err := st.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); st.Close() })
	return &env{eng: eng, st: st, dir: dir, node: n}
}

// heapPeak samples the heap every millisecond until stopped and returns
// the highest value seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// Bombs: each fails only its run, with resource_limit or timed_out, well
// within its timeout, with the heap bounded; the engine then runs a normal
// script.
func TestBombsFailTheirRunOnly(t *testing.T) {
	const limit = 32 << 20
	// memory bombs end as soon as they are caught; the timeout only bounds
	// a bomb that is not (then the test fails on its status), generous
	// because measuring shares two cores with the rest of make test
	const bombTimeout = 60 * time.Second
	e := newLimitEnv(t, "run_memory_limit = 32M\nrun_max_coroutines = 50\n")
	cases := []struct {
		name, src string
		timeout   time.Duration
		status    string
		want      string
	}{
		{"rep", `local s = string.rep("x", 2^40)`, bombTimeout, store.StatusFailed, "string.rep: result of 1.0 TiB exceeds the run's memory limit of 32.0 MiB (raise [lightsout] run_memory_limit) (resource_limit)"},
		{"rep method", `local s = ("xy"):rep(2^30)`, bombTimeout, store.StatusFailed, "(resource_limit)"},
		{"format width", `local s = string.format(string.rep("%999999s", 200), unpack({}))`, bombTimeout, store.StatusFailed, "string.format: result of"},
		{"doubling concat", `local s = "x" for i = 1, 60 do s = s .. s end`, bombTimeout, store.StatusFailed, "over its memory limit of 32.0 MiB (raise [lightsout] run_memory_limit) (resource_limit)"},
		{"doubling concat in a coroutine", `coroutine.wrap(function() local t = {"x"} for i = 1, 60 do t[1] = t[1] .. t[1] end end)()`, bombTimeout, store.StatusFailed, "(resource_limit)"},
		{"table.concat", `local y = string.rep("y", 1e6) local t = {} for i = 1, 200 do t[i] = y end local s = table.concat(t, ",")`, bombTimeout, store.StatusFailed, "table.concat: result of"},
		{"table growth", `local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end`, bombTimeout, store.StatusFailed, "(resource_limit)"},
		{"string table growth", `t = {} local i = 0 while true do i = i + 1 t["k" .. i] = "value" .. i end`, bombTimeout, store.StatusFailed, "(resource_limit)"},
		{"gsub growth", `local s = string.rep("a", 1e6) s = s:gsub("a", string.rep("b", 100))`, bombTimeout, store.StatusFailed, "string.gsub: result of"},
		{"coroutine flood", `local t = {} while true do t[#t+1] = coroutine.create(function() coroutine.yield() end) coroutine.resume(t[#t]) end`, bombTimeout, store.StatusFailed, "coroutine.create: the run already has 50 coroutines alive, its limit (raise [lightsout] run_max_coroutines) (resource_limit)"},
		{"backtracking pattern", `local s = string.rep("a", 5000) return s:find(string.rep("(.-)", 12) .. "b")`, time.Second, store.StatusTimedOut, "run timed out"},
		{"backtracking gmatch", `local s = string.rep("a", 5000) for x in s:gmatch(string.rep(".-", 12) .. "b") do end`, time.Second, store.StatusTimedOut, "run timed out"},
		{"backtracking gsub", `local s = string.rep("a", 5000) s:gsub(string.rep("a*", 12) .. "b", "")`, time.Second, store.StatusTimedOut, "run timed out"},
		{"gsub loop", `local s = "abc" while true do s = s:gsub("b", "b") end`, time.Second, store.StatusTimedOut, "run timed out"},
		{"infinite tail call", `local function f(...) return f(1, ...) end f()`, 2 * time.Second, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stop := heapPeak()
			start := time.Now()
			res := e.run(t, tc.src, func(r *runtime.RunRequest) { r.Timeout = tc.timeout })
			took := time.Since(start)
			peak := stop()
			t.Logf("%s: %s in %v, heap peak %d MiB: %.200s", tc.name, res.Status, took, peak>>20, res.Error)
			if tc.status == "" {
				if res.Status != store.StatusFailed && res.Status != store.StatusTimedOut {
					t.Errorf("status %s, want failed or timed_out: %s", res.Status, res.Error)
				}
			} else if res.Status != tc.status || !strings.Contains(res.Error, tc.want) {
				t.Errorf("got %s %q, want %s containing %q", res.Status, res.Error, tc.status, tc.want)
			}
			if took > tc.timeout+time.Second {
				t.Errorf("run took %v for a %v timeout", took, tc.timeout)
			}
			if peak > 40*limit {
				t.Errorf("heap peaked at %d MiB for a %d MiB limit", peak>>20, limit>>20)
			}
		})
	}
	res := e.run(t, `local t = {} for i = 1, 1000 do t[i] = ("%d"):format(i) end assert(table.concat(t, ","):find("999,1000$"))
		assert(select(2, ("a,b,c"):gsub(",", ";")) == 2)
		assert(_printregs == nil, "_printregs is exposed")
		local co = coroutine.wrap(function() coroutine.yield(1) return 2 end) assert(co() == 1 and co() == 2)`)
	if !res.Succeeded() {
		t.Fatalf("normal script after bombs: %s %s", res.Status, res.Error)
	}
}

// panicky is a module whose function hits a Go runtime panic (a binding
// bug): it fails its run only.
type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Open(L *lua.LState, r module.Run) lua.LValue {
	return L.NewFunction(func(L *lua.LState) int {
		var s []int
		return s[L.GetTop()+1] // index out of range: a runtime panic
	})
}

func TestGoPanicFailsOnlyItsRun(t *testing.T) {
	e := newLimitEnv(t, "", panicky{})
	res := e.run(t, `require("panicky")()`)
	if res.Status != store.StatusFailed || !strings.Contains(res.Error, "index out of range") || strings.Contains(res.Error, "goroutine ") {
		t.Fatalf("got %s %q, want failed with the panic's message and no Go stack", res.Status, res.Error)
	}
	if res := e.run(t, `assert(1 + 1 == 2)`); !res.Succeeded() {
		t.Fatalf("after the panic: %s %s", res.Status, res.Error)
	}
}
