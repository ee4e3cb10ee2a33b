// Package watch runs jobs dropped as files into a spool folder.
//
// Layout: DIR/incoming (producers drop *.json, *.yaml, *.yml jobs here,
// written to a temporary name — a dotfile, *.tmp or *.part — then renamed),
// DIR/processing (claimed jobs), DIR/done and DIR/failed (finished jobs,
// each next to <name>.result.json).
//
// A job is claimed by an atomic rename into processing/ and recorded in the
// store (file name, content hash, attempts, and the run of every node as it
// starts). At start-up the watcher reconciles processing/ with the store:
// finished jobs are moved on with their result, interrupted ones are moved
// back to incoming/ and fail after Options.MaxAttempts claims. One process
// watches a folder at a time (a lock file in DIR).
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// Observer counts jobs and runs (the daemon's metrics). Methods are called
// concurrently and must be cheap.
type Observer interface {
	JobClaimed()
	// JobFinished is called when a job reached done/ or failed/ with its
	// final status (done, failed, invalid, duplicate, lost).
	JobFinished(status string)
	JobRequeued()
	RunFinished(script, status string, d time.Duration)
}

// Options configure a Watcher.
type Options struct {
	// Dir is the spool folder.
	Dir string
	// Parallel bounds the jobs running at once (default 4).
	Parallel int
	// MaxAttempts is how many times a job is claimed before an interrupted
	// job is failed (default 3).
	MaxAttempts int
	// Poll > 0 polls incoming/ at this interval instead of using inotify.
	// Polling is also used, every 2 s, when the folder is on NFS, SMB,
	// FUSE and the like, or when inotify is unavailable.
	Poll time.Duration
	// Rescan is the safety rescan interval with inotify (default 10 s).
	Rescan time.Duration
	// Settle: a file is claimed once it has not changed for this long
	// (default 1 s), which protects against writers that do not rename.
	Settle time.Duration
	// Grace is how long in-flight jobs may finish after the context is
	// cancelled; then their runs are cancelled and the jobs re-queued.
	Grace time.Duration
	// AllowLua accepts .lua files dropped as jobs and .lua paths in "script".
	AllowLua bool
	// MaxSize is the largest job file accepted (default 1 MiB).
	MaxSize int64
	// Once processes the jobs present (and those arriving meanwhile) and
	// returns when incoming/ is empty and nothing runs.
	Once bool
	// Observer receives counts; may be nil.
	Observer Observer
	// Logger defaults to the app's logger.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultParallel    = 4
	DefaultMaxAttempts = 3
	DefaultSettle      = time.Second
	DefaultRescan      = 10 * time.Second
	DefaultRemotePoll  = 2 * time.Second
	DefaultMaxSize     = 1 << 20
)

// Status is a snapshot of a watcher for /healthz.
type Status struct {
	Dir       string    `json:"dir"`
	Mode      string    `json:"mode"` // "inotify" or "poll"
	Queued    int       `json:"queued"`
	InFlight  int       `json:"in_flight"`
	LastScan  time.Time `json:"last_scan"`
	LastError string    `json:"last_error,omitempty"`
	Draining  bool      `json:"draining"`
}

// Watcher claims and runs jobs of one spool folder.
type Watcher struct {
	o    Options
	a    *app.App
	sp   *spool
	log  *slog.Logger
	obs  Observer
	host string
	pid  int

	kickC      chan struct{}
	slots      chan struct{}
	wg         sync.WaitGroup
	inflight   atomic.Int64
	runCtx     context.Context
	cancelRuns context.CancelFunc
	abortOnce  sync.Once
	abortC     chan struct{}

	dedupeMu sync.Mutex // job id checks are serialised
	nameMu   sync.Mutex // destination names
	reserved map[string]bool

	mu      sync.Mutex
	seen    map[string]seenFile
	noted   map[string]bool
	pending map[int64]bool // finished jobs whose move failed: retried each scan
	status  Status
}

type seenFile struct {
	size  int64
	mtime time.Time
	since time.Time
}

