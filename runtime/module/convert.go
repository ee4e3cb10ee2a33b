package module

import (
	"fmt"
	"math"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// ToLua converts a JSON-like Go value (nil, bool, numbers, string, []any,
// []string, map[string]any, map[string]string) to a Lua value.
func ToLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case lua.LValue:
		return x
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case int32:
		return lua.LNumber(x)
	case uint64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case float32:
		return lua.LNumber(x)
	case []string:
		t := L.CreateTable(len(x), 0)
		for _, s := range x {
			t.Append(lua.LString(s))
		}
		return t
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(ToLua(L, e))
		}
		return t
	case []map[string]any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(ToLua(L, e))
		}
		return t
	case map[string]string:
		t := L.CreateTable(0, len(x))
		for k, s := range x {
			t.RawSetString(k, lua.LString(s))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, ToLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// FromLua converts a Lua value to a JSON-like Go value. A table whose keys
// are exactly 1..n becomes []any (an empty table becomes map[string]any),
// otherwise map[string]any with string keys. Functions and userdata become
// their type name.
func FromLua(v lua.LValue) any {
	return fromLua(v, 0)
}

func fromLua(v lua.LValue, depth int) any {
	if depth > 64 {
		return "<too deep>"
	}
	switch x := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(x)
	case lua.LString:
		return string(x)
	case lua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case *lua.LTable:
		n := x.Len()
		count := 0
		x.ForEach(func(lua.LValue, lua.LValue) { count++ })
		if n > 0 && n == count {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, fromLua(x.RawGetInt(i), depth+1))
			}
			return arr
		}
		m := make(map[string]any, count)
		x.ForEach(func(k, val lua.LValue) {
			m[lua.LVAsString(k)] = fromLua(val, depth+1)
			if _, ok := k.(lua.LString); !ok {
				if _, ok := k.(lua.LNumber); !ok {
					m[k.String()] = fromLua(val, depth+1)
				}
			}
		})
		return m
	}
	return v.Type().String()
}

// StringMap reads a Lua table of scalar values into map[string]string
// (non-string values are converted with tostring semantics). A nil or
// missing table gives an empty map.
func StringMap(v lua.LValue) map[string]string {
	out := map[string]string{}
	t, ok := v.(*lua.LTable)
	if !ok {
		return out
	}
	t.ForEach(func(k, val lua.LValue) {
		out[lua.LVAsString(k)] = val.String()
	})
	return out
}

// SortedKeys returns the keys of m in sorted order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
