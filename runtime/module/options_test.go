package module_test

import (
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// optsFace is a binding whose one function reads every kind of option.
func optsFace() module.API[*map[string]any] {
	return module.API[*map[string]any]{
		"read": func(out *map[string]any, a *module.Args) int {
			o := a.Opts(1)
			*out = map[string]any{
				"s": o.String("s", "def"), "i": o.Int("i", 7), "b": o.Bool("b", true),
				"d": o.Duration("d", time.Minute), "n": o.Number("n", 1.5),
			}
			return 0
		},
	}
}

func TestOptionReaders(t *testing.T) {
	tests := []struct {
		name, opts string
		want       map[string]any // nil: an error
		msg        string
	}{
		{"defaults", `nil`, map[string]any{"s": "def", "i": int64(7), "b": true, "d": time.Minute, "n": 1.5}, ""},
		{"set", `{ s = "x", i = 3, b = false, d = 0.5, n = "2" }`,
			map[string]any{"s": "x", "i": int64(3), "b": false, "d": 500 * time.Millisecond, "n": 2.0}, ""},
		{"number as string", `{ s = 42 }`, map[string]any{"s": "42", "i": int64(7), "b": true, "d": time.Minute, "n": 1.5}, ""},
		{"not a table", `"x"`, nil, "argument #1 (opts) must be a table, got string"},
		{"bad string", `{ s = {} }`, nil, "opts.s must be a string, got table"},
		{"fractional int", `{ i = 1.5 }`, nil, "opts.i must be an integer, got 1.5"},
		{"bad bool", `{ b = "yes" }`, nil, "opts.b must be a boolean, got string"},
		{"zero duration", `{ d = 0 }`, nil, "opts.d must be a positive number of seconds, got 0"},
		{"negative duration", `{ d = -1 }`, nil, "opts.d must be a positive number of seconds, got -1"},
		{"word duration", `{ d = "soon" }`, nil, "opts.d must be a positive number of seconds, got string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			L := lua.NewState()
			defer L.Close()
			var got map[string]any
			L.SetGlobal("m", optsFace().Table(L, "m", &got))
			err := L.DoString(`local ok, e = pcall(m.read, ` + tt.opts + `); if not ok then err = e end`)
			if err != nil {
				t.Fatal(err)
			}
			e, isErr := L.GetGlobal("err").(*lua.LTable)
			if tt.want == nil {
				if !isErr {
					t.Fatalf("no error, read %v", got)
				}
				if op, code, msg := lua.LVAsString(e.RawGetString("operation")), lua.LVAsString(e.RawGetString("code")),
					lua.LVAsString(e.RawGetString("message")); op != "m.read" || code != module.CodeInvalid || !strings.Contains(msg, tt.msg) {
					t.Fatalf("error %s %s %q, want m.read invalid_argument %q", op, code, msg, tt.msg)
				}
				return
			}
			if isErr {
				t.Fatalf("error %v", lua.LVAsString(e.RawGetString("message")))
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v (%T), want %v (%T)", k, got[k], got[k], v, v)
				}
			}
		})
	}
}
