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
		"find":  g.strFind,
		"match": g.strMatch,
		"gsub":  g.strGsub,
	})
	gmatch := L.NewClosure(g.strGmatch, L.NewFunction(g.strGmatchIter))
	str.RawSetString("gmatch", gmatch)
	str.RawSetString("gfind", gmatch)

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

// The pattern functions below keep gopher-lua's argument handling and
// results exactly (see stringlib.go) over the interruptible matcher.

func (g *guard) compile(L *lua.LState, pat string) *luapattern.Pattern {
	p, err := luapattern.Compile(pat)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return p
}

func (g *guard) next(L *lua.LState, it *luapattern.Iter) *luapattern.Match {
	m, err := it.Next()
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return m
}

func pushCaptures(L *lua.LState, str string, m *luapattern.Match, from int) {
	for i := from; i < m.Len(); i += 2 {
		if m.IsPos(i) {
			L.Push(lua.LNumber(m.At(i)))
		} else {
			L.Push(lua.LString(str[m.At(i):m.At(i+1)]))
		}
	}
}

func (g *guard) strFind(L *lua.LState) int {
	str := L.CheckString(1)
	pattern := L.CheckString(2)
	if len(pattern) == 0 {
		L.Push(lua.LNumber(1))
		L.Push(lua.LNumber(0))
		return 2
	}
	init := strIndex(str, L.OptInt(3, 1), true)
	if L.GetTop() == 4 && lua.LVAsBool(L.Get(4)) {
		pos := strings.Index(str[init:], pattern)
		if pos < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init+pos) + 1)
		L.Push(lua.LNumber(init + pos + len(pattern)))
		return 2
	}
	m := g.next(L, g.compile(L, pattern).Iter(L.Context(), str, init, 1))
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(m.At(0) + 1))
	L.Push(lua.LNumber(m.At(1)))
	pushCaptures(L, str, m, 2)
	return m.Len()/2 + 1
}

func (g *guard) strMatch(L *lua.LState) int {
	str := L.CheckString(1)
	pattern := L.CheckString(2)
	offset := L.OptInt(3, 1)
	if offset < 0 {
		offset = len(str) + offset + 1
	}
	offset = max(offset-1, 0)
	m := g.next(L, g.compile(L, pattern).Iter(L.Context(), str, offset, 1))
	if m == nil {
		L.Push(lua.LNil)
		return 0 // gopher-lua returns no value when nothing matches
	}
	if m.Len() == 2 {
		L.Push(lua.LString(str[m.At(0):m.At(1)]))
		return 1
	}
	pushCaptures(L, str, m, 2)
	return m.Len()/2 - 1
}

type gmatchState struct {
	str string
	it  *luapattern.Iter
}

func (g *guard) strGmatch(L *lua.LState) int {
	str := L.CheckString(1)
	p := g.compile(L, L.CheckString(2))
	L.Push(L.Get(lua.UpvalueIndex(1)))
	ud := L.NewUserData()
	ud.Value = &gmatchState{str: str, it: p.Iter(L.Context(), str, 0, -1)}
	L.Push(ud)
	return 2
}

func (g *guard) strGmatchIter(L *lua.LState) int {
	st, ok := L.CheckUserData(1).Value.(*gmatchState)
	if !ok {
		L.ArgError(1, "gmatch state expected")
	}
	m := g.next(L, st.it)
	if m == nil {
		return 0
	}
	if m.Len() == 2 {
		L.Push(lua.LString(st.str[m.At(0):m.At(1)]))
		return 1
	}
	pushCaptures(L, st.str, m, 2)
	return m.Len()/2 - 1
}

func (g *guard) strGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.CheckAny(3)
	limit := L.OptInt(4, -1)
	it := g.compile(L, pat).Iter(L.Context(), str, 0, limit)
	var out strings.Builder
	last, count := 0, 0
	for m := g.next(L, it); m != nil; m = g.next(L, it) {
		count++
		start, end := m.At(0), m.At(1)
		var rep string
		replace := true
		switch r := repl.(type) {
		case lua.LString:
			rep = gsubString(L, str, string(r), m)
		case *lua.LTable:
			idx := 0
			if m.Len() > 2 {
				idx = 2
			}
			var v lua.LValue
			if m.IsPos(idx) {
				v = L.GetTable(r, lua.LNumber(m.At(idx)))
			} else {
				v = L.GetField(r, str[m.At(idx):m.At(idx+1)])
			}
			replace, rep = !lua.LVIsFalse(v), lua.LVAsString(v)
		case *lua.LFunction:
			L.Push(r)
			nargs := 0
			if m.Len() > 2 {
				for i := 2; i < m.Len(); i += 2 {
					if m.IsPos(i) {
						L.Push(lua.LNumber(m.At(i)))
					} else {
						L.Push(lua.LString(capturedString(L, m, str, i)))
					}
					nargs++
				}
			} else {
				L.Push(lua.LString(capturedString(L, m, str, 0)))
				nargs++
			}
			L.Call(nargs, 1)
			v := L.Get(-1)
			L.Pop(1)
			replace, rep = !lua.LVIsFalse(v), lua.LVAsString(v)
		}
		if !replace {
			continue
		}
		// gopher-lua splices each replacement at the match's offsets in
		// the string built so far; matches never overlap, so this is the
		// subject between matches plus the replacements.
		if start >= last {
			out.WriteString(str[last:start])
		}
		g.checkSize(L, "string.gsub", float64(out.Len()+len(rep)+len(str)-max(end, last)))
		out.WriteString(rep)
		last = max(end, last)
	}
	if count == 0 {
		L.SetTop(1)
		L.Push(lua.LNumber(0))
		return 2
	}
	out.WriteString(str[min(last, len(str)):])
	L.Push(lua.LString(out.String()))
	L.Push(lua.LNumber(count))
	return 2
}

// gsubString expands a gsub replacement string the way gopher-lua does:
// "%%" is "%", "%d" a capture, "%x" for another x stays "%x", and a
// trailing "%" stays.
func gsubString(L *lua.LState, str, repl string, m *luapattern.Match) string {
	if strings.IndexByte(repl, '%') < 0 {
		return repl
	}
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c == '%' && i+1 < len(repl) {
			d := repl[i+1]
			i++
			switch {
			case d == '%':
				b.WriteByte('%')
			case d >= '0' && d <= '9':
				b.WriteString(capturedString(L, m, str, 2*int(d-'0')))
			default:
				b.WriteByte('%')
				b.WriteByte(d)
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func capturedString(L *lua.LState, m *luapattern.Match, str string, idx int) string {
	if idx > 2 && idx >= m.Len() {
		L.RaiseError("invalid capture index")
	}
	if idx >= m.Len() && idx == 2 {
		idx = 0
	}
	if m.IsPos(idx) {
		return strconv.Itoa(m.At(idx))
	}
	return str[m.At(idx):m.At(idx+1)]
}

// strIndex is gopher-lua's luaIndex2StringIndex.
func strIndex(str string, i int, start bool) int {
	if start && i != 0 {
		i--
	}
	l := len(str)
	if i < 0 {
		i = l + i + 1
	}
	i = max(0, i)
	if !start && i > l {
		i = l
	}
	return i
}
