package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Job statuses of watch-folder jobs (runtime/watch).
const (
	// JobClaimed: the file was renamed into processing/, nothing ran yet.
	JobClaimed = "claimed"
	// JobRunning: runs of the job may exist.
	JobRunning = "running"
	// JobRequeued: interrupted (crash or shutdown) and moved back to incoming/.
	JobRequeued = "requeued"
	// JobDone: every run succeeded.
	JobDone = "done"
	// JobFailed: a run did not succeed, or the job was interrupted too often.
	JobFailed = "failed"
	// JobInvalid: the job was refused before anything ran.
	JobInvalid = "invalid"
	// JobDuplicate: a job with the same id already ran or is running.
	JobDuplicate = "duplicate"
	// JobLost: the claimed file disappeared from processing/ (removed by hand).
	JobLost = "lost"
)

// JobFinal reports whether a job status is final (the job is in done/ or
// failed/, or on its way there).
func JobFinal(status string) bool {
	switch status {
	case JobDone, JobFailed, JobInvalid, JobDuplicate, JobLost:
		return true
	}
	return false
}

// Job is the claim record of one watch-folder job file.
type Job struct {
	ID int64 `json:"row"`
	// JobID is the job's "id", or one derived from its file name and
	// content; empty until the file was parsed.
	JobID string `json:"id"`
	// Name is the file name as dropped into incoming/.
	Name string `json:"name"`
	// File is the file's name in processing/ while claimed.
	File string `json:"file"`
	// Queued is the file's name in incoming/ after a re-queue.
	Queued string `json:"queued,omitempty"`
	SHA256 string `json:"sha256"`
	Action string `json:"action"`
	// Nodes are the resolved node names the job runs on ("" for a node-less run).
	Nodes    []string `json:"nodes"`
	Status   string   `json:"status"`
	Attempts int      `json:"attempts"`
	Error    string   `json:"error"`
	// Result is the result document written beside the job (JSON).
	Result string `json:"result,omitempty"`
	// Final is the job file's destination relative to the spool
	// ("done/x.json"), chosen when the job finished.
	Final string `json:"final,omitempty"`
	// Archived is set once the file reached its final place (or was lost).
	Archived   bool       `json:"archived"`
	Host       string     `json:"host"`
	PID        int        `json:"pid"`
	ClaimedAt  time.Time  `json:"claimed_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Conductor is the process (leases.go) holding the claim, 0 when the
	// store is not shared (SQLite: one watcher per folder).
	Conductor int64 `json:"conductor,omitempty"`
	// Generation grows at every claim or adoption of the job: a process
	// whose claim was taken over cannot write the job any more.
	Generation int64 `json:"generation,omitempty"`
	// Folder identifies the watch folder the job was dropped in (the id
	// runtime/watch keeps in the folder, the same on every host mounting
	// it); "" for jobs claimed before schema version 8, which any watcher
	// may judge.
	Folder string `json:"folder,omitempty"`
}

// JobRun is the run of a job on one node. Previous lists the ids of earlier
// runs on that node that were interrupted or cancelled and retried.
type JobRun struct {
	Job int64 `json:"-"`
	// Generation, when not 0, is the claim the caller holds (Job.Generation
	// as it read the job): the run is recorded only while the job's claim
	// generation is still this one, else SetJobRun (and CreateRun with the
	// link) fails with ErrFenced. A process whose claim was adopted by
	// another (its heartbeat stopped) cannot write the job's runs.
	Generation int64      `json:"-"`
	Node       string     `json:"node"`
	RunID      int64      `json:"run_id"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	Previous   []int64    `json:"previous_run_ids,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// JobFilter selects jobs for ListJobs; empty fields match everything.
type JobFilter struct {
	JobID  string
	File   string
	Queued string
	SHA256 string
	// Status lists the statuses to match.
	Status []string
	// Open selects only jobs that are not archived.
	Open bool
	// Folders lists the watch folders (Job.Folder) to match; "" in the
	// list matches jobs recorded without a folder (before schema version
	// 8). Empty: every folder.
	Folders []string
}

const jobCols = `id, job_id, name, file, queued, sha256, action, nodes, status, attempts, error, result, final,
	archived, host, pid, claimed_at, finished_at, conductor, claim_generation, folder`

func scanJob(row scanner) (*Job, error) {
	var j Job
	var nodes string
	var archived int
	var claimed int64
	var finished sql.NullInt64
	if err := row.Scan(&j.ID, &j.JobID, &j.Name, &j.File, &j.Queued, &j.SHA256, &j.Action, &nodes, &j.Status,
		&j.Attempts, &j.Error, &j.Result, &j.Final, &archived, &j.Host, &j.PID, &claimed, &finished,
		&j.Conductor, &j.Generation, &j.Folder); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(nodes), &j.Nodes); err != nil {
		return nil, fmt.Errorf("job %d: decode nodes: %w", j.ID, err)
	}
	j.Archived = archived != 0
	j.ClaimedAt = fromTS(claimed)
	if finished.Valid {
		t := fromTS(finished.Int64)
		j.FinishedAt = &t
	}
	return &j, nil
}

func jobArgs(j *Job) ([]any, error) {
	nodes := j.Nodes
	if nodes == nil {
		nodes = []string{}
	}
	b, err := json.Marshal(nodes)
	if err != nil {
		return nil, err
	}
	var fin any
	if j.FinishedAt != nil {
		fin = ts(*j.FinishedAt)
	}
	return []any{j.JobID, j.Name, j.File, j.Queued, j.SHA256, j.Action, string(b), j.Status, j.Attempts, j.Error,
		j.Result, j.Final, boolInt(j.Archived), j.Host, j.PID, ts(j.ClaimedAt), fin, j.Conductor, j.Generation, j.Folder}, nil
}

// CreateJob implements Store.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) CreateJob(ctx context.Context, j *Job) error {
	return s.retry(ctx, false, func() error { return s.createJobOnce(ctx, j) })
}

// createJobOnce is CreateJob without the retry.
func (s *DB) createJobOnce(ctx context.Context, j *Job) error {
	if j.ClaimedAt.IsZero() {
		j.ClaimedAt = time.Now().UTC()
	}
	if j.Status == "" {
		j.Status = JobClaimed
	}
	args, err := jobArgs(j)
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	defer t.Rollback()
	if j.Conductor != 0 {
		// A process taken over while it claimed the file must not run it:
		// its claim may already have been moved back and claimed again.
		var fenced *int64
		if err := t.QueryRowContext(ctx, `SELECT fenced_at FROM conductors WHERE id = ?`, j.Conductor).Scan(&fenced); err != nil {
			return fmt.Errorf("create job %s: conductor %d: %w", j.Name, j.Conductor, err)
		}
		if fenced != nil {
			return fmt.Errorf("create job %s: %w", j.Name, ErrFenced)
		}
	}
	err = t.QueryRowContext(ctx, `INSERT INTO jobs (job_id, name, file, queued, sha256, action, nodes, status,
		attempts, error, result, final, archived, host, pid, claimed_at, finished_at, conductor, claim_generation, folder)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, args...).Scan(&j.ID)
	if err == nil {
		err = t.Commit()
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", j.Name, err)
	}
	return nil
}

