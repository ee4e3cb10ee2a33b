package runtime_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/store"
)

// The failure path registered with run.on_abort runs after a cancellation
// with a context that works (its node changes succeed), for each cause; a
// run that is not cancelled never calls it; a run that ends without one in
// a transient state leaves its node in the failure state with recovery
// pending.
func TestFailurePathAfterCancellation(t *testing.T) {
	const script = `
node:transition("provide") -- manageable -> cleaning
run.on_abort(function(cause)
  node:set_last_error("handled: " .. cause)
  node:transition("fail")
end)
run.step("work", function() run.sleep(%s) end)
run.on_abort(nil)
`
	tests := []struct {
		name      string
		sleep     string
		timeout   time.Duration
		cancel    func(e *env, runID int64, cancel context.CancelCauseFunc)
		status    string
		lastError string
		state     string
		pending   bool
		withoutFn bool
	}{
		{name: "signal", sleep: "60", timeout: time.Minute, status: store.StatusCancelled,
			cancel:    func(_ *env, _ int64, c context.CancelCauseFunc) { c(errString("signal interrupt")) },
			lastError: "handled: interrupted: signal interrupt", state: "clean failed"},
		{name: "abort request", sleep: "60", timeout: time.Minute, status: store.StatusCancelled,
			cancel: func(e *env, id int64, _ context.CancelCauseFunc) {
				if err := e.st.RequestAbort(context.Background(), id, "aborted by operator"); err != nil {
					panic(err)
				}
			},
			lastError: "handled: interrupted: aborted by operator", state: "clean failed"},
		{name: "timeout", sleep: "60", timeout: 300 * time.Millisecond, status: store.StatusTimedOut,
			lastError: "handled: interrupted: timed out", state: "clean failed"},
		{name: "no cancellation", sleep: "0", timeout: time.Minute, status: store.StatusSucceeded, state: "cleaning"},
		{name: "no failure path", sleep: "60", timeout: 300 * time.Millisecond, status: store.StatusTimedOut,
			withoutFn: true, lastError: "ended in cleaning", state: "clean failed", pending: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			src := strings.Replace(script, "%s", tt.sleep, 1)
			if tt.withoutFn {
				src = "node:transition(\"provide\")\nrun.step(\"work\", function() run.sleep(60) end)\n"
			}
			p := writeFile(t, t.TempDir(), "s.lua", src)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			started := make(chan int64, 1)
			done := make(chan runtime.Result, 1)
			go func() {
				res, err := e.eng.Run(ctx, runtime.RunRequest{Script: p, Node: "n1", Timeout: tt.timeout,
					OnStep: func(id int64, _, step string) {
						if step == "work" {
							started <- id
						}
					}})
				if err != nil {
					t.Errorf("run: %v", err)
				}
				done <- res
			}()
			var id int64
			select {
			case id = <-started:
			case res := <-done:
				t.Fatalf("the run ended before its step: %+v", res)
			}
			if tt.cancel != nil {
				tt.cancel(e, id, cancel)
			}
			var res runtime.Result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the run did not stop")
			}
			n, _ := e.st.GetNode(context.Background(), "n1")
			if res.Status != tt.status || n.ProvisionState != tt.state || !strings.Contains(n.LastError, tt.lastError) {
				t.Fatalf("status %s (%s), node %s last_error %q; want %s, %s, %q",
					res.Status, res.Error, n.ProvisionState, n.LastError, tt.status, tt.state, tt.lastError)
			}
			if _, pending := n.DriverInternalInfo[store.RecoveryKey]; pending != tt.pending {
				t.Fatalf("recovery pending %v, want %v", pending, tt.pending)
			}
			if n.Reservation != 0 {
				t.Fatalf("node still locked by %d", n.Reservation)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }
