package luapattern

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lib is the Lua face of the matcher: string.find, match, gmatch (and its
// alias gfind) and gsub with gopher-lua's argument handling and results,
// interruptible through the LState's context.
type Lib struct {
	// CheckSize, when set, is called before gsub grows its result to n
	// bytes; it raises a Lua error to refuse.
	CheckSize func(L *lua.LState, op string, n float64)
}

// Install sets the functions in str (the string library table).
func (lib *Lib) Install(L *lua.LState, str *lua.LTable) {
	if lib.CheckSize == nil {
		lib.CheckSize = func(*lua.LState, string, float64) {}
	}
	L.SetFuncs(str, map[string]lua.LGFunction{"find": lib.strFind, "match": lib.strMatch, "gsub": lib.strGsub})
	gmatch := L.NewClosure(lib.strGmatch, L.NewFunction(lib.strGmatchIter))
	str.RawSetString("gmatch", gmatch)
	str.RawSetString("gfind", gmatch)
}

// The pattern functions below keep gopher-lua's argument handling and
// results exactly (see stringlib.go) over the interruptible matcher.

func (lib *Lib) compile(L *lua.LState, pat string) *Pattern {
	p, err := Compile(pat)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return p
}

func (lib *Lib) next(L *lua.LState, it *Iter) *Match {
	m, err := it.Next()
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return m
}

func pushCaptures(L *lua.LState, str string, m *Match, from int) {
	for i := from; i < m.Len(); i += 2 {
		if m.IsPos(i) {
			L.Push(lua.LNumber(m.At(i)))
		} else {
			L.Push(lua.LString(str[m.At(i):m.At(i+1)]))
		}
	}
}

func (lib *Lib) strFind(L *lua.LState) int {
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
	m := lib.next(L, lib.compile(L, pattern).Iter(L.Context(), str, init, 1))
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LNumber(m.At(0) + 1))
	L.Push(lua.LNumber(m.At(1)))
	pushCaptures(L, str, m, 2)
	return m.Len()/2 + 1
}

func (lib *Lib) strMatch(L *lua.LState) int {
	str := L.CheckString(1)
	pattern := L.CheckString(2)
	offset := L.OptInt(3, 1)
	if offset < 0 {
		offset = len(str) + offset + 1
	}
	offset = max(offset-1, 0)
	m := lib.next(L, lib.compile(L, pattern).Iter(L.Context(), str, offset, 1))
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
	it  *Iter
}

func (lib *Lib) strGmatch(L *lua.LState) int {
	str := L.CheckString(1)
	p := lib.compile(L, L.CheckString(2))
	L.Push(L.Get(lua.UpvalueIndex(1)))
	ud := L.NewUserData()
	ud.Value = &gmatchState{str: str, it: p.Iter(L.Context(), str, 0, -1)}
	L.Push(ud)
	return 2
}

func (lib *Lib) strGmatchIter(L *lua.LState) int {
	st, ok := L.CheckUserData(1).Value.(*gmatchState)
	if !ok {
		L.ArgError(1, "gmatch state expected")
	}
	m := lib.next(L, st.it)
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

func (lib *Lib) strGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.CheckAny(3)
	limit := L.OptInt(4, -1)
	it := lib.compile(L, pat).Iter(L.Context(), str, 0, limit)
	var out strings.Builder
	last, count := 0, 0
	for m := lib.next(L, it); m != nil; m = lib.next(L, it) {
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
		lib.CheckSize(L, "string.gsub", float64(out.Len()+len(rep)+len(str)-max(end, last)))
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
func gsubString(L *lua.LState, str, repl string, m *Match) string {
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

func capturedString(L *lua.LState, m *Match, str string, idx int) string {
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
