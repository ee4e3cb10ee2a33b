package runtime

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/luapattern"
)

// bound replaces the library functions that can build unbounded strings,
// spin without checking the run's context, or create coroutines, with
// versions bounded by g; and removes debug helpers that dump internals.
func (g *guard) bound(L *lua.LState) {
	L.G.Global.RawSetString("_printregs", lua.LNil)

	str := L.GetGlobal("string").(*lua.LTable)
	origRep := str.RawGetString("rep").(*lua.LFunction)
	origFormat := str.RawGetString("format").(*lua.LFunction)
	L.SetFuncs(str, map[string]lua.LGFunction{
		"rep": func(L *lua.LState) int {
			s := L.CheckString(1)
			n := L.CheckInt(2)
			g.checkSize(L, "string.rep", float64(len(s))*float64(n))
			return forward(L, origRep)
		},
		"format": func(L *lua.LState) int {
			g.checkSize(L, "string.format", formatSize(L))
			return forward(L, origFormat)
		},
	})
	// find, match, gmatch and gsub over the interruptible matcher.
	(&luapattern.Lib{CheckSize: g.checkSize}).Install(L, str)

	tab := L.GetGlobal("table").(*lua.LTable)
	origConcat := tab.RawGetString("concat").(*lua.LFunction)
	tab.RawSetString("concat", L.NewFunction(func(L *lua.LState) int {
		g.checkSize(L, "table.concat", concatSize(L))
		return forward(L, origConcat)
	}))

	co := L.GetGlobal("coroutine").(*lua.LTable)
	origCreate := co.RawGetString("create").(*lua.LFunction)
	origWrap := co.RawGetString("wrap").(*lua.LFunction)
	co.RawSetString("create", L.NewFunction(func(L *lua.LState) int {
		L.CheckFunction(1)
		g.admitCoroutine(L)
		n := forward(L, origCreate)
		g.track(L.CheckThread(-1))
		return n
	}))
	co.RawSetString("wrap", L.NewFunction(func(L *lua.LState) int {
		L.CheckFunction(1)
		g.admitCoroutine(L)
		n := forward(L, origWrap)
		fn := L.CheckFunction(-1)
		if len(fn.Upvalues) > 0 {
			if th, ok := fn.Upvalues[0].Value().(*lua.LState); ok {
				g.track(th)
			}
		}
		return n
	}))
}

// forward calls fn with this call's arguments and returns its results.
func forward(L *lua.LState, fn *lua.LFunction) int {
	top := L.GetTop()
	L.Push(fn)
	for i := 1; i <= top; i++ {
		L.Push(L.Get(i))
	}
	L.Call(top, lua.MultRet)
	return L.GetTop() - top
}

// formatSize over-estimates the length of string.format's result: the
// format, every argument's string form, and each directive's width and
// precision (which Go's fmt caps at 1e6).
func formatSize(L *lua.LState) float64 {
	f := L.CheckString(1)
	n := float64(len(f))
	for i := 2; i <= L.GetTop(); i++ {
		if s, ok := L.Get(i).(lua.LString); ok {
			n += float64(len(s))
		}
		n += 32
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		for _, part := range []bool{true, false} {
			if !part {
				if i >= len(f) || f[i] != '.' {
					break
				}
				i++
			}
			j := i
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
			if w, err := strconv.Atoi(f[j:i]); err == nil {
				n += float64(min(w, 1_000_000))
			} else if i > j {
				n += 1_000_000
			}
		}
	}
	return n
}

// concatSize is the length of table.concat's result.
func concatSize(L *lua.LState) float64 {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	n := t.Len()
	i, j := L.OptInt(3, 1), L.OptInt(4, n)
	i, j = max(i, 1), min(j, n)
	total := 0.0
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			total += float64(len(v))
		case lua.LNumber:
			total += float64(len(v.String()))
		}
		if k < j {
			total += float64(len(sep))
		}
	}
	return total
}
