package daemon

import (
	"context"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
)

// pruneInterval is how often serve prunes old run events.
const pruneInterval = time.Hour

// Pruner deletes old run events ([lightsout] run_retention) at start and
// then hourly; it does nothing when no retention is set.
type Pruner struct {
	a      *app.App
	cancel context.CancelFunc
	done   chan struct{}
}

// EventPruner returns the pruning service of a.
func EventPruner(a *app.App) *Pruner { return &Pruner{a: a} }

// Name implements Service.
func (p *Pruner) Name() string { return "run event pruner" }

// Start implements Service.
func (p *Pruner) Start(ctx context.Context) error {
	r := p.a.Retention()
	if r.Succeeded <= 0 && r.Failed <= 0 {
		return nil
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(pruneInterval)
		defer t.Stop()
		for {
			n, err := p.a.PruneEvents(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				p.a.Log.Warn("prune run events", "err", err)
			case n > 0:
				p.a.Log.Info("pruned run events", "runs", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	p.a.Log.Info("run event pruning", "retention", r.Succeeded.String(), "retention_failed", r.Failed.String())
	return nil
}

// Close implements Service.
func (p *Pruner) Close() error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	return nil
}
