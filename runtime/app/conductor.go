package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// conductor is this process registered in a shared (PostgreSQL) store: it
// heartbeats every [conductor] heartbeat_interval, extending its node
// leases, and takes over the processes whose heartbeat stopped for longer
// than [conductor] heartbeat_timeout (their runs interrupted, their nodes
// released), as Ironic's conductors do.
type conductor struct {
	st       store.Leaser
	id       int64
	timeout  time.Duration
	interval time.Duration
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
}

func startConductor(ctx context.Context, st store.Leaser, timeout, interval time.Duration, log *slog.Logger) (*conductor, error) {
	host, _ := os.Hostname()
	reg, err := st.RegisterConductor(ctx, host, os.Getpid(), time.Now())
	if err != nil {
		return nil, err
	}
	c := &conductor{st: st, id: reg.ID, timeout: timeout, interval: min(interval, timeout/2), log: log, done: make(chan struct{})}
	c.takeOver(ctx) // a process that starts cleans up after dead ones at once
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.loop(loopCtx)
	return c, nil
}

func (c *conductor) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.st.Heartbeat(ctx, c.id, c.timeout, time.Now())
		if errors.Is(err, store.ErrFenced) {
			// Our runs were interrupted by another process; each sees the
			// abort request recorded with it and stops; nothing we write
			// for them is accepted any more.
			c.log.Error("this process lost its node leases: another process took over", "conductor", c.id, "err", err)
			return
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("heartbeat", "conductor", c.id, "err", err)
			continue
		}
		c.takeOver(ctx)
	}
}

func (c *conductor) takeOver(ctx context.Context) {
	runs, err := c.st.TakeOver(ctx, c.id, c.timeout, time.Now())
	if err != nil && ctx.Err() == nil {
		c.log.Warn("take over the nodes of stopped processes", "err", err)
	}
	if len(runs) > 0 {
		c.log.Warn("took over the nodes of a process whose heartbeat stopped; its runs are interrupted", "runs", runs)
	}
}

// close stops heartbeating and unregisters (the engine is closed first).
func (c *conductor) close() error {
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.st.UnregisterConductor(ctx, c.id)
}
