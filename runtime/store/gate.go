package store

import (
	"context"
	"fmt"
	"os"
	"time"
)

// gateTimeout bounds the wait for another process's write transaction.
const gateTimeout = 30 * time.Second

// writeGate serialises the write transactions of every process using one
// SQLite database, through a blocking flock on <db>-wlock taken before
// BEGIN IMMEDIATE. A process waiting on the gate is woken by the kernel as
// soon as the lock is free, where SQLite's busy handler polls (sleeping up
// to 100 ms between tries) and can lose every race against processes that
// write in a loop, until its busy timeout fails with "database is locked".
// The kernel drops the lock of a killed process.
type writeGate struct {
	path string
	f    *os.File
	sem  chan struct{} // this process's turn (flock is per open file)
}

func newWriteGate(dbPath string) (*writeGate, error) {
	p := dbPath + "-wlock"
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the write lock %s: %w", p, err)
	}
	return &writeGate{path: p, f: f, sem: make(chan struct{}, 1)}, nil
}

// acquire waits for this process's turn, then for the other processes'.
func (g *writeGate) acquire(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gateTimeout)
	defer cancel()
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return g.timeout(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- flock(g.f.Fd()) }()
	select {
	case err := <-done:
		if err != nil {
			<-g.sem
			return fmt.Errorf("lock %s: %w", g.path, err)
		}
		return nil
	case <-ctx.Done():
		go func() { // the lock may still come: give it back
			if <-done == nil {
				_ = funlock(g.f.Fd())
			}
			<-g.sem
		}()
		return g.timeout(ctx)
	}
}

func (g *writeGate) timeout(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("database is busy: another process held the write lock %s for over %v (a stopped lightsout process? see `fuser %s`)", g.path, gateTimeout, g.path)
	}
	return ctx.Err()
}

func (g *writeGate) release() {
	_ = funlock(g.f.Fd())
	<-g.sem
}

func (g *writeGate) close() error { return g.f.Close() }