// GetJob implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) GetJob(ctx context.Context, id int64) (*Job, error) {
	var out *Job
	err := s.retry(ctx, true, func() (err error) {
		out, err = s.getJobOnce(ctx, id)
		return err
	})
	return out, err
}

// getJobOnce is GetJob without the retry.
func (s *DB) getJobOnce(ctx context.Context, id int64) (*Job, error) {
	return s.getJob(ctx, s.r, id, "")
}

func (s *DB) getJob(ctx context.Context, q querier, id int64, lock string) (*Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// UpdateJob implements Store.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) UpdateJob(ctx context.Context, id int64, fn func(j *Job) error) (*Job, error) {
	var out *Job
	err := s.retry(ctx, false, func() (err error) {
		out, err = s.updateJobOnce(ctx, id, fn)
		return err
	})
	return out, err
}

// updateJobOnce is UpdateJob without the retry.
func (s *DB) updateJobOnce(ctx context.Context, id int64, fn func(j *Job) error) (*Job, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update job %d: %w", id, err)
	}
	defer tx.Rollback()
	j, err := s.getJob(ctx, tx, id, s.d.forUpdate())
	if err != nil {
		return nil, err
	}
	if err := fn(j); err != nil {
		return nil, err
	}
	j.ID = id
	args, err := jobArgs(j)
	if err != nil {
		return nil, fmt.Errorf("update job %d: %w", id, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET job_id=?, name=?, file=?, queued=?, sha256=?, action=?, nodes=?,
		status=?, attempts=?, error=?, result=?, final=?, archived=?, host=?, pid=?, claimed_at=?, finished_at=?,
		conductor=?, claim_generation=?, folder=? WHERE id=?`,
		append(args, id)...)
	if err != nil {
		return nil, fmt.Errorf("update job %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update job %d: %w", id, err)
	}
	return j, nil
}

// ListJobs implements Store: jobs matching f, oldest first.
func (s *DB) ListJobs(ctx context.Context, f JobFilter) ([]*Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs WHERE 1=1`
	var args []any
	for _, c := range []struct{ col, v string }{{"job_id", f.JobID}, {"file", f.File}, {"queued", f.Queued}, {"sha256", f.SHA256}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	if len(f.Status) > 0 {
		q += ` AND status IN (?` + strings.Repeat(",?", len(f.Status)-1) + `)`
		for _, st := range f.Status {
			args = append(args, st)
		}
	}
	if f.Open {
		q += ` AND archived = 0`
	}
	if len(f.Folders) > 0 {
		q += ` AND folder IN (?` + strings.Repeat(",?", len(f.Folders)-1) + `)`
		for _, d := range f.Folders {
			args = append(args, d)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// SetJobRun implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) SetJobRun(ctx context.Context, jr *JobRun) error {
	return s.retry(ctx, true, func() error { return s.setJobRunOnce(ctx, jr) })
}

// setJobRunOnce is SetJobRun without the retry.
func (s *DB) setJobRunOnce(ctx context.Context, jr *JobRun) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set run of job %d on node %q: %w", jr.Job, jr.Node, err)
	}
	defer t.Rollback()
	if err := s.setJobRun(ctx, t, jr); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("set run of job %d on node %q: %w", jr.Job, jr.Node, err)
	}
	return nil
}

// setJobRun inserts or replaces jr inside the write transaction t, after
// checking the caller's claim (JobRun.Generation).
func (s *DB) setJobRun(ctx context.Context, t *tx, jr *JobRun) error {
	if jr.Generation != 0 {
		// The job row is locked (PostgreSQL; SQLite's writer transaction
		// locks everything): an adoption waits for this transaction or
		// happened before it, never in between.
		var gen int64
		err := t.QueryRowContext(ctx, `SELECT claim_generation FROM jobs WHERE id = ?`+s.d.forUpdate(), jr.Job).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("set run of job %d on node %q: job %w", jr.Job, jr.Node, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set run of job %d on node %q: %w", jr.Job, jr.Node, err)
		}
		if gen != jr.Generation {
			return fmt.Errorf("set run of job %d on node %q: the caller holds claim %d, the job is now at claim %d (another process adopted it): %w",
				jr.Job, jr.Node, jr.Generation, gen, ErrFenced)
		}
	}
	prev := jr.Previous
	if prev == nil {
		prev = []int64{}
	}
	b, err := json.Marshal(prev)
	if err != nil {
		return fmt.Errorf("set job run: %w", err)
	}
	if jr.StartedAt.IsZero() {
		jr.StartedAt = time.Now().UTC()
	}
	var fin any
	if jr.FinishedAt != nil {
		fin = ts(*jr.FinishedAt)
	}
	_, err = t.ExecContext(ctx, `INSERT INTO job_runs (job, node, run_id, status, error, previous, started_at, finished_at)
		VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (job, node) DO UPDATE SET run_id = excluded.run_id, status = excluded.status,
		error = excluded.error, previous = excluded.previous, started_at = excluded.started_at, finished_at = excluded.finished_at`, jr.Job, jr.Node, jr.RunID, jr.Status, jr.Error, string(b), ts(jr.StartedAt), fin)
	if err != nil {
		return fmt.Errorf("set run of job %d on node %q: %w", jr.Job, jr.Node, err)
	}
	return nil
}

// jobIDLockClass is the first key of the PostgreSQL advisory locks that
// serialise the duplicate check of one job id (ClaimJobID); the second is
// hashtext(job id).
const jobIDLockClass = 0x6a6f62 // "job"

// ClaimJobID implements Store: in one transaction serialised per job id
// (a PostgreSQL advisory lock on the id; SQLite's writer transaction
// serialises every write), it reads job id with its row locked and the
// other job already holding jobID (claimed, running, re-queued, done or
// failed; nil when none), calls fn, which sets the job's id and status,
// and persists the job. Processes handed two files with one job id at
// once thus see each other: exactly one of them runs it.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) ClaimJobID(ctx context.Context, id int64, jobID string, fn func(j, dup *Job) error) (*Job, error) {
	var out *Job
	err := s.retry(ctx, false, func() (err error) {
		out, err = s.claimJobIDOnce(ctx, id, jobID, fn)
		return err
	})
	return out, err
}

