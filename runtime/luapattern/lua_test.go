package luapattern

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// patternDriver runs one pattern operation and serialises its results
// (count, then type:value of each), "error" when it raised.
const patternDriver = `
local function ser(...)
  local t = {tostring(select('#', ...))}
  for i = 1, select('#', ...) do local v = select(i, ...) t[#t+1] = type(v) .. ":" .. tostring(v) end
  return table.concat(t, "|")
end
local repl_t = {a = "1", b = true, c = false, [1] = "one", [2] = 22, x = "X"}
local function repl_f(...)
  local n = select('#', ...)
  local v = ...
  if v == "b" then return false end
  if v == "c" then return nil end
  if v == "d" then return 4 end
  local t = {}
  for i = 1, n do t[i] = tostring((select(i, ...))) end
  return "<" .. table.concat(t, ",") .. ">"
end
function drive(op, s, p, a, n, r)
  local ok, res = pcall(function()
    if op == "find" then return ser(string.find(s, p, a))
    elseif op == "find_method" then return ser(s:find(p, a))
    elseif op == "find_plain" then return ser(string.find(s, p, a, true))
    elseif op == "match" then return ser(string.match(s, p, a))
    elseif op == "match_method" then return ser(s:match(p))
    elseif op == "gmatch" then
      local out = {}
      for x, y, z in s:gmatch(p) do out[#out+1] = ser(x, y, z) end
      return table.concat(out, ";")
    elseif op == "gsub_string" then return ser(string.gsub(s, p, r, n))
    elseif op == "gsub_table" then return ser(s:gsub(p, repl_t, n))
    elseif op == "gsub_function" then return ser(s:gsub(p, repl_f, n))
    end
  end)
  if not ok then return "error" end
  return res
end
`

var patternOps = []string{"find", "find_method", "find_plain", "match", "match_method", "gmatch", "gsub_string", "gsub_table", "gsub_function"}

type patternPair struct {
	ref, ours *lua.LState
}

// newPatternPair returns a plain gopher-lua state (the reference) and one
// with the engine's bounded string library, both loaded with the driver.
func newPatternPair(t testing.TB, ctx context.Context) *patternPair {
	t.Helper()
	ref := lua.NewState()
	ours := lua.NewState()
	ours.SetContext(ctx)
	(&Lib{}).Install(ours, ours.GetGlobal("string").(*lua.LTable))
	for _, L := range []*lua.LState{ref, ours} {
		if err := L.DoString(patternDriver); err != nil {
			t.Fatal(err)
		}
	}
	pp := &patternPair{ref: ref, ours: ours}
	t.Cleanup(func() { ref.Close(); ours.Close() })
	return pp
}

func drive(L *lua.LState, op, s, p string, init, n int, repl string) (string, error) {
	err := L.CallByParam(lua.P{Fn: L.GetGlobal("drive"), NRet: 1, Protect: true},
		lua.LString(op), lua.LString(s), lua.LString(p), lua.LNumber(init), lua.LNumber(n), lua.LString(repl))
	if err != nil {
		return "", err
	}
	v := L.Get(-1)
	L.Pop(1)
	return v.String(), nil
}

// compare runs op on both states; ours first, bounded by its context so an
// exponential input is skipped rather than run on the uninterruptible
// reference.
func (pp *patternPair) compare(t testing.TB, op, s, p string, init, n int, repl string) {
	t.Helper()
	got, err := drive(pp.ours, op, s, p, init, n, repl)
	if err != nil || got == "error" && pp.ours.Context().Err() != nil {
		if errors.Is(pp.ours.Context().Err(), context.DeadlineExceeded) || strings.Contains(got+errString(err), "deadline") {
			t.Skipf("too slow: %s %q %q", op, s, p)
		}
		t.Fatalf("%s(%q, %q): %v", op, s, p, err)
	}
	want, err := drive(pp.ref, op, s, p, init, n, repl)
	if err != nil {
		t.Fatalf("reference %s(%q, %q): %v", op, s, p, err)
	}
	if got != want {
		t.Errorf("%s(%q, %q, init=%d, n=%d, repl=%q):\n got %s\nwant %s", op, s, p, init, n, repl, got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPatternFunctionsMatchGopherLua(t *testing.T) {
	pp := newPatternPair(t, context.Background())
	subjects := []string{"", "a", "hello world", "  key = value  ", "a,b,,c", "(foo(bar))baz", "THE (quick) fox",
		"x=1, y=22, z=333", "aaa", "abcabc", "\x00\x01 tab\there\n", "éàü utf8", "[[nested]] ]]", "a.b-c+d*e?f", "ab%cd$"}
	patterns := []string{"", "a", ".", "%a+", "%d+", "(%w+)=(%w+)", "^%s*(.-)%s*$", "()", "()a()", "(a)(b)(c)", "%b()", "%b[]",
		"[%a_][%w_]*", "[^,]*", "[a-c]+", "[%d%s]", "[]]", "[^]]", "[a-]", "[%a-z]", "^a", "a$", "^$", "a*", "a-", "a?b", "a+",
		"(a*(.)%w(%s*))", "(.)%1", "((a)%2)", "%1", "(", ")", "%", "[a", "%f[%w]", "%z", "%Z+", "%p+", "%c", "%x+", "%u%l",
		"$a", "a$b", "^^", ".-b", "(.-),", "(%w+)%s*=%s*(%w+)", "[%.%-%+%*%?]", "%%", "%$", "(()(a))", "%bxy", "%b"}
	repls := []string{"", "x", "%0", "%1", "%2", "<%1|%0>", "%%", "%", "%a", "100%"}
	for _, s := range subjects {
		for _, p := range patterns {
			for _, op := range patternOps {
				for _, init := range []int{1, 3, -2, 0, 99} {
					for _, n := range []int{-1, 0, 1, 2} {
						if !strings.HasPrefix(op, "gsub") && n != -1 || strings.HasPrefix(op, "gsub") && init != 1 {
							continue
						}
						rs := repls[:1]
						if op == "gsub_string" {
							rs = repls
						}
						for _, r := range rs {
							pp.compare(t, op, s, p, init, n, r)
						}
					}
				}
			}
		}
	}
}

// The string metatable's __index is the string table, so the method form
// uses the installed functions too.
func TestStringMethodsUseInstalledFunctions(t *testing.T) {
	pp := newPatternPair(t, context.Background())
	if err := pp.ours.DoString(`assert(getmetatable("").__index == string)
		assert(("x").find == string.find and ("x").gsub == string.gsub and ("x").match == string.match and ("x").gmatch == string.gmatch)`); err != nil {
		t.Fatal(err)
	}
	if pp.ours.GetField(pp.ours.GetGlobal("string"), "find") == pp.ref.GetField(pp.ref.GetGlobal("string"), "find") {
		t.Fatal("string.find was not replaced")
	}
}

func FuzzPatternEquivalence(f *testing.F) {
	f.Add("hello world", "(%w+) (%w+)", 1, -1, "%2 %1")
	f.Add("key = value", "^%s*(.-)%s*=%s*(.-)%s*$", 1, 1, "%0")
	f.Add("(a(b)c)", "%b()", 2, 0, "[%1]")
	f.Add("aaa", "()a-()", -2, 2, "%%")
	f.Add("x,y,,z", "[^,]*", 1, -1, "<%0>")
	f.Fuzz(func(t *testing.T, s, p string, init, n int, repl string) {
		if len(s) > 64 || len(p) > 24 || len(repl) > 16 {
			t.Skip()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		pp := newPatternPair(t, ctx)
		for _, op := range patternOps {
			pp.compare(t, op, s, p, init, n, repl)
		}
	})
}
