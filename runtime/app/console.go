package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// EventConsole is the kind of the event that carries the serial console
// output captured while a provisioning run ran (data: "output", the last
// ConsoleRingSize bytes, redacted; "bytes", all bytes read; "truncated").
const EventConsole = "console"

// ConsoleRingSize bounds the console output kept per run (the last bytes).
const ConsoleRingSize = 256 << 10

// consoleScripts are the playbooks whose runs capture the node's console.
var consoleScripts = map[string]bool{ScriptDeploy: true, ScriptClean: true, ScriptInspect: true}

// consolePoll is how often the capture polls the BMC for output (one SOL
// packet per poll), and consoleQuiet how long the output must pause, once
// the script has ended, before the capture stops (what the BMC still holds
// is read), bounded by consoleDrain.
const (
	consolePoll  = 10 * time.Millisecond
	consoleQuiet = 150 * time.Millisecond
	consoleDrain = 3 * time.Second
)

// ring keeps the last max bytes written to it. Safe for concurrent use.
type ring struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
	last  time.Time // of the last write, or of the console's activation
	seen  bool      // the console was activated (or wrote)
}

// activated notes that the console is attached: output may follow.
func (r *ring) activated() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.seen = time.Now(), true
}

// quiet reports whether nothing was written for d, and whether the
// console was ever attached.
func (r *ring) quiet(d time.Duration) (quiet, seen bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Since(r.last) >= d, r.seen
}

// drain waits, up to max, until the output pauses for quiet (at once when
// the console never attached: no output to wait for).
func (r *ring) drain(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	t := time.NewTicker(quiet / 5)
	defer t.Stop()
	for time.Now().Before(deadline) {
		if q, seen := r.quiet(quiet); q || !seen {
			return
		}
		<-t.C
	}
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = time.Now()
	r.seen = true
	r.total += int64(len(p))
	r.buf = append(r.buf, p...)
	if n := len(r.buf); n > r.max {
		r.buf = append(r.buf[:0], r.buf[n-r.max:]...)
	}
	return len(p), nil
}

func (r *ring) snapshot() ([]byte, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...), r.total
}

// blockReader is the console's input during a capture: nothing is typed,
// and it ends (EOF) with ctx.
type blockReader struct{ ctx context.Context }

func (b blockReader) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, errors.New("console capture ended")
}

// nodeConsoleClient builds the IPMI client of a node from its driver_info
// (ipmi_* keys, else its iLO account) and [ipmi] retry_timeout.
func nodeConsoleClient(cfg *config.Config, red *secrets.Redactor, n *store.Node) (*ipmi.Client, error) {
	info := make(map[string]any, len(n.DriverInfo)+1)
	for k, v := range n.DriverInfo {
		info[k] = v
	}
	if _, set := info["ipmi_retry_timeout"]; !set {
		if v, ok := cfg.Get("ipmi", ipmi.ConfigRetryTimeout); ok && strings.TrimSpace(v) != "" {
			info["ipmi_retry_timeout"] = strings.TrimSpace(v)
		}
	}
	o, err := ipmi.ParseDriverInfo(info)
	if err != nil {
		return nil, err
	}
	red.Add(o.Password)
	return ipmi.New(o)
}

// consoleWatch returns the engine's RunWatch that captures the node's
// serial console (IPMI Serial-over-LAN) while a deploy, clean or inspect
// runs, into a ring of size bytes, recorded as one EventConsole event when
// the script ends. A console that cannot be opened is a warning in the log,
// never a run failure; the capture is stopped and waited for before the
// event is recorded.
func consoleWatch(cfg *config.Config, red *secrets.Redactor, log *slog.Logger, size int) runtime.RunWatch {
	return func(ctx context.Context, runID int64, script string, n *store.Node) func() (string, string, map[string]any) {
		if !consoleScripts[script] || n == nil {
			return nil
		}
		c, err := nodeConsoleClient(cfg, red, n)
		if err != nil {
			log.Warn("no console capture: no IPMI access", "run", runID, "node", n.Name, "error", red.String(err.Error()))
			return nil
		}
		cctx, cancel := context.WithCancel(ctx)
		buf := &ring{max: size}
		done := make(chan struct{})
		go func() {
			defer close(done)
			warned := false
			for cctx.Err() == nil {
				err := c.ConsolePoll(cctx, blockReader{cctx}, buf, consolePoll, buf.activated)
				if cctx.Err() != nil {
					return
				}
				if err != nil && !warned {
					warned = true
					log.Warn("console capture: SOL failed, retrying", "run", runID, "node", n.Name, "error", red.String(err.Error()))
				}
				t := time.NewTimer(time.Second)
				select {
				case <-cctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}()
		return func() (string, string, map[string]any) {
			buf.drain(consoleQuiet, consoleDrain)
			cancel()
			<-done
			out, total := buf.snapshot()
			if total == 0 {
				return "", "", nil
			}
			text := red.String(strings.ToValidUTF8(string(out), "\uFFFD"))
			return EventConsole, "sol", map[string]any{"output": text, "bytes": total, "truncated": total > int64(len(out))}
		}
	}
}

// RunConsole returns the console output recorded with a run ("" when none
// was captured), redacted.
func (a *App) RunConsole(ctx context.Context, runID int64) (string, error) {
	evs, err := a.Store.Events(ctx, runID)
	if err != nil {
		return "", fmt.Errorf("run %d: %w", runID, err)
	}
	var b strings.Builder
	for _, ev := range evs {
		if ev.Kind != EventConsole {
			continue
		}
		if s, ok := ev.Data["output"].(string); ok {
			b.WriteString(s)
		}
	}
	return a.Redactor.String(b.String()), nil
}
