package module

import (
	"context"
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// The Lua face of every binding has one shape:
//
//   - an [API] table: the functions `require(name)` returns, by name, each a
//     [Func] bound to the binding's value for the run;
//   - a [Type] for each kind of object a function hands back (ilo.client):
//     a typed userdata whose methods are an API of that type, and whose
//     Check function other bindings use to take it as an argument;
//   - every argument read through [Args] and every options table through
//     [Opts], so that a bad argument raises invalid_argument naming the
//     argument (or option) and the fix;
//   - err.operation is always "<module>.<function>" (the API builds it:
//     a binding never spells it by hand);
//   - a function acting on a node takes it as an optional argument
//     ([Args.Node]): nil or absent means the run's node.

// Func is one function of a binding's Lua face. b is the binding's value
// for the run (or the object, for a [Type]'s methods); a reads the call's
// arguments. It pushes its results and returns how many.
type Func[B any] func(b B, a *Args) int

// API is a binding's Lua face: its functions by name.
type API[B any] map[string]Func[B]

// Names returns the function names, sorted.
func (api API[B]) Names() []string {
	out := make([]string, 0, len(api))
	for k := range api {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Table builds the table `require(module)` returns for one run: every
// function of api bound to b, raising its errors as "<module>.<name>".
func (api API[B]) Table(L *lua.LState, module string, b B) *lua.LTable {
	t := L.CreateTable(0, len(api))
	for name, fn := range api {
		op, fn := module+"."+name, fn
		t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			return fn(b, &Args{L: L, Op: op})
		}))
	}
	return t
}

// Type is a typed userdata of a binding, e.g. ilo.client: Name is its
// type name ("ilo.client", also the metatable's registry key), Module the
// module whose operations its methods are (errors read "ilo.<method>"),
// From says where scripts get one (for error messages: "ilo.connect(node)").
type Type[T any] struct {
	Name   string
	Module string
	From   string
}

// Register creates the type's metatable with methods (called with a
// colon: obj:method(...)) and a __tostring from str (nil: the type name).
func (ty Type[T]) Register(L *lua.LState, methods API[T], str func(T) string) {
	mt := L.NewTypeMetatable(ty.Name)
	idx := L.CreateTable(0, len(methods))
	for name, fn := range methods {
		op, fn := ty.Module+"."+name, fn
		idx.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			a := &Args{L: L, Op: op, method: true}
			return fn(ty.Check(a, 1), a)
		}))
	}
	mt.RawSetString("__index", idx)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		s := ty.Name
		if ud, ok := L.Get(1).(*lua.LUserData); ok {
			if v, ok := ud.Value.(T); ok && str != nil {
				s = str(v)
			}
		}
		L.Push(lua.LString(s))
		return 1
	}))
}

// New wraps v as a userdata of the type (Register must have run in L).
func (ty Type[T]) New(L *lua.LState, v T) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = v
	L.SetMetatable(ud, L.GetTypeMetatable(ty.Name))
	return ud
}

// Check returns argument n as the type's value, or raises invalid_argument
// naming a's operation, the argument and where to get one.
func (ty Type[T]) Check(a *Args, n int) T {
	if v, ok := ty.Test(a.L.Get(n)); ok {
		return v
	}
	hint := ""
	if ty.From != "" {
		hint = " from " + ty.From
	}
	if a.method && n == 1 {
		hint += " (call methods with a colon: obj:method())"
	}
	a.Invalid("argument #%d must be a %s%s, got %s", a.pos(n), ty.Name, hint, a.L.Get(n).Type())
	var zero T
	return zero
}

// Test reports whether v is a userdata holding the type's value.
func (ty Type[T]) Test(v lua.LValue) (T, bool) {
	if ud, ok := v.(*lua.LUserData); ok {
		if t, ok := ud.Value.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// Args reads the arguments of one call of a binding function named Op
// ("<module>.<function>"). Every reader raises invalid_argument naming Op,
// the argument and what it must be; none returns after raising.
type Args struct {
	L  *lua.LState
	Op string

	method bool // a method: argument 1 is the object, #2 is the first the script sees
}

// pos is the position of argument n as the script counts it.
func (a *Args) pos(n int) int {
	if a.method && n > 1 {
		return n - 1
	}
	return n
}

// Invalid raises an invalid_argument error of a's operation.
func (a *Args) Invalid(format string, args ...any) {
	a.L.Error(ErrorValue(a.L, CodeInvalid, a.Op, fmt.Sprintf(format, args...)), 1)
}

// Raise raises err as an error of a's operation (its code kept, see [Raise]).
func (a *Args) Raise(err error) { Raise(a.L, a.Op, err) }

// Check raises err (when non-nil) as an error of a's operation.
func (a *Args) Check(err error) {
	if err != nil {
		a.Raise(err)
	}
}

// Do records fn as one call event named a.Op and raises its error (see [Do]).
func (a *Args) Do(r Run, fields map[string]any, fn func(ctx context.Context) error) {
	Do(a.L, r, a.Op, fields, fn)
}

// String returns argument n, a string (a number is converted, as Lua does).
func (a *Args) String(n int, name string) string {
	switch v := a.L.Get(n).(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	}
	a.Invalid("argument #%d (%s) must be a string, got %s", a.pos(n), name, a.L.Get(n).Type())
	return ""
}

// NonEmpty returns argument n, a non-empty string (a path, a name).
func (a *Args) NonEmpty(n int, name string) string {
	if v, ok := a.L.Get(n).(lua.LString); ok && v != "" {
		return string(v)
	}
	a.Invalid("argument #%d (%s) must be a non-empty string, got %s", a.pos(n), name, describe(a.L.Get(n)))
	return ""
}

// OptString returns argument n, a string, or def when it is nil or absent.
func (a *Args) OptString(n int, name, def string) string {
	if a.L.Get(n) == lua.LNil {
		return def
	}
	return a.String(n, name)
}

// Bool returns argument n, a boolean.
func (a *Args) Bool(n int, name string) bool {
	if v, ok := a.L.Get(n).(lua.LBool); ok {
		return bool(v)
	}
	a.Invalid("argument #%d (%s) must be a boolean, got %s", a.pos(n), name, a.L.Get(n).Type())
	return false
}

// OptTable returns argument n, a table, or an empty table when it is nil
// or absent.
func (a *Args) OptTable(n int, name string) *lua.LTable {
	switch v := a.L.Get(n).(type) {
	case *lua.LTable:
		return v
	case *lua.LNilType:
		return a.L.NewTable()
	}
	a.Invalid("argument #%d (%s) must be a table, got %s", a.pos(n), name, a.L.Get(n).Type())
	return nil
}

// Opts returns argument n, the options table ({key = value, ...}; nil or
// absent: no options).
func (a *Args) Opts(n int) Opts {
	return Opts{a: a, T: a.OptTable(n, "opts"), name: "opts"}
}

// Node returns argument n as the run's node UUID: nil or absent (the run's
// node), the run's node table, UUID or name. Another node, or any node in
// a node-less run, is refused with forbidden (see [NodeArg]).
func (a *Args) Node(r Run, n int) string {
	return NodeArg(a.L, r, n, a.Op)
}

func describe(v lua.LValue) string {
	switch x := v.(type) {
	case lua.LString:
		if x == "" {
			return "an empty string"
		}
	case lua.LNumber:
		return x.String()
	}
	return v.Type().String()
}