// claimJobIDOnce is ClaimJobID without the retry.
func (s *DB) claimJobIDOnce(ctx context.Context, id int64, jobID string, fn func(j, dup *Job) error) (*Job, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim job id %q for job %d: %w", jobID, id, err)
	}
	defer t.Rollback()
	if s.d.name == DialectPostgres {
		if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+strconv.Itoa(jobIDLockClass)+`, hashtext(?))`, jobID); err != nil {
			return nil, fmt.Errorf("claim job id %q for job %d: lock: %w", jobID, id, err)
		}
	}
	j, err := s.getJob(ctx, t, id, s.d.forUpdate())
	if err != nil {
		return nil, err
	}
	dup, err := scanJob(t.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE job_id = ? AND id != ? AND status IN (?,?,?,?,?)
		ORDER BY id LIMIT 1`, jobID, id, JobClaimed, JobRunning, JobRequeued, JobDone, JobFailed))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		dup = nil
	case err != nil:
		return nil, fmt.Errorf("claim job id %q for job %d: %w", jobID, id, err)
	}
	if err := fn(j, dup); err != nil {
		return nil, err
	}
	j.ID = id
	args, err := jobArgs(j)
	if err != nil {
		return nil, fmt.Errorf("claim job id %q for job %d: %w", jobID, id, err)
	}
	_, err = t.ExecContext(ctx, `UPDATE jobs SET job_id=?, name=?, file=?, queued=?, sha256=?, action=?, nodes=?,
		status=?, attempts=?, error=?, result=?, final=?, archived=?, host=?, pid=?, claimed_at=?, finished_at=?,
		conductor=?, claim_generation=?, folder=? WHERE id=?`, append(args, id)...)
	if err == nil {
		err = t.Commit()
	}
	if err != nil {
		return nil, fmt.Errorf("claim job id %q for job %d: %w", jobID, id, err)
	}
	return j, nil
}

// JobRuns implements Store: the runs of a job, by node name.
func (s *DB) JobRuns(ctx context.Context, job int64) ([]JobRun, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT node, run_id, status, error, previous, started_at, finished_at
		FROM job_runs WHERE job = ? ORDER BY node`, job)
	if err != nil {
		return nil, fmt.Errorf("runs of job %d: %w", job, err)
	}
	defer rows.Close()
	var out []JobRun
	for rows.Next() {
		jr := JobRun{Job: job}
		var prev string
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&jr.Node, &jr.RunID, &jr.Status, &jr.Error, &prev, &started, &finished); err != nil {
			return nil, fmt.Errorf("runs of job %d: %w", job, err)
		}
		if err := json.Unmarshal([]byte(prev), &jr.Previous); err != nil {
			return nil, fmt.Errorf("runs of job %d: %w", job, err)
		}
		jr.StartedAt = fromTS(started)
		if finished.Valid {
			t := fromTS(finished.Int64)
			jr.FinishedAt = &t
		}
		out = append(out, jr)
	}
	return out, rows.Err()
}

