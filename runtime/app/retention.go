package app

import (
	"context"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// Retention is [lightsout] run_retention and run_retention_failed (3x
// run_retention when unset); zero durations keep events forever.
func (a *App) Retention() store.Retention {
	r := store.Retention{Succeeded: a.Config.Duration("lightsout", "run_retention", 0)}
	r.Failed = a.Config.Duration("lightsout", "run_retention_failed", 3*r.Succeeded)
	return r
}

// PruneEvents deletes the events of runs older than the retention and
// returns how many runs lost theirs.
func (a *App) PruneEvents(ctx context.Context) (int, error) {
	r := a.Retention()
	if r.Succeeded <= 0 && r.Failed <= 0 {
		return 0, nil
	}
	return a.Store.PruneEvents(ctx, r, time.Now())
}