// New opens the spool (creating its folders) and takes its lock.
func New(a *app.App, o Options) (*Watcher, error) {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Settle < 0 {
		o.Settle = 0
	} else if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	if o.Rescan <= 0 {
		o.Rescan = DefaultRescan
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Logger == nil {
		o.Logger = a.Log
	}
	sp, err := openSpool(o.Dir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	runCtx, cancel := context.WithCancel(context.Background())
	w := &Watcher{o: o, a: a, sp: sp, log: o.Logger.With("watch", sp.dir), obs: o.Observer, host: host, pid: os.Getpid(),
		kickC: make(chan struct{}, 1), slots: make(chan struct{}, o.Parallel), runCtx: runCtx, cancelRuns: cancel,
		abortC: make(chan struct{}), reserved: map[string]bool{}, seen: map[string]seenFile{}, noted: map[string]bool{},
		pending: map[int64]bool{}}
	if w.obs == nil {
		w.obs = nopObserver{}
	}
	w.status.Dir = sp.dir
	return w, nil
}

type nopObserver struct{}

func (nopObserver) JobClaimed()                               {}
func (nopObserver) JobFinished(string)                        {}
func (nopObserver) JobRequeued()                              {}
func (nopObserver) RunFinished(string, string, time.Duration) {}

// Dir returns the absolute spool folder.
func (w *Watcher) Dir() string { return w.sp.dir }

// Status returns a snapshot for health checks.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.status
	s.InFlight = int(w.inflight.Load())
	return s
}

// Abort cancels in-flight runs now instead of after the grace period
// (their jobs are re-queued).
func (w *Watcher) Abort() { w.abortOnce.Do(func() { close(w.abortC) }) }

// Close releases the spool lock. Run calls it on return.
func (w *Watcher) Close() error {
	w.cancelRuns()
	return w.sp.close()
}

func (w *Watcher) kick() {
	select {
	case w.kickC <- struct{}{}:
	default:
	}
}

func (w *Watcher) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.status.LastError = ""
		return
	}
	w.status.LastError = err.Error()
}

// Run reconciles the spool, then claims and runs jobs until ctx is
// cancelled (or, with Once, until the folder is drained). On cancel it stops
// claiming, gives in-flight jobs Options.Grace to finish, then cancels their
// runs; those jobs go back to incoming/.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	if err := w.reconcile(ctx); err != nil {
		return err
	}
	in := w.sp.path(Incoming)
	interval := w.o.Rescan
	mode := "inotify"
	switch fs, remote := remoteFS(in); {
	case w.o.Poll > 0:
		mode, interval = "poll", w.o.Poll
	case remote:
		mode, interval = "poll", DefaultRemotePoll
		w.log.Info("watch folder is on a network or FUSE file system where inotify sees nothing: polling", "fs", fs, "interval", interval)
	}
	notifyCtx, stopNotify := context.WithCancel(ctx)
	defer stopNotify()
	if mode == "inotify" {
		n, err := startNotify(notifyCtx, in, w.kick, func(err error) { w.log.Warn("inotify", "err", err) })
		if err != nil {
			mode, interval = "poll", DefaultRemotePoll
			w.log.Warn("inotify unavailable: polling", "err", err, "interval", interval)
		} else {
			defer n.close()
		}
	}
	w.mu.Lock()
	w.status.Mode = mode
	w.mu.Unlock()
	w.log.Info("watching", "mode", mode, "parallel", w.o.Parallel, "max_attempts", w.o.MaxAttempts)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	settle := time.NewTimer(time.Hour)
	defer settle.Stop()
	for ctx.Err() == nil {
		n, next := w.scan(ctx)
		w.retryPending(ctx)
		if w.o.Once && n == 0 && w.inflight.Load() == 0 && w.pendingCount() == 0 {
			break
		}
		if !next.IsZero() {
			settle.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
		case <-w.kickC:
		case <-tick.C:
		case <-settle.C:
		}
	}
	w.mu.Lock()
	w.status.Draining = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	grace := time.NewTimer(w.o.Grace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		if n := w.inflight.Load(); n > 0 {
			w.log.Warn("grace period over: cancelling in-flight runs; their jobs go back to incoming/", "jobs", n)
		}
		w.cancelRuns()
		<-done
	case <-w.abortC:
		w.cancelRuns()
		<-done
	}
	return nil
}

