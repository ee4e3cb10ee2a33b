package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// A script whose pcall caught the run's cancellation before the Lua
// state's own context was cancelled (the window between a parent context
// closing and its children) must not drop its failure path: run.on_abort(nil)
// raises the cancellation and keeps the handler for the engine to run.
func TestOnAbortNilAfterCancellationKeepsHandler(t *testing.T) {
	tests := []struct {
		name      string
		cancelled bool
		wantErr   string
		wantKept  bool
	}{
		{name: "run going on", cancelled: false, wantKept: false},
		{name: "run cancelled", cancelled: true, wantErr: "context canceled", wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &Run{ctx: ctx, script: &Script{Name: "t"}}
			L := lua.NewState() // no context: the state's cancellation lags the run's
			defer L.Close()
			L.SetGlobal("run", r.runTable(L))
			if err := L.DoString(`run.on_abort(function() end)`); err != nil {
				t.Fatal(err)
			}
			if tt.cancelled {
				cancel()
			}
			err := L.DoString(`run.on_abort(nil)`)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("on_abort(nil): %v", err)
			}
			if tt.wantErr != "" {
				var ae *lua.ApiError
				if !errors.As(err, &ae) || !strings.Contains(luaErrorString(ae.Object), tt.wantErr) {
					t.Fatalf("on_abort(nil) = %v, want an error with %q", err, tt.wantErr)
				}
			}
			if kept := r.onAbort != nil; kept != tt.wantKept {
				t.Fatalf("handler kept = %v, want %v", kept, tt.wantKept)
			}
		})
	}
}
