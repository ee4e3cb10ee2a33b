// Package runtime runs Lua procedures against nodes: one fresh LState per
// run, bound to the run's context, with the bindings' modules preloaded,
// every step, call and log recorded in the store, and the node locked while
// the run lasts.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
)

// Options configure an Engine.
type Options struct {
	Store   store.Store
	Config  *config.Config
	Modules []module.Module
	// ScriptDirs are site script directories, searched before the bundled
	// scripts (defaults to [lightsout] scripts_path).
	ScriptDirs []string
	// Redactor masks secrets in every output; one is created if nil.
	Redactor *secrets.Redactor
	// Logger receives run logs (redacted); defaults to a discard logger.
	Logger *slog.Logger
	// Stdout receives print() output of scripts; defaults to io.Discard.
	Stdout io.Writer
	// OnEvent, when set, observes every recorded event (already redacted;
	// data must not be modified) of every run, e.g. to count calls for
	// metrics. It is called synchronously from the run: keep it cheap.
	OnEvent func(kind, name string, data map[string]any)
	// Watch, when set, is called for every run on a node once the node is
	// locked (see RunWatch).
	Watch RunWatch
	// Leases, when set, makes node locks leases of this process (several
	// processes sharing a PostgreSQL store); nil: plain locks.
	Leases *Leases
}

// Leases are the node leases of a process registered as a conductor.
type Leases struct {
	Store     store.Leaser
	Conductor int64
	// TTL is how long a lease lasts without a heartbeat ([conductor]
	// heartbeat_timeout).
	TTL time.Duration
}

// RunWatch observes a run on a node while it runs, e.g. to capture the
// node's serial console. It is called once the node is locked, with the
// run's context; the function it returns (nil: nothing to stop) is called
// when the script has ended, before the run is finished, must stop
// whatever the watch started, and returns an event to record (kind ""
// records nothing). Recorded data is redacted like every event.
type RunWatch func(ctx context.Context, runID int64, script string, node *store.Node) (stop func() (kind, name string, data map[string]any))

// Engine runs scripts. It is safe for concurrent use; Close it to flush
// recorded events.
type Engine struct {
	st       store.Store
	cfg      *config.Config
	mods     []module.Module
	scripts  *Scripts
	redactor *secrets.Redactor
	log      *slog.Logger
	stdout   io.Writer
	outMu    sync.Mutex
	rec      *recorder
	host     string
	pid      int
	onEvent  func(kind, name string, data map[string]any)
	watch    RunWatch
	leases   *Leases

	protoMu sync.Mutex
	protos  map[string]*lua.FunctionProto

	mem memWatch // heap sampler behind the runs' memory limits
}