func (w *Watcher) pendingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// ready reports whether a file has settled, or when it may.
func (w *Watcher) ready(name string, fi os.FileInfo, now time.Time) (bool, time.Time) {
	if w.o.Settle <= 0 || !fi.ModTime().After(now.Add(-w.o.Settle)) {
		return true, time.Time{}
	}
	s, ok := w.seen[name]
	if ok && s.size == fi.Size() && s.mtime.Equal(fi.ModTime()) {
		if now.Sub(s.since) >= w.o.Settle {
			return true, time.Time{}
		}
		return false, s.since.Add(w.o.Settle)
	}
	w.seen[name] = seenFile{size: fi.Size(), mtime: fi.ModTime(), since: now}
	at := fi.ModTime().Add(w.o.Settle)
	if alt := now.Add(w.o.Settle); alt.Before(at) {
		at = alt
	}
	return false, at
}

// scan claims the settled files of incoming/, oldest first, as slots free
// up. It returns the number of job files seen and when the next unsettled
// one may be ready.
func (w *Watcher) scan(ctx context.Context) (int, time.Time) {
	in := w.sp.path(Incoming)
	entries, err := os.ReadDir(in)
	now := time.Now()
	w.mu.Lock()
	w.status.LastScan = now
	w.mu.Unlock()
	if err != nil {
		w.setErr(fmt.Errorf("read %s: %w", in, err))
		w.noteOnce("scan:"+err.Error(), "cannot read incoming/: check it exists and is readable by the lightsout user", "err", err)
		return 0, time.Time{}
	}
	type cand struct {
		name string
		mod  time.Time
	}
	var ready []cand
	var next time.Time
	count := 0
	present := map[string]bool{}
	w.mu.Lock()
	for _, e := range entries {
		name := e.Name()
		consider, known := jobFile(name)
		if !consider {
			if !known && !strings.HasPrefix(name, ".") && !isTempName(name) {
				w.noteOnceLocked("ignored:"+name, "ignoring a file that is not a job (.json, .yaml, .yml, .lua)", "file", name)
			}
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // vanished
		}
		if fi.IsDir() {
			w.noteOnceLocked("dir:"+name, "ignoring a directory in incoming/", "dir", name)
			continue
		}
		present[name] = true
		count++
		ok, at := w.ready(name, fi, now)
		if !ok {
			if next.IsZero() || at.Before(next) {
				next = at
			}
			continue
		}
		ready = append(ready, cand{name, fi.ModTime()})
	}
	for n := range w.seen {
		if !present[n] {
			delete(w.seen, n)
		}
	}
	w.status.Queued = count
	w.status.LastError = ""
	w.mu.Unlock()
	sort.Slice(ready, func(i, j int) bool {
		if !ready[i].mod.Equal(ready[j].mod) {
			return ready[i].mod.Before(ready[j].mod)
		}
		return ready[i].name < ready[j].name
	})
	for i, c := range ready {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return count, next
		}
		if !w.claim(c.name) {
			<-w.slots
		}
		w.mu.Lock()
		w.status.Queued = count - i - 1
		w.mu.Unlock()
	}
	return count, next
}

func isTempName(name string) bool {
	l := strings.ToLower(name)
	return strings.HasSuffix(l, ".tmp") || strings.HasSuffix(l, ".part")
}

func (w *Watcher) noteOnce(key, msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noteOnceLocked(key, msg, args...)
}

func (w *Watcher) noteOnceLocked(key, msg string, args ...any) {
	if w.noted[key] {
		return
	}
	if len(w.noted) > 10000 {
		w.noted = map[string]bool{}
	}
	w.noted[key] = true
	w.log.Warn(msg, args...)
}

// claim moves incoming/name into processing/ and records the claim; the
// job then runs in its own goroutine holding the slot. It returns false
// when nothing was claimed (the slot is still to be released).
func (w *Watcher) claim(name string) bool {
	ctx := context.Background()
	w.nameMu.Lock()
	proc := free(name, func(n string) bool { return exists(w.sp.path(Processing, n)) })
	err := os.Rename(w.sp.path(Incoming, name), w.sp.path(Processing, proc))
	w.nameMu.Unlock()
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			w.setErr(err)
			w.noteOnce("claim:"+name, "cannot claim a job: check the permissions of incoming/ and processing/", "file", name, "err", err)
		}
		return false
	}
	sum, data, size, err := fingerprint(w.sp.path(Processing, proc), w.o.MaxSize)
	if err != nil {
		w.log.Error("cannot read a claimed job; moving it back", "file", name, "err", err)
		w.unclaim(proc, name)
		return false
	}
	row, err := w.recordClaim(ctx, name, proc, sum)
	if err != nil {
		w.log.Error("cannot record a claim in the store; moving the job back", "file", name, "err", err)
		w.unclaim(proc, name)
		return false
	}
	w.obs.JobClaimed()
	w.inflight.Add(1)
	w.wg.Add(1)
	go func() {
		defer func() {
			w.inflight.Add(-1)
			<-w.slots
			w.wg.Done()
			w.kick()
		}()
		w.process(ctx, row, data, size)
	}()
	return true
}

