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
// back to incoming/ and fail after Options.MaxAttempts claims. With a
// SQLite store one process watches a folder at a time (a lock file in DIR);
// processes sharing a PostgreSQL store may watch one folder together. Job
// rows name their folder (the id in DIR/.lightsout-folder-id): a watcher
// judges only its own folder's jobs.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// shared is set when the store is shared by several processes
	// (PostgreSQL): claims belong to this process's conductor, and the
	// jobs of stopped processes are adopted (reconcile) while running.
	shared *app.Shared

	kickC      chan struct{}
	slots      chan struct{}
	wg         sync.WaitGroup
	inflight   atomic.Int64
	runCtx     context.Context
	cancelRuns context.CancelFunc
	abortOnce  sync.Once
	abortC     chan struct{}
	fenceOnce  sync.Once
	fencedC    chan struct{} // closed when another process took over this one's claims

	nameMu   sync.Mutex // destination names
	reserved map[string]bool

	mu      sync.Mutex
	seen    map[string]seenFile
	noted   map[string]bool
	pending map[int64]bool // finished jobs whose move failed: retried each scan
	active  map[int64]bool // jobs a goroutine of this process works on
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
	shared := a.Shared()
	if shared != nil && shared.Store == nil {
		shared = nil
	}
	sp, err := openSpool(o.Dir, shared != nil)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	runCtx, cancel := context.WithCancel(context.Background())
	w := &Watcher{o: o, a: a, sp: sp, log: o.Logger.With("watch", sp.dir), obs: o.Observer, host: host, pid: os.Getpid(), shared: shared,
		kickC: make(chan struct{}, 1), slots: make(chan struct{}, o.Parallel), runCtx: runCtx, cancelRuns: cancel,
		abortC: make(chan struct{}), fencedC: make(chan struct{}), reserved: map[string]bool{}, seen: map[string]seenFile{}, noted: map[string]bool{},
		pending: map[int64]bool{}, active: map[int64]bool{}}
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
	var adopt <-chan time.Time // shared: the jobs of stopped processes are adopted
	if w.shared != nil {
		t := time.NewTicker(w.shared.Interval)
		defer t.Stop()
		adopt = t.C
	}
	for ctx.Err() == nil && !w.isFenced() {
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
		case <-w.fencedC:
		case <-adopt:
			if err := w.reconcile(ctx); err != nil && ctx.Err() == nil {
				w.fence(err)
				w.setErr(err)
				w.log.Warn("adopt the jobs of stopped processes", "err", err)
			}
		}
	}
	if w.isFenced() {
		w.log.Error("another process took over this process's claims (its heartbeat stopped for longer than [conductor] heartbeat_timeout): giving its jobs up and stopping; restart it to watch again")
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
	if w.isFenced() {
		return fmt.Errorf("watch folder %s: %w", w.sp.dir, store.ErrFenced)
	}
	return nil
}

// fence records that this process lost its claims (store.ErrFenced): it
// stops claiming and Run returns.
func (w *Watcher) fence(err error) {
	if errors.Is(err, store.ErrFenced) {
		w.fenceOnce.Do(func() { close(w.fencedC) })
	}
}

// storeFailed logs that the store refused or failed what for job file:
// refused with store.ErrFenced (another process took the job over), the
// watcher is fenced and gives the job up; otherwise then says what
// happens to the job.
func (w *Watcher) storeFailed(what, then, file string, err error) {
	w.fence(err)
	if errors.Is(err, store.ErrFenced) {
		w.log.Error("store: "+what+": another process took the job over; giving it up", "file", file, "err", err)
		return
	}
	w.log.Error("store: "+what+"; "+then, "file", file, "err", err)
}

func (w *Watcher) isFenced() bool {
	select {
	case <-w.fencedC:
		return true
	default:
		return false
	}
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
	proc, err := w.sp.moveFree(w.sp.path(Incoming, name), Processing, name)
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
		w.fence(err)
		w.log.Error("cannot record a claim in the store; moving the job back", "file", name, "err", err)
		w.unclaim(proc, name)
		return false
	}
	w.obs.JobClaimed()
	w.inflight.Add(1)
	w.wg.Add(1)
	w.mu.Lock()
	w.active[row.ID] = true
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			delete(w.active, row.ID)
			w.mu.Unlock()
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
	if _, err := w.sp.moveFree(w.sp.path(Processing, proc), Incoming, name); err != nil {
		w.log.Error("cannot move a job back to incoming/ (it is retried at the next start)", "file", proc, "err", err)
	}
}

// recordClaim creates the claim record, or re-claims the record of a job
// that was re-queued under this name with this content.
func (w *Watcher) recordClaim(ctx context.Context, name, proc, sum string) (*store.Job, error) {
	st := w.a.Store
	prev, err := st.ListJobs(ctx, store.JobFilter{Queued: name, SHA256: sum, Status: []string{store.JobRequeued}, Open: true,
		Folders: w.folders()})
	if err != nil {
		return nil, err
	}
	if len(prev) > 0 {
		return st.UpdateJob(ctx, prev[len(prev)-1].ID, func(j *store.Job) error {
			j.Status, j.File, j.Queued = store.JobClaimed, proc, ""
			j.Attempts++
			j.Host, j.PID = w.host, w.pid
			j.Conductor = w.conductor()
			j.Generation++
			j.Folder = w.sp.id
			return nil
		})
	}
	j := &store.Job{Name: name, File: proc, SHA256: sum, Status: store.JobClaimed, Attempts: 1, Host: w.host, PID: w.pid,
		Conductor: w.conductor(), Generation: 1, Folder: w.sp.id}
	return j, st.CreateJob(ctx, j)
}

// folders selects the job rows of this watcher's folder, and those
// recorded before job rows had a folder (store.JobFilter.Folders).
func (w *Watcher) folders() []string { return []string{w.sp.id, ""} }

// conductor is this process's conductor id, 0 when the store is not shared.
func (w *Watcher) conductor() int64 {
	if w.shared == nil {
		return 0
	}
	return w.shared.Conductor
}

// update applies fn to the job of row in the store. With a shared store it
// is refused (store.ErrFenced) once this process no longer holds the claim
// row was read with: another process adopted the job after this one's
// heartbeat stopped.
func (w *Watcher) update(ctx context.Context, row *store.Job, fn func(j *store.Job) error) (*store.Job, error) {
	j, err := w.a.Store.UpdateJob(ctx, row.ID, func(j *store.Job) error {
		if err := w.holds(row, j); err != nil {
			return err
		}
		return fn(j)
	})
	return j, err
}

// holds checks, inside a transaction that read the job as j, that this
// process still holds the claim row was read with (store.ErrFenced when
// another process adopted the job, or the job was claimed again since).
func (w *Watcher) holds(row, j *store.Job) error {
	if j.Generation != row.Generation || (w.shared != nil && j.Conductor != w.shared.Conductor) {
		return fmt.Errorf("job %s (claim %d, now claim %d held by conductor %d): %w", row.Name, row.Generation, j.Generation, j.Conductor, store.ErrFenced)
	}
	return nil
}
