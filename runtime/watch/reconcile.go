package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/store"
)

// reconcile brings processing/ and the store back in line after the last
// watcher of this folder stopped, however it stopped. The engine has
// already marked the runs of dead processes interrupted and unlocked their
// nodes (runtime.New). It judges only the jobs of this folder (their rows
// name it, store.Job.Folder, and rows recorded before they did): the jobs
// of other folders sharing the store, even those of a dead process, are
// left to their own folder's watcher.
//
// With a shared store (several processes on one folder) it only touches
// the jobs this process adopted (store.AdoptJobs: those of processes that
// stopped or were taken over, whose runs TakeOver interrupted), and the
// unrecorded files of processing/ renamed longer ago than the heartbeat
// timeout; Run calls it again every heartbeat interval.
func (w *Watcher) reconcile(ctx context.Context) error {
	st := w.a.Store
	var mine map[int64]*store.Job // shared: the adopted jobs; nil: every job
	if w.shared != nil {
		adopted, err := w.shared.Store.AdoptJobs(ctx, w.shared.Conductor, w.sp.id)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		mine = map[int64]*store.Job{}
		for _, j := range adopted {
			mine[j.ID] = j
		}
		if len(adopted) > 0 {
			w.log.Warn("adopted the jobs of a stopped process", "jobs", len(adopted))
		}
		// This process's own jobs left unfinished by a store error (the
		// database restarting, say) are recovered the same way.
		own, err := st.ListJobs(ctx, store.JobFilter{Open: true, Folders: w.folders()})
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		for _, j := range own {
			w.mu.Lock()
			busy := w.active[j.ID] || w.pending[j.ID]
			w.mu.Unlock()
			// (a re-queued job is in incoming/: whoever claims it first)
			if j.Conductor != w.shared.Conductor || busy || j.Status == store.JobRequeued {
				continue
			}
			fresh, err := st.GetJob(ctx, j.ID) // its goroutine may have finished it meanwhile
			if err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
			if !fresh.Archived && fresh.Conductor == w.shared.Conductor {
				mine[j.ID] = fresh
			}
		}
	}
	entries, err := os.ReadDir(w.sp.path(Processing))
	if err != nil {
		return fmt.Errorf("watch folder: read %s: %w", w.sp.path(Processing), err)
	}
	inProc := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		inProc[name] = true
		sum, _, _, err := fingerprint(w.sp.path(Processing, name), w.o.MaxSize)
		if errors.Is(err, os.ErrNotExist) {
			continue // finished or moved meanwhile (another process)
		}
		if err != nil {
			w.log.Error("reconcile: cannot read a job in processing/", "file", name, "err", err)
			continue
		}
		rows, err := st.ListJobs(ctx, store.JobFilter{File: name, SHA256: sum, Open: true, Folders: w.folders()})
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if len(rows) == 0 {
			if w.shared != nil && !changedBefore(w.sp.path(Processing, name), time.Now().Add(-w.shared.Timeout)) {
				continue // another live process may be recording its claim
			}
			// Claimed, then the process died before the claim was recorded:
			// nothing ran. (A process stopped since then longer than the
			// heartbeat timeout was fenced: it cannot record it any more.)
			w.log.Info("reconcile: unrecorded claim goes back to incoming/", "file", name)
			w.unclaim(name, name)
			continue
		}
		row := rows[len(rows)-1]
		if mine != nil {
			if row = mine[row.ID]; row == nil {
				continue // a live process holds it
			}
		}
		switch {
		case store.JobFinal(row.Status):
			w.archive(ctx, row)
		case row.Status == store.JobRequeued:
			w.requeue(ctx, row, false)
		default:
			w.recover(ctx, row)
		}
	}
	var open []*store.Job
	if mine != nil {
		for _, j := range mine {
			open = append(open, j)
		}
	} else if open, err = st.ListJobs(ctx, store.JobFilter{Open: true, Folders: w.folders()}); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, row := range open {
		if mine == nil && row.PID > 0 && row.Host != "" && row.PID != w.pid && runtime.RunAlive(&store.Run{Host: row.Host, PID: row.PID}) {
			// Claimed by another live process sharing the store (it
			// watches another folder): not this watcher's to judge.
			continue
		}
		switch {
		case row.Status == store.JobRequeued:
			if exists(w.sp.path(Incoming, row.Queued)) {
				continue
			}
		case inProc[row.File]:
			continue
		}
		w.mu.Lock()
		pending := w.pending[row.ID]
		w.mu.Unlock()
		if pending {
			continue
		}
		status := row.Status
		msg := row.Error
		if !store.JobFinal(status) {
			status = store.JobLost
			msg = "the job file disappeared from the spool while claimed (removed by hand?)"
			w.log.Warn("reconcile: job file is gone", "file", row.Name, "was", row.Status)
		}
		now := time.Now().UTC()
		if _, err := w.update(ctx, row, func(j *store.Job) error {
			j.Status, j.Error, j.Archived = status, msg, true
			if j.FinishedAt == nil {
				j.FinishedAt = &now
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}
	return nil
}

// recover handles a job whose process died while it was claimed or
// running: runs that finished keep their outcome; the job finishes when
// every node has a final outcome, else it is re-queued, or failed after
// MaxAttempts claims.
func (w *Watcher) recover(ctx context.Context, row *store.Job) {
	st := w.a.Store
	runs, err := st.JobRuns(ctx, row.ID)
	if err != nil {
		w.log.Error("reconcile: cannot read the runs of a job", "file", row.Name, "err", err)
		return
	}
	final := map[string]bool{}
	for i := range runs {
		jr := &runs[i]
		if jr.Status == store.StatusRunning && jr.RunID != 0 {
			if r, err := st.GetRun(ctx, jr.RunID); err == nil {
				jr.Status, jr.Error, jr.FinishedAt = r.Status, r.Error, r.FinishedAt
				if jr.Status == store.StatusRunning {
					// The process that ran it is gone (we hold the folder lock).
					jr.Status = store.StatusInterrupted
				}
				jr.Generation = row.Generation // this process's claim (adopted, or its own)
				if err := st.SetJobRun(ctx, jr); err != nil {
					w.log.Error("reconcile: cannot update a job run", "run", jr.RunID, "err", err)
				}
			}
		}
		final[jr.Node] = runFinal(jr.Status)
	}
	all := len(row.Nodes) > 0 && row.Status == store.JobRunning
	for _, n := range row.Nodes {
		all = all && final[n]
	}
	script, _ := ActionScript(row.Action)
	if row.Action == "run" {
		if _, data, _, err := fingerprint(w.sp.path(Processing, row.File), w.o.MaxSize); err == nil {
			if spec, err := Parse(row.Name, data); err == nil {
				script = spec.Script
			}
		}
	}
	switch {
	case all:
		w.log.Info("reconcile: every run of an interrupted job had finished", "file", row.Name)
		w.finishRuns(ctx, row, row.Action, script, runs, "")
	case row.Attempts >= w.o.MaxAttempts:
		extra := fmt.Sprintf("interrupted %d times (the watcher died or was killed while the job ran): giving up after --max-attempts %d",
			row.Attempts, w.o.MaxAttempts)
		if len(runs) == 0 {
			res := w.newResult(row)
			res.Error = extra
			w.finish(ctx, row, store.JobFailed, res)
			return
		}
		w.finishRuns(ctx, row, row.Action, script, runs, extra)
	default:
		w.requeue(ctx, row, false)
	}
}
