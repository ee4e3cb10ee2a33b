package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/lightsout/lightsout/runtime"
)

// progress shows per-node progress on a terminal: the current step of each
// node as it starts and each run's end; off a terminal only run ends.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	total    int
	finished int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total}
}

func (p *progress) step(runID int64, node, step string) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s (run %d): %s", p.finished, p.total, node, runID, step)
}

func (p *progress) done(r runtime.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s: %s\n", p.finished, p.total, r.Node, r.Status)
	} else if p.total > 1 {
		fmt.Fprintf(p.w, "[%d/%d] %s: run %d %s\n", p.finished, p.total, r.Node, r.RunID, r.Status)
	}
}
