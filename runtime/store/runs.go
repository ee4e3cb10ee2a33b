package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/states"
)

// CreateRun implements Store.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) CreateRun(ctx context.Context, r *Run) error {
	return s.retry(ctx, false, func() error { return s.createRunOnce(ctx, r) })
}

// createRunOnce is CreateRun without the retry.
func (s *DB) createRunOnce(ctx context.Context, r *Run) error {
	params, err := json.Marshal(r.Params)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	if r.Status == "" {
		r.Status = StatusRunning
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now().UTC()
	}
	var node any
	if r.NodeUUID != "" {
		node = r.NodeUUID
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO runs (script, script_sha256, node_uuid, node_name, params, status, error, started_at, host, pid, conductor)
		VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, r.Script, r.ScriptSHA, node, r.NodeName, string(params), r.Status, r.Error,
		ts(r.StartedAt), r.Host, r.PID, r.Conductor).Scan(&id)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	if r.JobLink != nil {
		r.JobLink.RunID = id
		if err := s.setJobRun(ctx, tx, r.JobLink); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	r.ID = id
	return nil
}

// FinishRun implements Store. It is idempotent (the same status and error
// again is accepted), so it is retried while the connection to PostgreSQL
// is lost, even when a lost answer leaves unknown whether the update
// committed (retry).
func (s *DB) FinishRun(ctx context.Context, id int64, status, errMsg string) error {
	return s.retry(ctx, true, func() error { return s.finishRunOnce(ctx, id, status, errMsg) })
}

// finishRunOnce is FinishRun without the retry.
func (s *DB) finishRunOnce(ctx context.Context, id int64, status, errMsg string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND (status = ? OR finished_at IS NULL)`,
		status, secrets.MaskURLs(errMsg), ts(time.Now().UTC()), id, StatusRunning)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	// Fencing: a run interrupted meanwhile (its process was taken over, or
	// found dead) keeps the status recovery gave it.
	var was, wasErr string
	if err := s.r.QueryRowContext(ctx, `SELECT status, error FROM runs WHERE id = ?`, id).Scan(&was, &wasErr); err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if was == status && wasErr == secrets.MaskURLs(errMsg) {
		// the same finish again: an earlier attempt committed but its
		// answer was lost with the connection (FinishRun is idempotent)
		return nil
	}
	if was == StatusInterrupted {
		return fmt.Errorf("finish run %d as %s: it was interrupted meanwhile: %w", id, status, ErrFenced)
	}
	return fmt.Errorf("finish run %d as %s: it is already %s", id, status, was)
}

const runCols = `id, script, script_sha256, COALESCE(node_uuid, ''), node_name, params, status, error, started_at, finished_at, host, pid, conductor`

func scanRun(row scanner) (*Run, error) {
	var r Run
	var params string
	var started int64
	var finished sql.NullInt64
	if err := row.Scan(&r.ID, &r.Script, &r.ScriptSHA, &r.NodeUUID, &r.NodeName, &params, &r.Status, &r.Error,
		&started, &finished, &r.Host, &r.PID, &r.Conductor); err != nil {
		return nil, err
	}
	r.StartedAt = fromTS(started)
	if finished.Valid {
		t := fromTS(finished.Int64)
		r.FinishedAt = &t
	}
	if err := json.Unmarshal([]byte(params), &r.Params); err != nil {
		return nil, fmt.Errorf("run %d: decode params: %w", r.ID, err)
	}
	return &r, nil
}

// GetRun implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) GetRun(ctx context.Context, id int64) (*Run, error) {
	var out *Run
	err := s.retry(ctx, true, func() (err error) {
		out, err = s.getRunOnce(ctx, id)
		return err
	})
	return out, err
}

// getRunOnce is GetRun without the retry.
func (s *DB) getRunOnce(ctx context.Context, id int64) (*Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w (see `lightsout runs list`)", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get run %d: %w", id, err)
	}
	return r, nil
}

// ListRuns implements Store.
func (s *DB) ListRuns(ctx context.Context, f RunFilter) ([]*Run, error) {
	q := `SELECT ` + runCols + ` FROM runs WHERE 1=1`
	var args []any
	if f.Node != "" {
		q += ` AND (node_name = ? OR node_uuid = ?)`
		args = append(args, f.Node, f.Node)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Before > 0 {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	if f.After > 0 {
		q += ` AND id > ?`
		args = append(args, f.After)
	}
	switch {
	case f.Limit > 0 && f.After > 0:
		q += fmt.Sprintf(` ORDER BY id LIMIT %d`, f.Limit)
	case f.Limit > 0: // the last Limit runs, oldest first
		q = `SELECT * FROM (` + q + fmt.Sprintf(` ORDER BY id DESC LIMIT %d) AS page ORDER BY id`, f.Limit)
	default:
		q += ` ORDER BY id`
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AppendEvents implements Store: one transaction per batch.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) AppendEvents(ctx context.Context, evs []Event) error {
	return s.retry(ctx, false, func() error { return s.appendEventsOnce(ctx, evs) })
}

// appendEventsOnce is AppendEvents without the retry.
func (s *DB) appendEventsOnce(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO events (run_id, seq, time, kind, name, data) VALUES (?,?,?,?,?,?)
		ON CONFLICT (run_id, seq) DO UPDATE SET time = excluded.time, kind = excluded.kind, name = excluded.name, data = excluded.data`)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer stmt.Close()
	for _, e := range evs {
		data := "{}"
		if len(e.Data) > 0 {
			b, err := json.Marshal(e.Data)
			if err != nil {
				b, _ = json.Marshal(map[string]string{"error": "unencodable event data: " + err.Error()})
			}
			data = string(b)
		}
		if _, err := stmt.ExecContext(ctx, e.RunID, e.Seq, ts(e.Time), e.Kind, e.Name, data); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// Events implements Store.
func (s *DB) Events(ctx context.Context, runID int64) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, time, kind, name, data FROM events WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, fmt.Errorf("events of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e := Event{RunID: runID}
		var t int64
		var data string
		if err := rows.Scan(&e.Seq, &t, &e.Kind, &e.Name, &data); err != nil {
			return nil, fmt.Errorf("events of run %d: %w", runID, err)
		}
		e.Time = fromTS(t)
		if data != "{}" {
			if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
				return nil, fmt.Errorf("events of run %d: %w", runID, err)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecoverInterrupted implements Store.
func (s *DB) RecoverInterrupted(ctx context.Context, alive func(host string, pid int) bool) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, host, pid FROM runs WHERE status = ?`, StatusRunning)
	if err != nil {
		return nil, fmt.Errorf("find interrupted runs: %w", err)
	}
	var dead []int64
	for rows.Next() {
		var id int64
		var host string
		var pid int
		if err := rows.Scan(&id, &host, &pid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find interrupted runs: %w", err)
		}
		if !alive(host, pid) {
			dead = append(dead, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find interrupted runs: %w", err)
	}
	for _, id := range dead {
		if err := s.InterruptRun(ctx, id, "process died"); err != nil {
			return nil, err
		}
	}
	// A process killed between finishing a run and unlocking its node
	// leaves a finished run holding the node: release those locks too.
	// Every command recovers at start: read first, so that one with
	// nothing to release (nearly always) never takes the write lock.
	var stale int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM nodes
		WHERE reservation IN (SELECT id FROM runs WHERE status != ?)`, StatusRunning).Scan(&stale); err != nil {
		return nil, fmt.Errorf("find locks of finished runs: %w", err)
	}
	if stale == 0 {
		return dead, nil
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = NULL, lease_owner = NULL, lease_expires = NULL
		WHERE reservation IN (SELECT id FROM runs WHERE status != ?)`, StatusRunning); err != nil {
		return nil, fmt.Errorf("release locks of finished runs: %w", err)
	}
	return dead, nil
}

// InterruptRun implements Store.
func (s *DB) InterruptRun(ctx context.Context, runID int64, cause string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	defer tx.Rollback()
	var script, nodeUUID string
	err = tx.QueryRowContext(ctx, `SELECT script, COALESCE(node_uuid, '') FROM runs WHERE id = ? AND status = ?`+s.d.forUpdate(),
		runID, StatusRunning).Scan(&script, &nodeUUID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // finished meanwhile
	}
	if err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	msg := fmt.Sprintf("run %d (%s) was interrupted: %s", runID, script, cause)
	// abort_request: a process that is still alive after all (stopped,
	// then resumed after a takeover) sees it and cancels the run.
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ?,
		abort_request = CASE WHEN abort_request = '' THEN ? ELSE abort_request END WHERE id = ? AND status = ?`,
		StatusInterrupted, msg, ts(time.Now().UTC()), cause, runID, StatusRunning); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	if nodeUUID != "" {
		n, err := s.getNode(ctx, tx, nodeUUID, s.d.forUpdate())
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("interrupt run %d: %w", runID, err)
		}
		if n != nil && (n.Reservation == 0 || n.Reservation == runID) {
			if to, ok := states.FailureOf(n.ProvisionState); ok {
				n.LastError = msg + "; the node is in " + to + " (`lightsout node recover " + n.Name +
					"` finishes its cleanup; the next verb does it too)"
				n.ProvisionState = to
				n.DriverInternalInfo[RecoveryKey] = runID
			}
			n.UpdatedAt = time.Now().UTC()
			_, _, _, dii, _, err := s.encodeNode(n)
			if err != nil {
				return fmt.Errorf("interrupt run %d: %w", runID, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE nodes SET provision_state = ?, last_error = ?, driver_internal_info = ?,
				reservation = NULL, lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE uuid = ?`, n.ProvisionState, n.LastError, dii, ts(n.UpdatedAt), n.UUID); err != nil {
				return fmt.Errorf("interrupt run %d: %w", runID, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE nodes SET reservation = NULL, lease_owner = NULL, lease_expires = NULL WHERE reservation = ?`, runID); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	return nil
}

// RequestAbort implements Store.
func (s *DB) RequestAbort(ctx context.Context, runID int64, by string) error {
	if by == "" {
		by = "aborted by operator"
	}
	res, err := s.w.ExecContext(ctx, `UPDATE runs SET abort_request = ? WHERE id = ? AND status = ?`, by, runID, StatusRunning)
	if err != nil {
		return fmt.Errorf("abort run %d: %w", runID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("abort run %d: it is not running (see `lightsout runs show %d`)", runID, runID)
	}
	return nil
}

// AbortRequested implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) AbortRequested(ctx context.Context, runID int64) (string, error) {
	var out string
	err := s.retry(ctx, true, func() (err error) {
		out, err = s.abortRequestedOnce(ctx, runID)
		return err
	})
	return out, err
}

// abortRequestedOnce is AbortRequested without the retry.
func (s *DB) abortRequestedOnce(ctx context.Context, runID int64) (string, error) {
	var by string
	err := s.r.QueryRowContext(ctx, `SELECT abort_request FROM runs WHERE id = ?`, runID).Scan(&by)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("abort request of run %d: %w", runID, err)
	}
	return by, nil
}

// pruneBatch is how many runs lose their events per write transaction.
const pruneBatch = 200

// PruneEvents implements Store.
func (s *DB) PruneEvents(ctx context.Context, r Retention, now time.Time) (int, error) {
	total := 0
	for _, c := range []struct {
		keep time.Duration
		cond string
	}{
		{r.Succeeded, `status = '` + StatusSucceeded + `'`},
		{r.Failed, `status NOT IN ('` + StatusSucceeded + `', '` + StatusRunning + `')`},
	} {
		if c.keep <= 0 {
			continue
		}
		cutoff := ts(now.Add(-c.keep))
		for {
			n, err := s.pruneSome(ctx, c.cond, cutoff)
			total += n
			if err != nil {
				return total, err
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// pruneSome deletes the events of up to pruneBatch runs matching cond
// finished before cutoff, in one short write transaction.
func (s *DB) pruneSome(ctx context.Context, cond string, cutoff int64) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM runs r WHERE finished_at < ? AND `+cond+`
		AND EXISTS (SELECT 1 FROM events e WHERE e.run_id = r.id) ORDER BY finished_at LIMIT `+fmt.Sprint(pruneBatch), cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune events: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	q := `DELETE FROM events WHERE run_id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	if _, err := s.w.ExecContext(ctx, q, ids...); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return len(ids), nil
}
