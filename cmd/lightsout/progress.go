package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/store"
)

// liveRows bounds the live view: at most this many running nodes are drawn
// (the rest are counted on the header line).
const liveRows = 20

// progress shows per-node progress. On a terminal it is a live view
// redrawn in place: one line per running node (run, current step, elapsed
// time, last event) under a header counting finished runs, with each run's
// end printed above it as it happens. Off a terminal it writes plain lines:
// each step as it starts and, with several nodes, each run's end.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	color    bool
	total    int
	finished int
	start    time.Time
	now      func() time.Time
	rows     map[int64]*liveRow
	order    []int64
	drawn    int // lines of the live block on screen
	stop     chan struct{}
	stopped  sync.Once
	closed   bool
}

// liveRow is one running node in the live view.
type liveRow struct {
	node, step, last string
	runID            int64
	started          time.Time
}

// newProgress starts the progress of total runs written to g.stderr. On a
// terminal the log lines of the runs (written through g.logOut) are
// printed above the live view, never into it.
func newProgress(g *globals, total int) *progress {
	p := &progress{w: g.stderr, tty: isTerminal(g.stderr), total: total, start: time.Now(), now: time.Now,
		rows: map[int64]*liveRow{}, stop: make(chan struct{})}
	p.color = p.tty && colorAllowed()
	if p.tty {
		g.logOut.attach(p)
		go p.tick()
	}
	return p
}

// logMux is the log writer on a terminal: while a live view is drawn, each
// log line is printed above it.
type logMux struct {
	mu   sync.Mutex
	w    io.Writer
	live *progress
}

func (m *logMux) attach(p *progress) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.live = p
	m.mu.Unlock()
}

func (m *logMux) Write(b []byte) (int, error) {
	m.mu.Lock()
	p := m.live
	m.mu.Unlock()
	if p == nil {
		return m.w.Write(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.w.Write(b)
	}
	p.redraw(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// colorAllowed reports whether colours may be used on a terminal: NO_COLOR
// unset or empty (no-color.org) and a TERM that is not "dumb".
func colorAllowed() bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	t := os.Getenv("TERM")
	return t != "" && t != "dumb"
}

// tick redraws the live view every second (elapsed times) until close.
func (p *progress) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if !p.closed {
				p.redraw("")
			}
			p.mu.Unlock()
		}
	}
}

// close stops the redraws and clears the live block.
func (p *progress) close() {
	p.stopped.Do(func() {
		close(p.stop)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.closed = true
		if p.tty {
			p.clear()
		}
	})
}

func (p *progress) row(runID int64, node string) *liveRow {
	r := p.rows[runID]
	if r == nil {
		r = &liveRow{node: node, runID: runID, started: p.now()}
		p.rows[runID] = r
		p.order = append(p.order, runID)
	}
	return r
}

func (p *progress) step(runID int64, node, step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		if !p.quiet() {
			fmt.Fprintf(p.w, "%s (run %d): %s\n", orDash(node), runID, step)
		}
		return
	}
	r := p.row(runID, node)
	r.step = step
	p.redraw("")
}

// event notes the last event of a run (the live view's last column).
func (p *progress) event(runID int64, kind, name string, data map[string]any) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rows[runID]
	if r == nil {
		return // before the first step: nothing to show yet
	}
	r.last = lastEvent(kind, name, data)
	p.redraw("")
}

func (p *progress) done(r runtime.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	if row := p.rows[r.RunID]; row != nil {
		delete(p.rows, r.RunID)
		for i, id := range p.order {
			if id == r.RunID {
				p.order = append(p.order[:i], p.order[i+1:]...)
				break
			}
		}
	}
	if p.tty {
		status := r.Status
		if p.color {
			status = colorStatus(status)
		}
		p.redraw(fmt.Sprintf("[%d/%d] %s: run %d %s", p.finished, p.total, r.Node, r.RunID, status))
	} else if p.total > 1 && !p.quiet() {
		fmt.Fprintf(p.w, "[%d/%d] %s: run %d %s\n", p.finished, p.total, r.Node, r.RunID, r.Status)
	} else if p.total > 1 {
		// Many nodes off a terminal: the runs that did not succeed, and
		// a line at every tenth of the way.
		if r.Status != store.StatusSucceeded {
			fmt.Fprintf(p.w, "[%d/%d] %s: run %d %s\n", p.finished, p.total, r.Node, r.RunID, r.Status)
		}
		if p.finished*10/p.total != (p.finished-1)*10/p.total {
			fmt.Fprintf(p.w, "[%d/%d] %s\n", p.finished, p.total, p.rate())
		}
	}
}

// quiet reports whether plain output (off a terminal) leaves out the
// steps and the succeeded runs: over more nodes than a summary table
// replaces (their lines would drown the log).
func (p *progress) quiet() bool { return !p.tty && p.total > summaryAbove }

// rate is the elapsed time, the nodes finished per second and the
// estimated time left (from the rate so far). The caller holds p.mu.
func (p *progress) rate() string {
	el := p.now().Sub(p.start)
	s := el.Truncate(time.Second).String()
	if p.finished == 0 || el <= 0 {
		return s
	}
	perS := float64(p.finished) / el.Seconds()
	s += fmt.Sprintf(", %.1f nodes/s", perS)
	if left := p.total - p.finished; left > 0 {
		eta := time.Duration(float64(left) / perS * float64(time.Second))
		s += ", ETA " + eta.Round(time.Second).String()
	}
	return s
}

// clear erases the live block (cursor to its first line).
func (p *progress) clear() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\033[%dA\r\033[J", p.drawn)
		p.drawn = 0
	}
}

// redraw clears the live block, prints above (a finished run) when set, and
// draws the block again. The caller holds p.mu.
func (p *progress) redraw(above string) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA\r\033[J", p.drawn)
	}
	if above != "" {
		b.WriteString(above + "\n")
	}
	lines := 0
	if len(p.order) > 0 {
		fmt.Fprintf(&b, "[%d/%d] %d running, %s\n", p.finished, p.total, len(p.order), p.rate())
		lines++
		now := p.now()
		for i, id := range p.order {
			if i == liveRows {
				fmt.Fprintf(&b, "  … %d more\n", len(p.order)-liveRows)
				lines++
				break
			}
			r := p.rows[id]
			el := now.Sub(r.started).Truncate(time.Second)
			step := r.step
			if p.color {
				step = "\033[1m" + step + "\033[0m"
			}
			fmt.Fprintf(&b, "  %-12s run %-5d %-8s %s  %s\n", r.node, r.runID, el, step, cut(r.last, 80))
			lines++
		}
	}
	p.drawn = lines
	io.WriteString(p.w, b.String())
}

// lastEvent is the short form of an event for the live view.
func lastEvent(kind, name string, data map[string]any) string {
	switch kind {
	case store.EventCall:
		return fmt.Sprintf("→ %s %v", name, data["outcome"])
	case store.EventLog:
		return fmt.Sprintf("%s %v", strings.ToUpper(name), data["msg"])
	}
	return firstLine(describeEvent(store.Event{Kind: kind, Name: name, Data: data}))
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// colorStatus colours a run status: green succeeded, red otherwise.
func colorStatus(s string) string {
	if s == store.StatusSucceeded {
		return "\033[32m" + s + "\033[0m"
	}
	return "\033[31m" + s + "\033[0m"
}
