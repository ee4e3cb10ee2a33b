// process.go: what happens to a claimed job — validation, node resolution,
// one run per node, the result file. watch.go holds the watcher, the spool
// scan and the claims.

package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

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
	id := spec.ID
	if id == "" {
		id = derivedID(row)
	}
	// The duplicate check and the switch to running are one transaction
	// serialised per job id across every process sharing the store.
	var dup *store.Job
	nodes := spec.Nodes
	updated, err := w.a.Store.ClaimJobID(ctx, row.ID, id, func(j, other *store.Job) error {
		if err := w.holds(row, j); err != nil {
			return err
		}
		dup = other
		j.JobID, j.Action, j.Nodes = id, spec.Action, nodes
		if dup == nil {
			j.Status = store.JobRunning
		}
		return nil
	})
	if err != nil {
		w.storeFailed("cannot record the job id of a job", "it is retried at the next start", row.Name, err)
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
	jr := &store.JobRun{Job: row.ID, Generation: row.Generation, Node: node, Status: store.StatusRunning, Previous: prev,
		StartedAt: time.Now().UTC()}
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
			w.fence(err)
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
		w.fence(err)
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