// unclaim moves a file back to incoming/ (no record was made).
func (w *Watcher) unclaim(proc, name string) {
	w.nameMu.Lock()
	defer w.nameMu.Unlock()
	q := free(name, func(n string) bool { return exists(w.sp.path(Incoming, n)) })
	if err := os.Rename(w.sp.path(Processing, proc), w.sp.path(Incoming, q)); err != nil {
		w.log.Error("cannot move a job back to incoming/ (it is retried at the next start)", "file", proc, "err", err)
	}
}

// recordClaim creates the claim record, or re-claims the record of a job
// that was re-queued under this name with this content.
func (w *Watcher) recordClaim(ctx context.Context, name, proc, sum string) (*store.Job, error) {
	st := w.a.Store
	prev, err := st.ListJobs(ctx, store.JobFilter{Queued: name, SHA256: sum, Status: []string{store.JobRequeued}, Open: true})
	if err != nil {
		return nil, err
	}
	if len(prev) > 0 {
		return st.UpdateJob(ctx, prev[len(prev)-1].ID, func(j *store.Job) error {
			j.Status, j.File, j.Queued = store.JobClaimed, proc, ""
			j.Attempts++
			j.Host, j.PID = w.host, w.pid
			return nil
		})
	}
	j := &store.Job{Name: name, File: proc, SHA256: sum, Status: store.JobClaimed, Attempts: 1, Host: w.host, PID: w.pid}
	return j, st.CreateJob(ctx, j)
}

// process validates and runs one claimed job.
func (w *Watcher) process(ctx context.Context, row *store.Job, data []byte, size int64) {
	if row.Attempts > w.o.MaxAttempts {
		res := w.newResult(row)
		res.Error = fmt.Sprintf("claimed %d times without finishing: giving up after --max-attempts %d", row.Attempts, w.o.MaxAttempts)
		w.finish(ctx, row, store.JobFailed, res)
		return
	}
	spec, err := w.prepare(ctx, row, data, size)
	var te *transientError
	if errors.As(err, &te) {
		w.log.Error("store: cannot validate a job; it goes back to incoming/", "file", row.Name, "err", te.err)
		w.requeue(ctx, row, false)
		return
	}
	if err != nil {
		res := w.newResult(row)
		res.Error = "invalid job: " + flatten(err)
		if spec != nil {
			res.Action = spec.Action
		}
		w.finish(ctx, row, store.JobInvalid, res)
		return
	}
	w.dedupeMu.Lock()
	id := spec.ID
	if id == "" {
		id = derivedID(row)
	}
	others, err := w.a.Store.ListJobs(ctx, store.JobFilter{JobID: id,
		Status: []string{store.JobClaimed, store.JobRunning, store.JobRequeued, store.JobDone, store.JobFailed}})
	if err != nil {
		w.dedupeMu.Unlock()
		w.log.Error("store: cannot check for duplicates; the job goes back to incoming/", "file", row.Name, "err", err)
		w.requeue(ctx, row, false)
		return
	}
	var dup *store.Job
	for _, o := range others {
		if o.ID != row.ID {
			dup = o
		}
	}
	nodes := spec.Nodes
	updated, err := w.a.Store.UpdateJob(ctx, row.ID, func(j *store.Job) error {
		j.JobID, j.Action, j.Nodes = id, spec.Action, nodes
		if dup == nil {
			j.Status = store.JobRunning
		}
		return nil
	})
	w.dedupeMu.Unlock()
	if err != nil {
		w.log.Error("store: cannot update a job; it is retried at the next start", "file", row.Name, "err", err)
		return
	}
	row = updated
	if dup != nil {
		res := w.newResult(row)
		res.Action, res.Script = spec.Action, spec.Script
		res.DuplicateOf = dup.JobID
		res.Error = duplicateMsg(dup)
		w.finish(ctx, row, store.JobDuplicate, res)
		return
	}
	w.execute(ctx, row, spec)
}