// New returns an Engine. It recovers runs left "running" by processes that
// no longer exist (marking them interrupted and unlocking their nodes).
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Store == nil || o.Config == nil {
		return nil, errors.New("runtime: Store and Config are required")
	}
	if o.Redactor == nil {
		o.Redactor = secrets.NewRedactor()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	dirs := o.ScriptDirs
	if dirs == nil {
		dirs = o.Config.ScriptsPath()
	}
	o.Redactor.Add(o.Config.SecretValues()...)
	host, _ := os.Hostname()
	e := &Engine{st: o.Store, cfg: o.Config, mods: o.Modules, scripts: NewScripts(dirs), redactor: o.Redactor,
		log: o.Logger, stdout: o.Stdout, host: host, pid: os.Getpid(), protos: map[string]*lua.FunctionProto{}, onEvent: o.OnEvent, watch: o.Watch, leases: o.Leases}
	ids, err := RecoverInterrupted(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	// the work directories of runs whose process died are left behind by it
	for _, id := range ids {
		if err := os.RemoveAll(WorkDir(o.Config, id)); err != nil {
			o.Logger.Warn("cannot remove the work directory of an interrupted run", "run", id, "err", err)
		}
	}
	e.rec = newRecorder(o.Store, o.Logger)
	return e, nil
}

// RecoverInterrupted marks runs of dead lightsout processes on this host as
// interrupted and releases their locks.
func RecoverInterrupted(ctx context.Context, st store.Store) ([]int64, error) {
	host, _ := os.Hostname()
	return st.RecoverInterrupted(ctx, func(h string, pid int) bool {
		if h != host {
			return true // cannot tell for another host: leave it
		}
		return processAlive(pid)
	})
}

// RunAlive reports whether the process running r may still be alive: its
// pid exists on this host (a run of another host is assumed alive).
func RunAlive(r *store.Run) bool {
	host, _ := os.Hostname()
	if r.Host != host {
		return true
	}
	return processAlive(r.PID)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Close flushes recorded events.
func (e *Engine) Close() error { return e.rec.close() }

// Scripts returns the script lookup in effect.
func (e *Engine) Scripts() *Scripts { return e.scripts }

// Store returns the engine's store.
func (e *Engine) Store() store.Store { return e.st }

// Config returns the engine's configuration.
func (e *Engine) Config() *config.Config { return e.cfg }

// Redactor returns the engine's redactor.
func (e *Engine) Redactor() *secrets.Redactor { return e.redactor }

// RunRequest asks for one run.
type RunRequest struct {
	// Script is a bundled or site script name, or a path to a .lua file.
	Script string
	// Node is a node name or uuid; "" for a node-less run.
	Node   string
	Params map[string]string
	// Timeout bounds the run (0: [lightsout] run_timeout).
	Timeout time.Duration
	// Wait for the node lock instead of failing at once.
	Wait bool
	// Stdout overrides the engine's print() destination for this run.
	Stdout io.Writer
	// OnStep is called with the name of each step as it starts (progress).
	OnStep func(runID int64, node, step string)
	// OnEvent, when set, observes each event the run records (already
	// redacted), e.g. the last event of a live progress view.
	OnEvent func(runID int64, kind, name string, data map[string]any)
	// JobLink, when set, is recorded with the run in one transaction (see
	// store.Run.JobLink); its RunID is filled in.
	JobLink *store.JobRun
	// OnStart, when set, is called with the run's id once the run is
	// recorded, before the node is locked and the script starts (callers
	// that must link a run to their own records before it can act).
	OnStart func(runID int64)
}

// Result is the outcome of one run.
type Result struct {
	RunID      int64     `json:"id"`
	Script     string    `json:"script"`
	Node       string    `json:"node"`
	Status     string    `json:"status"`
	Error      string    `json:"error"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Succeeded reports whether the run succeeded.
func (r Result) Succeeded() bool { return r.Status == store.StatusSucceeded }

// UsageError marks errors caused by bad input before any run started
// (unknown script, unknown node, ...): exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// loadScript resolves a name or a path.
func (e *Engine) loadScript(ref string) (*Script, error) {
	if strings.HasSuffix(ref, ".lua") && (strings.Contains(ref, "/") || fileExists(ref)) {
		src, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("script file %s: %w", ref, err)
		}
		return &Script{Name: strings.TrimSuffix(baseName(ref), ".lua"), Origin: "file", Path: ref, Kind: "playbook", Source: src}, nil
	}
	return e.scripts.Find(ref)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// compile returns the (cached) compiled chunk of src.
func (e *Engine) compile(chunkName string, src []byte) (*lua.FunctionProto, string, error) {
	sum := sha256.Sum256(src)
	key := hex.EncodeToString(sum[:])
	e.protoMu.Lock()
	p, ok := e.protos[key+chunkName]
	e.protoMu.Unlock()
	if ok {
		return p, key, nil
	}
	chunk, err := parse.Parse(strings.NewReader(string(src)), chunkName)
	if err != nil {
		return nil, key, fmt.Errorf("syntax error in %s", strings.TrimSpace(err.Error()))
	}
	p, err = lua.Compile(chunk, chunkName)
	if err != nil {
		return nil, key, fmt.Errorf("compile %s: %w", chunkName, err)
	}
	e.protoMu.Lock()
	e.protos[key+chunkName] = p
	e.protoMu.Unlock()
	return p, key, nil
}

// Run runs one script, records it and returns its result. The error is
// non-nil only when no run could be recorded (bad input: *UsageError, or a
// store failure); a failed script gives a Result with status failed.
func (e *Engine) Run(ctx context.Context, req RunRequest) (Result, error) {
	sc, err := e.loadScript(req.Script)
	if err != nil {
		return Result{}, &UsageError{err}
	}
	var n *store.Node
	if req.Node != "" {
		if n, err = e.st.GetNode(ctx, req.Node); err != nil {
			return Result{}, &UsageError{err}
		}
		e.redactor.AddFromMap(n.DriverInfo)
		e.redactor.AddFromMap(n.InstanceInfo)
		e.redactor.AddFromMap(n.DriverInternalInfo)
	}
	chunkName := sc.Path
	if sc.Origin == "bundled" {
		chunkName = sc.Name + ".lua"
	}
	proto, sum, compileErr := e.compile(chunkName, sc.Source)

	params := map[string]string{}
	for k, v := range req.Params {
		params[k] = v
		if secrets.IsSecretKey(k) {
			e.redactor.Add(v)
		}
	}
	rec := &store.Run{Script: sc.Name, ScriptSHA: sum, Params: e.redactParams(params), Host: e.host, PID: e.pid, JobLink: req.JobLink}
	if e.leases != nil {
		rec.Conductor = e.leases.Conductor
	}
	if n != nil {
		rec.NodeUUID, rec.NodeName = n.UUID, n.Name
	}
	if err := e.st.CreateRun(ctx, rec); err != nil {
		return Result{}, err
	}
	res := Result{RunID: rec.ID, Script: sc.Name, Node: rec.NodeName, StartedAt: rec.StartedAt}
	if req.OnStart != nil {
		req.OnStart(rec.ID)
	}

	timeout := req.Timeout
	if timeout <= 0 {
		timeout = e.cfg.Duration("lightsout", "run_timeout", time.Hour)
	}
	// softCtx is cancelled by the caller (a signal), `node abort` (polled)
	// or the timeout; the script's failure path then runs with a fresh
	// context bounded by [lightsout] abort_grace (Run.failurePath).
	softCtx, cancelSoft := context.WithCancelCause(ctx)
	defer cancelSoft(nil)
	runCtx, cancel := context.WithTimeout(softCtx, timeout)
	defer cancel()

	r := &Run{eng: e, id: rec.ID, ctx: runCtx, node: n, script: sc, params: params, onStep: req.OnStep, onEvent: req.OnEvent}
	r.stdout = e.stdout
	if req.Stdout != nil {
		r.stdout = req.Stdout
	}
	nodeUUID := ""
	if n != nil {
		nodeUUID = n.UUID
	}
	r.paths = sandbox.New(e.sandboxConfig(rec.ID, nodeUUID, sc))
	defer func() {
		if err := r.paths.Cleanup(); err != nil {
			e.log.Warn("removing the run's work directory", "run", rec.ID, "error", err)
		}
	}()

	status, msg := store.StatusSucceeded, ""
	locked := false
	switch {
	case compileErr != nil:
		status, msg = store.StatusFailed, compileErr.Error()
	case n != nil:
		if err := e.lock(runCtx, n, rec.ID, req.Wait); err != nil {
			status, msg = classify(runCtx, ctx, err.Error())
			break
		}
		locked = true
		// The run's inputs: the node as it is once locked (no change from
		// outside the run is accepted from now on), recorded.
		fresh, err := e.st.GetNode(context.WithoutCancel(ctx), n.UUID)
		if err != nil {
			status, msg = store.StatusFailed, "read the locked node: "+err.Error()
			break
		}
		e.redactor.AddFromMap(fresh.DriverInfo)
		e.redactor.AddFromMap(fresh.InstanceInfo)
		n, r.node = fresh, fresh
		r.Event(store.EventState, "inputs", map[string]any{"provision_state": fresh.ProvisionState,
			"instance_info": maskInfo(fresh.InstanceInfo)})
		defer e.watchAbort(rec.ID, cancelSoft)()
	}
	if status == store.StatusSucceeded {
		var stopWatch func() (string, string, map[string]any)
		if locked && e.watch != nil {
			stopWatch = e.watch(runCtx, rec.ID, sc.Name, n)
		}
		status, msg = r.execute(proto, ctx)
		if stopWatch != nil {
			if kind, name, data := stopWatch(); kind != "" {
				r.Event(kind, name, data)
			}
		}
		if status != store.StatusSucceeded && locked {
			e.failLeftover(context.WithoutCancel(ctx), rec.ID, rec.Script, n.UUID, e.redactor.String(msg))
		}
	}
	msg = e.redactor.String(msg)
	r.Event(store.EventState, "finished", map[string]any{"status": status, "error": msg})
	flushErr := e.rec.flush(context.WithoutCancel(ctx))
	// A run left "running" with its node held would block the node until
	// this process stops: the end of a run outlives a database restart.
	finishErr := retryTransient(func() error { return e.st.FinishRun(context.WithoutCancel(ctx), rec.ID, status, msg) })
	if locked {
		if err := retryTransient(func() error { return e.st.UnlockNode(context.WithoutCancel(ctx), n.UUID, rec.ID) }); err != nil {
			finishErr = errors.Join(finishErr, err)
		}
	}
	res.Status, res.Error, res.FinishedAt = status, msg, time.Now().UTC()
	return res, errors.Join(flushErr, finishErr)
}

// redactParams returns the params as recorded: values of secret keys
// masked, known secrets and URL credentials in any value masked.
func (e *Engine) redactParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range maskParams(p) {
		out[e.redactor.String(k)] = e.redactor.String(v)
	}
	return out
}

func maskParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		if secrets.IsSecretKey(k) && v != "" {
			v = secrets.Mask
		}
		out[k] = v
	}
	return out
}

// lock takes the node lock, waiting with backoff when wait is set.
func (e *Engine) lock(ctx context.Context, n *store.Node, runID int64, wait bool) error {
	delay := 50 * time.Millisecond
	for {
		var err error
		if e.leases != nil {
			_, err = e.leases.Store.AcquireLease(ctx, n.UUID, runID, e.leases.Conductor, e.leases.TTL, time.Now())
		} else {
			err = e.st.LockNode(ctx, n.UUID, runID)
		}
		var le *store.LockedError
		if err == nil || !wait || !errors.As(err, &le) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %w: %w", err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// failLeftover moves a node that a run which did not succeed left in a
// transient provision state (a script without a failure path, or one cut
// short) to its failure state, with last_error, and marks its cleanup as
// pending (the recover playbook finishes it).
func (e *Engine) failLeftover(ctx context.Context, runID int64, script, uuid, msg string) {
	_, err := e.st.UpdateNodeAs(ctx, runID, uuid, func(n *store.Node) error {
		to, ok := states.FailureOf(n.ProvisionState)
		if !ok {
			return errLeave
		}
		first, _, _ := strings.Cut(msg, "\n")
		n.LastError = fmt.Sprintf("run %d (%s) ended in %s: %s", runID, script, n.ProvisionState, first)
		n.ProvisionState = to
		n.DriverInternalInfo[store.RecoveryKey] = runID
		return nil
	})
	if err != nil && !errors.Is(err, errLeave) {
		e.log.Warn("cannot move the node of a failed run to its failure state", "run", runID, "err", err)
	}
}

var errLeave = errors.New("leave the node as it is")

// maskInfo copies an info map with the values of secret-looking keys masked.
func maskInfo(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok && s != "" && secrets.IsSecretKey(k) {
			v = secrets.Mask
		}
		out[k] = v
	}
	return out
}

// AbortError is the cause of a run cancelled by `lightsout node abort`.
type AbortError struct{ By string }

func (e *AbortError) Error() string { return e.By }

// abortPoll is how often a running run checks for an abort request.
const abortPoll = time.Second

// watchAbort polls the store for an abort request on run id and cancels
// the run with an *AbortError when one is recorded. The returned function
// stops it.
func (e *Engine) watchAbort(id int64, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(abortPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				by, err := e.st.AbortRequested(context.Background(), id)
				if err != nil {
					e.log.Warn("cannot read abort requests", "run", id, "err", err)
					continue
				}
				if by != "" {
					cancel(&AbortError{By: by})
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// interruption names why a cancelled run stopped: the caller's cause (a
// signal), an abort request, or the timeout.
func interruption(runCtx, parent context.Context) string {
	var ae *AbortError
	switch {
	case parent.Err() != nil:
		if c := context.Cause(parent); c != nil && !errors.Is(c, context.Canceled) {
			return c.Error()
		}
		return "cancelled"
	case errors.As(context.Cause(runCtx), &ae):
		return ae.By
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return "timed out"
	}
	return "cancelled"
}

// classify maps a run's error message to its status: timed_out when the
// run's deadline passed, cancelled when the caller cancelled (a signal) or
// an operator aborted it, else failed.
func classify(runCtx, parent context.Context, msg string) (status, message string) {
	var ae *AbortError
	switch {
	case parent.Err() != nil:
		return store.StatusCancelled, "run cancelled (" + interruption(runCtx, parent) + "): " + msg
	case errors.As(context.Cause(runCtx), &ae):
		return store.StatusCancelled, "run " + ae.By + ": " + msg
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return store.StatusTimedOut, "run timed out: " + msg
	}
	return store.StatusFailed, msg
}

// RunMany runs one run per node, at most parallel at once, and returns the
// results in node order. onDone is called as each run ends.
//
// It is a pool of min(parallel, len(nodes)) workers taking node indexes
// in order: nodes not started yet wait as indexes, never in goroutines,
// so a fleet of 10,000 nodes holds parallel goroutines (and their runs'
// Lua states) at a time.
func (e *Engine) RunMany(ctx context.Context, req RunRequest, nodes []string, parallel int, onDone func(Result)) ([]Result, error) {
	if parallel <= 0 {
		parallel = e.cfg.Int("lightsout", "max_parallel", 64)
	}
	parallel = min(parallel, len(nodes))
	results := make([]Result, len(nodes))
	errs := make([]error, len(nodes))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(nodes) {
					return
				}
				r := req
				r.Node = nodes[i]
				res, err := e.Run(ctx, r)
				if err != nil && res.RunID == 0 {
					res = Result{Node: nodes[i], Script: req.Script, Status: store.StatusFailed, Error: e.redactor.String(err.Error())}
				}
				results[i], errs[i] = res, err
				if onDone != nil {
					onDone(res)
				}
			}
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// CheckModules builds one LState exactly as a run would (safe libraries,
// every binding preloaded), requires the named modules (all when requireAll)
// and closes it. Without requires it is the cost paid per run before the
// script starts.
func (e *Engine) CheckModules(ctx context.Context, requireAll bool) error {
	r := &Run{eng: e, ctx: ctx, script: &Script{Name: "check"}, params: map[string]string{}, stdout: io.Discard,
		paths: sandbox.New(sandbox.Config{})}
	L := e.newState(r)
	defer L.Close()
	defer r.guard.close()
	if !requireAll {
		return nil
	}
	for _, m := range e.mods {
		if err := L.DoString(`require("` + m.Name() + `")`); err != nil {
			return fmt.Errorf("module %s: %w", m.Name(), err)
		}
	}
	return nil
}

// ModuleNames lists the bindings' modules in require order.
func (e *Engine) ModuleNames() []string {
	out := make([]string, len(e.mods))
	for i, m := range e.mods {
		out[i] = m.Name()
	}
	return out
}

// retryTransient calls fn until it succeeds, fails with an error that is
// not a lost database connection (store.Transient), or two minutes passed.
func retryTransient(fn func() error) error {
	deadline := time.Now().Add(2 * time.Minute)
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if !store.Transient(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait) // backoff while the database is away
		wait = min(2*wait, 2*time.Second)
	}
}
