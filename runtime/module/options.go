package module

import (
	"math"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Opts reads a Lua options table ({name = ..., expires = ...}) of a call.
// Every reader returns def when the option is nil or absent and raises
// invalid_argument naming the option ("opts.expires must be ...") when it
// has the wrong type.
type Opts struct {
	a    *Args
	name string
	// T is the table itself (empty when the script passed none).
	T *lua.LTable
}

// Get returns the raw value of key (LNil when unset).
func (o Opts) Get(key string) lua.LValue { return o.T.RawGetString(key) }

func (o Opts) invalid(key, want string, v lua.LValue) {
	o.a.Invalid("%s.%s must be %s, got %s", o.name, key, want, describe(v))
}

// String returns option key, a string.
func (o Opts) String(key, def string) string {
	switch v := o.Get(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	default:
		o.invalid(key, "a string", v)
	}
	return def
}

// number returns option key as a number (a numeric string is converted,
// as Lua does) and whether it is set.
func (o Opts) number(key, want string) (float64, bool) {
	switch v := o.Get(key).(type) {
	case *lua.LNilType:
		return 0, false
	case lua.LNumber:
		return float64(v), true
	case lua.LString:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f, true
		}
		o.invalid(key, want, v)
	default:
		o.invalid(key, want, v)
	}
	return 0, false
}

// Number returns option key, a number.
func (o Opts) Number(key string, def float64) float64 {
	if f, ok := o.number(key, "a number"); ok {
		return f
	}
	return def
}

// Int returns option key, an integer.
func (o Opts) Int(key string, def int64) int64 {
	f, ok := o.number(key, "an integer")
	if !ok {
		return def
	}
	if f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
		o.invalid(key, "an integer", lua.LNumber(f))
	}
	return int64(f)
}

// Bool returns option key, a boolean.
func (o Opts) Bool(key string, def bool) bool {
	switch v := o.Get(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LBool:
		return bool(v)
	default:
		o.invalid(key, "a boolean", v)
	}
	return def
}

// Duration returns option key, a positive number of seconds (fractions
// allowed: 0.5 is 500ms).
func (o Opts) Duration(key string, def time.Duration) time.Duration {
	f, ok := o.number(key, "a positive number of seconds")
	if !ok {
		return def
	}
	if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > float64(math.MaxInt64)/float64(time.Second) {
		o.invalid(key, "a positive number of seconds", lua.LNumber(f))
	}
	return time.Duration(f * float64(time.Second))
}

// Table returns option key, a table, or nil when unset.
func (o Opts) Table(key string) *lua.LTable {
	switch v := o.Get(key).(type) {
	case *lua.LNilType:
		return nil
	case *lua.LTable:
		return v
	default:
		o.invalid(key, "a table", v)
	}
	return nil
}