// JobAdopter is the job API of a store shared by several watchers.
type JobAdopter interface {
	AdoptJobs(ctx context.Context, by int64, folder string) ([]*Job, error)
}

var _ JobAdopter = (*DB)(nil)

// AdoptJobs moves to conductor by the open (not archived) jobs whose
// process is gone: never registered (conductor 0, a watcher of an older
// lightsout), unregistered, or taken over (fenced, TakeOver). Each adopted
// job's claim generation grows, so the process that lost it cannot write
// it any more (see Job.Generation). On PostgreSQL the rows are locked with
// FOR UPDATE SKIP LOCKED: processes adopting at once split the jobs, each
// job goes to exactly one of them. The caller then finishes, re-queues or
// fails each job (runtime/watch). Only jobs of watch folder folder (and
// those recorded without a folder) are adopted: a process watching another
// folder could neither move nor re-queue their files; folder "" adopts
// every folder's jobs. A conductor that was taken over (or is not
// registered) adopts nothing: ErrFenced.
func (s *DB) AdoptJobs(ctx context.Context, by int64, folder string) ([]*Job, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("adopt jobs: %w", err)
	}
	defer t.Rollback()
	// A process taken over (fenced) adopts nothing: it may have resumed
	// after a SIGSTOP and must not write.
	var fenced *int64
	err = t.QueryRowContext(ctx, `SELECT fenced_at FROM conductors WHERE id = ?`, by).Scan(&fenced)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && fenced != nil):
		return nil, fmt.Errorf("adopt jobs for conductor %d: %w", by, ErrFenced)
	case err != nil:
		return nil, fmt.Errorf("adopt jobs: %w", err)
	}
	skip := ""
	if s.d.name == DialectPostgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	q := `SELECT ` + jobCols + ` FROM jobs WHERE archived = 0 AND conductor != ?
		AND NOT EXISTS (SELECT 1 FROM conductors c WHERE c.id = jobs.conductor AND c.fenced_at IS NULL)`
	args := []any{by}
	if folder != "" {
		q += ` AND folder IN (?, '')`
		args = append(args, folder)
	}
	rows, err := t.QueryContext(ctx, q+` ORDER BY id`+skip, args...)
	if err != nil {
		return nil, fmt.Errorf("adopt jobs: %w", err)
	}
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("adopt jobs: %w", err)
		}
		out = append(out, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("adopt jobs: %w", err)
	}
	for _, j := range out {
		j.Conductor = by
		j.Generation++
		if _, err := t.ExecContext(ctx, `UPDATE jobs SET conductor = ?, claim_generation = ? WHERE id = ?`, by, j.Generation, j.ID); err != nil {
			return nil, fmt.Errorf("adopt job %d: %w", j.ID, err)
		}
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("adopt jobs: %w", err)
	}
	return out, nil
}
