package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// Result is the document written next to a finished job as
// <name>.result.json. Its schema is part of the producer protocol.
type Result struct {
	// Job is the job's id (its "id", or <file>@<sha256 prefix>).
	Job  string `json:"job"`
	File string `json:"file"`
	// Action and Script are empty when the job could not be parsed.
	Action string `json:"action,omitempty"`
	Script string `json:"script,omitempty"`
	// Status is done, failed, invalid (refused before anything ran) or
	// duplicate (the id already ran).
	Status      string `json:"status"`
	Error       string `json:"error"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Attempts is how many times the job was claimed.
	Attempts int `json:"attempts"`
	// RunIDs are the final run of each node (see `lightsout runs show ID`).
	RunIDs     []int64      `json:"run_ids"`
	Nodes      []NodeResult `json:"nodes"`
	StartedAt  time.Time    `json:"started_at"`
	FinishedAt time.Time    `json:"finished_at"`
	Host       string       `json:"host"`
}

// NodeResult is the outcome on one node ("" for a node-less run).
type NodeResult struct {
	Node   string `json:"node"`
	RunID  int64  `json:"run_id"`
	Status string `json:"status"`
	Error  string `json:"error"`
	// PreviousRunIDs are runs on this node interrupted by a crash or a
	// shutdown and retried.
	PreviousRunIDs []int64    `json:"previous_run_ids,omitempty"`
	StartedAt      time.Time  `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
}

func (w *Watcher) newResult(row *store.Job) *Result {
	id := row.JobID
	if id == "" {
		id = derivedID(row)
	}
	return &Result{Job: id, File: row.Name, Action: row.Action, Attempts: row.Attempts, RunIDs: []int64{},
		Nodes: []NodeResult{}, StartedAt: row.ClaimedAt, Host: w.host}
}

// finish records the job's final status and result, then moves it to
// done/ or failed/ with its result file.
func (w *Watcher) finish(ctx context.Context, row *store.Job, status string, res *Result) {
	res.Status = status
	res.FinishedAt = time.Now().UTC()
	res.Error = w.a.Redactor.String(res.Error)
	for i := range res.Nodes {
		res.Nodes[i].Error = w.a.Redactor.String(res.Nodes[i].Error)
	}
	body, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		w.log.Error("encode job result", "file", row.Name, "err", err)
		return
	}
	dest := Failed
	if status == store.JobDone {
		dest = Done
	}
	w.nameMu.Lock()
	final := free(row.Name, func(n string) bool {
		return w.reserved[path.Join(dest, n)] || exists(w.sp.path(dest, n)) || exists(w.sp.path(dest, resultName(n)))
	})
	rel := path.Join(dest, final)
	w.reserved[rel] = true
	w.nameMu.Unlock()
	defer func() {
		w.nameMu.Lock()
		delete(w.reserved, rel)
		w.nameMu.Unlock()
	}()
	fin := res.FinishedAt
	updated, err := w.update(ctx, row, func(j *store.Job) error {
		j.Status, j.Error, j.Result, j.Final, j.FinishedAt = status, res.Error, string(body)+"\n", rel, &fin
		return nil
	})
	if err != nil {
		w.storeFailed("cannot record a finished job", "it is finished again at the next start", row.Name, err)
		return
	}
	w.archive(ctx, updated)
}

// errNameTaken: another process placed a file under the job's final name
// first (several processes sharing one folder).
var errNameTaken = errors.New("the final name is taken")

// archive writes the result file and moves the job file to its final
// place. It is idempotent: reconcile calls it after a crash. Neither file
// ever replaces another: when another process finished a job of the same
// name first, the job gets the next free name (stem~N.ext).
func (w *Watcher) archive(ctx context.Context, row *store.Job) {
	err := w.place(row)
	for try := 0; errors.Is(err, errNameTaken) && try < 100; try++ {
		var moved *store.Job
		if moved, err = w.rename(ctx, row); err == nil {
			row = moved
			err = w.place(row)
		}
	}
	if err != nil {
		w.log.Error("cannot move a finished job out of processing/ (retried)", "file", row.Name, "to", row.Final, "err", err)
		w.setErr(err)
		w.fence(err)
		w.mu.Lock()
		w.pending[row.ID] = true
		w.mu.Unlock()
		return
	}
	if _, err := w.update(ctx, row, func(j *store.Job) error { j.Archived = true; return nil }); err != nil {
		w.log.Error("store: cannot mark a job archived", "file", row.Name, "err", err)
	}
	w.mu.Lock()
	delete(w.pending, row.ID)
	w.mu.Unlock()
	w.obs.JobFinished(row.Status)
	level := w.log.Info
	if row.Status != store.JobDone {
		level = w.log.Warn
	}
	level("job finished", "file", row.Name, "status", row.Status, "to", row.Final, "error", firstLine(row.Error))
}

