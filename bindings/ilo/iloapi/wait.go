package iloapi

import (
	"context"
	"time"
)

// WaitUntilUp waits for an iLO to answer again after a reset. A reset iLO
// keeps answering for a moment before it goes down, so answers right after
// the reset prove nothing: first it probes often (every min(interval,
// 500 ms), each probe bounded by that) until a probe fails — the iLO went
// down — or settle passes; then it probes every interval until the iLO
// answers again. It gives up with
// transient when limit passes, and at once on not_supported or
// login_failed (waiting will not help).
func WaitUntilUp(ctx context.Context, op string, settle, interval, limit time.Duration, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	gaveUp := func() error {
		msg := "iLO did not come back after reset"
		if last != nil {
			msg += ": " + last.Error()
		}
		return Transient(op, msg, ctx.Err())
	}
	fatal := func(err error) bool {
		return IsNotSupported(err) || KindOf(err) == KindLoginFailed
	}
	step := min(interval, 500*time.Millisecond)
	for settleEnd := time.Now().Add(settle); last == nil && time.Now().Before(settleEnd); {
		if !sleepCtx(ctx, min(step, time.Until(settleEnd))) {
			return gaveUp()
		}
		pctx, pcancel := context.WithTimeout(ctx, step)
		err := probe(pctx)
		pcancel()
		if err != nil && fatal(err) {
			return err
		}
		last = err // non-nil: it went down
	}
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		if fatal(err) {
			return err
		}
		last = err
		if !sleepCtx(ctx, interval) {
			return gaveUp()
		}
	}
}

// sleepCtx sleeps d, or returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