func derivedID(row *store.Job) string {
	sum := row.SHA256
	if len(sum) > 12 {
		sum = sum[:12]
	}
	return row.Name + "@" + sum
}

func duplicateMsg(d *store.Job) string {
	when := ""
	switch {
	case d.FinishedAt != nil:
		when = fmt.Sprintf("finished %s at %s", d.Status, d.FinishedAt.Format(time.RFC3339))
	default:
		when = fmt.Sprintf("%s since %s", d.Status, d.ClaimedAt.Format(time.RFC3339))
	}
	return fmt.Sprintf("duplicate of job %q (file %s, %s): a job id runs once; give the job a new id (or, without an id, a new file name or content) to run it again",
		d.JobID, d.Name, when)
}

// prepare parses the job and checks its script and nodes against the
// installation.
func (w *Watcher) prepare(ctx context.Context, row *store.Job, data []byte, size int64) (*Spec, error) {
	switch {
	case strings.HasPrefix(row.SHA256, "special:"):
		return nil, fieldErr("", "not a regular file (%s): drop regular files only", strings.TrimPrefix(row.SHA256, "special:"))
	case strings.HasPrefix(row.SHA256, "oversize:"):
		return nil, fieldErr("", "the file is %d bytes; job files are limited to %d bytes: a job is a small JSON or YAML document", size, w.o.MaxSize)
	}
	var spec *Spec
	if strings.EqualFold(extOf(row.Name), ".lua") {
		if !w.o.AllowLua {
			return nil, fieldErr("", "Lua files are not accepted as jobs: install the script as a site script (--scripts DIR) and drop a job {\"action\": \"run\", \"script\": NAME}, or start the watcher with --allow-lua-jobs")
		}
		if len(data) == 0 {
			return nil, fieldErr("", "empty Lua file")
		}
		spec = &Spec{Action: "run", Script: w.sp.path(Processing, row.File)}
	} else {
		var err error
		if spec, err = Parse(row.Name, data); err != nil {
			return nil, err
		}
		if err := w.resolveScript(spec); err != nil {
			return spec, err
		}
		if len(spec.Steps) > 0 {
			if err := w.a.CheckCleanSteps(ctx, spec.Steps); err != nil {
				return spec, fieldErr("steps", "%s", strings.TrimPrefix(err.Error(), "clean "))
			}
		}
	}
	nodes, err := w.resolveNodes(ctx, spec)
	if err != nil {
		return spec, err
	}
	spec.Nodes = nodes
	return spec, nil
}

