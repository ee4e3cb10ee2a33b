package iloapi

import (
	"context"
	"time"

	"github.com/lightsout/lightsout/runtime/module"
)

// WaitUntilUp waits for an iLO to answer again after a reset: it sleeps
// settle, then calls probe every interval until it succeeds, fails with
// not_supported or login_failed (no point in waiting), or limit passes
// (transient).
func WaitUntilUp(ctx context.Context, op string, settle, interval, limit time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	wait := settle
	var last error
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			msg := "iLO did not come back after reset"
			if last != nil {
				msg += ": " + last.Error()
			}
			return Transient(op, msg, ctx.Err())
		case <-t.C:
		}
		err := probe(ctx)
		if err == nil {
			return nil
		}
		if IsNotSupported(err) || module.CodeOf(err) == module.CodeLoginFailed {
			return err
		}
		last = err
		wait = interval
	}
}