// rename records the next free final name of a job whose name was taken.
func (w *Watcher) rename(ctx context.Context, row *store.Job) (*store.Job, error) {
	dir := path.Dir(row.Final)
	w.nameMu.Lock()
	defer w.nameMu.Unlock()
	final := free(row.Name, func(n string) bool {
		return path.Join(dir, n) == row.Final || w.reserved[path.Join(dir, n)] || exists(w.sp.path(dir, n)) || exists(w.sp.path(dir, resultName(n)))
	})
	return w.update(ctx, row, func(j *store.Job) error {
		j.Final = path.Join(dir, final)
		return nil
	})
}

// place puts the result file, then the job file, under the job's final
// name (row.Final), each with a rename that never replaces a file:
// errNameTaken when another job's file is there.
func (w *Watcher) place(row *store.Job) error {
	dir, name := path.Split(row.Final)
	dir = path.Clean(dir)
	res := w.sp.path(dir, resultName(name))
	err := writeNoReplace(res, []byte(row.Result))
	if errors.Is(err, os.ErrExist) {
		if b, rerr := os.ReadFile(res); rerr != nil || string(b) != row.Result {
			return errNameTaken // another job's result
		}
		err = nil // written before a crash
	}
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	src := w.sp.path(Processing, row.File)
	err = renameNoReplace(src, w.sp.path(dir, name))
	switch {
	case errors.Is(err, os.ErrExist):
		// Another job's file has this name (the result name was free):
		// take our result back and choose another name.
		if rerr := os.Remove(res); rerr != nil {
			return fmt.Errorf("job file name taken; remove the result written: %w", rerr)
		}
		return errNameTaken
	case errors.Is(err, os.ErrNotExist) && exists(w.sp.path(dir, name)):
		err = nil // moved before a crash
	}
	if err != nil {
		return err
	}
	syncDir(w.sp.path(dir))
	syncDir(w.sp.path(Processing))
	return nil
}

// retryPending retries moves that failed (e.g. done/ was not writable).
func (w *Watcher) retryPending(ctx context.Context) {
	w.mu.Lock()
	ids := make([]int64, 0, len(w.pending))
	for id := range w.pending {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		row, err := w.a.Store.GetJob(ctx, id)
		if err != nil {
			continue
		}
		if row.Conductor != w.conductor() { // adopted by another process
			w.mu.Lock()
			delete(w.pending, id)
			w.mu.Unlock()
			continue
		}
		w.archive(ctx, row)
	}
}

// requeue moves an interrupted job back to incoming/. refund gives back
// the attempt (the job was stopped by a shutdown, not by a crash).
func (w *Watcher) requeue(ctx context.Context, row *store.Job, refund bool) {
	w.nameMu.Lock()
	defer w.nameMu.Unlock()
	want := row.Name
	if row.Status == store.JobRequeued && row.Queued != "" {
		want = row.Queued
	}
	var q string
	var err error
	for try := 0; try < 100; try++ {
		// the name is recorded, then taken without replacing a file a
		// producer or another process put there meanwhile
		q = free(want, func(n string) bool { return exists(w.sp.path(Incoming, n)) })
		first := try == 0
		updated, uerr := w.update(ctx, row, func(j *store.Job) error {
			j.Status, j.Queued = store.JobRequeued, q
			if first && refund && j.Attempts > 0 {
				j.Attempts--
			}
			return nil
		})
		if uerr != nil {
			w.fence(uerr)
			w.log.Error("store: cannot record a re-queue; retried at the next start", "file", row.Name, "err", uerr)
			return
		}
		row = updated
		if err = renameNoReplace(w.sp.path(Processing, row.File), w.sp.path(Incoming, q)); !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		w.log.Error("cannot move a job back to incoming/; retried at the next start", "file", row.Name, "err", err)
		return
	}
	syncDir(w.sp.path(Incoming))
	w.obs.JobRequeued()
	w.log.Warn("job re-queued", "file", row.Name, "as", q, "attempts", row.Attempts, "max_attempts", w.o.MaxAttempts)
}