func (w *Watcher) resolveScript(spec *Spec) error {
	s := spec.Script
	if spec.Action == "run" && (strings.HasSuffix(strings.ToLower(s), ".lua") || strings.ContainsAny(s, `/\`)) {
		if !w.o.AllowLua {
			return fieldErr("script", "%q is a file path: jobs may only name installed (bundled or site) scripts; install it as a site script (--scripts DIR), or start the watcher with --allow-lua-jobs", s)
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(w.sp.dir, s)
		}
		if fi, err := os.Stat(s); err != nil || !fi.Mode().IsRegular() {
			return fieldErr("script", "Lua file %s not found (relative paths are relative to the watch folder)", s)
		}
		spec.Script = s
		return nil
	}
	sc, err := w.a.Engine.Scripts().Find(s)
	if err != nil {
		f := "script"
		if spec.Action != "run" {
			f = "action"
			return fieldErr(f, "action %q runs the playbook %q, which is not installed: %v", spec.Action, s, err)
		}
		return fieldErr(f, "%v", err)
	}
	if sc.Kind != "playbook" {
		return fieldErr("script", "%q is a library (%s), not a playbook: name a script from `lightsout scripts list`", s, sc.Path)
	}
	return nil
}

// transientError marks a store failure while validating: the job is not
// invalid, it is retried.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// resolveNodes returns the node names of a job. For the playbook verbs,
// as for the CLI verbs, "all" selects the nodes in a state the verb starts
// from (and not locked), and a named node must be in such a state unless a
// run holds it (then the job waits for it, and the playbook checks the
// state it finds).
func (w *Watcher) resolveNodes(ctx context.Context, spec *Spec) ([]string, error) {
	verb := spec.Action != "run"
	if spec.All {
		var names []string
		if verb {
			ns, err := w.a.NodesFor(ctx, spec.Script, nil, true)
			if err != nil {
				return nil, &transientError{err}
			}
			if len(ns) == 0 {
				return nil, fieldErr("all", "no node is in a state %s starts from (see `lightsout node list`)", spec.Action)
			}
			return ns, nil
		}
		ns, err := w.a.Store.ListNodes(ctx)
		if err != nil {
			return nil, &transientError{err}
		}
		for _, n := range ns {
			names = append(names, n.Name)
		}
		if len(names) == 0 {
			return nil, fieldErr("all", "there are no nodes (see `lightsout node create` or `node import`)")
		}
		return names, nil
	}
	if len(spec.Nodes) == 0 {
		return []string{""}, nil // a node-less run
	}
	var errs []error
	out := make([]string, 0, len(spec.Nodes))
	seen := map[string]bool{}
	for i, ref := range spec.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		n, err := w.a.Store.GetNode(ctx, ref)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fieldErr(field, "node %q not found (see `lightsout node list`)", ref))
				continue
			}
			return nil, &transientError{err}
		}
		if seen[n.Name] {
			errs = append(errs, fieldErr(field, "%q is node %s, already listed", ref, n.Name))
			continue
		}
		seen[n.Name] = true
		if verb && n.Reservation == 0 {
			if _, err := w.a.NodesFor(ctx, spec.Script, []string{n.Name}, false); err != nil {
				var ve *app.ValidationError
				if !errors.As(err, &ve) {
					return nil, &transientError{err}
				}
				errs = append(errs, fieldErr(field, "%v", err))
				continue
			}
		}
		out = append(out, n.Name)
	}
	return out, errors.Join(errs...)
}

// flatten joins a multi-error on one line per problem.
func flatten(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// runFinal reports whether a node's run is final (not to be retried).
func runFinal(status string) bool {
	switch status {
	case store.StatusSucceeded, store.StatusFailed, store.StatusTimedOut:
		return true
	}
	return false
}

// execute runs the job on each node not already finished by an earlier
// attempt, then finishes or (on shutdown) re-queues it.
func (w *Watcher) execute(ctx context.Context, row *store.Job, spec *Spec) {
	prior, err := w.a.Store.JobRuns(ctx, row.ID)
	if err != nil {
		w.log.Error("store: cannot read the runs of a job; it is retried at the next start", "file", row.Name, "err", err)
		return
	}
	byNode := map[string]store.JobRun{}
	for _, jr := range prior {
		byNode[jr.Node] = jr
	}
	parallel := spec.Parallel
	if parallel <= 0 {
		parallel = w.a.Config.Int("lightsout", "max_parallel", 64)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, node := range row.Nodes {
		p, had := byNode[node]
		if had && runFinal(p.Status) {
			continue
		}
		var prev []int64
		if had {
			prev = append(prev, p.Previous...)
			if p.RunID != 0 {
				prev = append(prev, p.RunID)
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.runNode(ctx, row, spec, node, prev)
		}()
	}
	wg.Wait()
	runs, err := w.a.Store.JobRuns(ctx, row.ID)
	if err != nil {
		w.log.Error("store: cannot read the runs of a job; it is retried at the next start", "file", row.Name, "err", err)
		return
	}
	if w.runCtx.Err() != nil {
		for _, jr := range runs {
			if !runFinal(jr.Status) {
				w.requeue(ctx, row, true)
				return
			}
		}
	}
	w.finishRuns(ctx, row, spec.Action, spec.Script, runs, "")
}

// runNode runs the job's script on one node, recording the run as it
// starts and when it ends.
func (w *Watcher) runNode(ctx context.Context, row *store.Job, spec *Spec, node string, prev []int64) {
	jr := &store.JobRun{Job: row.ID, Node: node, Status: store.StatusRunning, Previous: prev, StartedAt: time.Now().UTC()}
	// A node an interrupted run (of this job or another) left uncleaned is
	// recovered first, as its own run, listed with the previous runs.
	rec, err := w.a.RecoverIfNeeded(w.runCtx, node)
	if rec != nil && rec.RunID != 0 {
		jr.Previous = append(jr.Previous, rec.RunID)
	}
	if err == nil {
		err = w.prepareNode(ctx, spec, node)
	}
	if err != nil {
		now := time.Now().UTC()
		jr.Status, jr.Error, jr.FinishedAt = store.StatusFailed, "no run was started: "+w.a.Redactor.String(err.Error()), &now
		if err := w.a.Store.SetJobRun(ctx, jr); err != nil {
			w.log.Error("store: cannot record the outcome of a node of a job", "node", node, "file", row.Name, "err", err)
		}
		return
	}
	params := map[string]string{}
	for k, v := range spec.Params {
		params[k] = v
	}
	for k, v := range actionParams(spec.Action) {
		params[k] = v
	}
	// the run and its link to the job are recorded in one transaction
	req := runtime.RunRequest{Script: spec.Script, Node: node, Params: params, Timeout: spec.Timeout, Wait: true, JobLink: jr}
	res, err := w.a.Engine.Run(w.runCtx, req)
	now := time.Now().UTC()
	jr.FinishedAt = &now
	if res.RunID == 0 {
		jr.Status, jr.Error = store.StatusFailed, "no run was started: "+w.a.Redactor.String(errString(err))
		if w.runCtx.Err() != nil {
			jr.Status = store.StatusCancelled
		}
	} else {
		jr.RunID, jr.Status, jr.Error = res.RunID, res.Status, res.Error
		if !res.StartedAt.IsZero() {
			jr.StartedAt = res.StartedAt
		}
		w.obs.RunFinished(res.Script, res.Status, res.FinishedAt.Sub(res.StartedAt))
	}
	if err := w.a.Store.SetJobRun(ctx, jr); err != nil {
		w.log.Error("store: cannot record the end of a run of a job", "run", jr.RunID, "file", row.Name, "err", err)
	}
}

// prepareNode records what the verb's playbook reads from the node, as
// the CLI verbs do: a deploy job's instance_info, a clean job's steps.
func (w *Watcher) prepareNode(ctx context.Context, spec *Spec, node string) error {
	if len(spec.InstanceInfo) > 0 {
		if _, err := w.a.UpdateNode(ctx, node, app.NodeChange{InstanceInfo: spec.InstanceInfo}); err != nil {
			return fmt.Errorf("instance_info could not be applied to node %s: %w", node, err)
		}
	}
	if len(spec.Steps) > 0 {
		if _, err := w.a.PrepareClean(ctx, node, spec.Steps); err != nil {
			return fmt.Errorf("clean steps could not be recorded on node %s: %w", node, err)
		}
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// finishRuns finishes a job from the runs of its nodes: done when all
// succeeded, else failed. extra is prepended to the error.
func (w *Watcher) finishRuns(ctx context.Context, row *store.Job, act, script string, runs []store.JobRun, extra string) {
	res := w.newResult(row)
	res.Action, res.Script = act, script
	status := store.JobDone
	var bad []string
	for _, jr := range runs {
		nr := NodeResult{Node: jr.Node, RunID: jr.RunID, Status: jr.Status, Error: jr.Error, PreviousRunIDs: jr.Previous,
			StartedAt: jr.StartedAt, FinishedAt: jr.FinishedAt}
		res.Nodes = append(res.Nodes, nr)
		if jr.RunID != 0 {
			res.RunIDs = append(res.RunIDs, jr.RunID)
		}
		if jr.Status != store.StatusSucceeded {
			status = store.JobFailed
			label := jr.Node
			if label == "" {
				label = "run"
			}
			bad = append(bad, fmt.Sprintf("%s %s: %s", label, jr.Status, firstLine(jr.Error)))
		}
	}
	if len(runs) == 0 {
		status = store.JobFailed
		bad = append(bad, "no run was recorded")
	}
	if len(bad) > 0 {
		msg := fmt.Sprintf("%d of %d runs did not succeed: ", len(bad), max(len(runs), 1))
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("… (%d more, see the nodes list)", len(bad)-5))
		}
		res.Error = msg + strings.Join(bad, "; ")
	}
	if extra != "" {
		status = store.JobFailed
		res.Error = strings.TrimSuffix(extra+"; "+res.Error, "; ")
	}
	w.finish(ctx, row, status, res)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
