package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Leases let several processes share one database (issue 15, part 3),
// as Ironic's conductors do: each process registers as a conductor and
// heartbeats; a node reservation taken with AcquireLease names the
// conductor and expires unless the heartbeat extends it. TakeOver, run by
// any live process, fences conductors whose heartbeat is older than the
// timeout: their runs are interrupted (their nodes moved to a failure state
// as with a dead local process) and their nodes released. A fenced process
// that resumes (SIGSTOP, a long GC pause, a network partition) gets
// ErrFenced from Heartbeat and cannot write with its interrupted runs:
// FinishRun and a run's node changes are refused once the run is no
// longer running.
//
// The app uses them when the store is PostgreSQL (several processes, maybe
// on several hosts); a SQLite store's processes share one host and are
// recovered by pid (RecoverInterrupted).

// Leaser is the lease API of a store shared by several processes.
type Leaser interface {
	RegisterConductor(ctx context.Context, host string, pid int, now time.Time) (*Conductor, error)
	// UnregisterConductor removes a process that stops cleanly.
	UnregisterConductor(ctx context.Context, id int64) error
	Heartbeat(ctx context.Context, id int64, ttl time.Duration, now time.Time) error
	AcquireLease(ctx context.Context, uuid string, runID, conductor int64, ttl time.Duration, now time.Time) (int64, error)
	TakeOver(ctx context.Context, by int64, timeout time.Duration, now time.Time) ([]int64, error)
}

var _ Leaser = (*DB)(nil)

// UnregisterConductor implements Leaser. Its leases must have been
// released (its runs finished).
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) UnregisterConductor(ctx context.Context, id int64) error {
	return s.retry(ctx, true, func() error { return s.unregisterConductorOnce(ctx, id) })
}

// unregisterConductorOnce is UnregisterConductor without the retry.
func (s *DB) unregisterConductorOnce(ctx context.Context, id int64) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM conductors WHERE id = ?`, id); err != nil {
		return fmt.Errorf("unregister conductor %d: %w", id, err)
	}
	return nil
}

// fencedKept is how long a taken-over process stays listed.
const fencedKept = 24 * time.Hour

// ErrFenced is returned to a process whose leases were taken over.
var ErrFenced = errors.New("this process lost its leases (its heartbeat stopped for longer than [conductor] heartbeat_timeout): another process took over its nodes and interrupted its runs")

// Lease is the lease of a node's reservation.
type Lease struct {
	Conductor int64     `json:"conductor"`
	Expires   time.Time `json:"expires"`
	// Generation grows by one at every acquisition: a fencing token.
	Generation int64 `json:"generation"`
}

// Conductor is a process registered to share the database.
type Conductor struct {
	ID          int64      `json:"id"`
	Host        string     `json:"host"`
	PID         int        `json:"pid"`
	StartedAt   time.Time  `json:"started_at"`
	HeartbeatAt time.Time  `json:"heartbeat_at"`
	FencedAt    *time.Time `json:"fenced_at,omitempty"`
}

// RegisterConductor records a process sharing the database; its id goes
// into Run.Conductor and AcquireLease.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) RegisterConductor(ctx context.Context, host string, pid int, now time.Time) (*Conductor, error) {
	var out *Conductor
	err := s.retry(ctx, false, func() (err error) {
		out, err = s.registerConductorOnce(ctx, host, pid, now)
		return err
	})
	return out, err
}

// registerConductorOnce is RegisterConductor without the retry.
func (s *DB) registerConductorOnce(ctx context.Context, host string, pid int, now time.Time) (*Conductor, error) {
	c := &Conductor{Host: host, PID: pid, StartedAt: now.UTC(), HeartbeatAt: now.UTC()}
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("register conductor: %w", err)
	}
	defer t.Rollback()
	err = t.QueryRowContext(ctx, `INSERT INTO conductors (host, pid, started_at, heartbeat_at) VALUES (?,?,?,?) RETURNING id`,
		host, pid, ts(now), ts(now)).Scan(&c.ID)
	if err == nil {
		err = t.Commit()
	}
	if err != nil {
		return nil, fmt.Errorf("register conductor: %w", err)
	}
	return c, nil
}

// Conductors lists the registered processes, newest first.
func (s *DB) Conductors(ctx context.Context) ([]Conductor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, host, pid, started_at, heartbeat_at, fenced_at FROM conductors ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list conductors: %w", err)
	}
	defer rows.Close()
	var out []Conductor
	for rows.Next() {
		var c Conductor
		var started, hb int64
		var fenced *int64
		if err := rows.Scan(&c.ID, &c.Host, &c.PID, &started, &hb, &fenced); err != nil {
			return nil, fmt.Errorf("list conductors: %w", err)
		}
		c.StartedAt, c.HeartbeatAt = fromTS(started), fromTS(hb)
		if fenced != nil {
			t := fromTS(*fenced)
			c.FencedAt = &t
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Heartbeat records that conductor id is alive and extends its leases to
// now+ttl; ErrFenced once it was taken over (the process must stop its
// runs: they were interrupted and their nodes released).
func (s *DB) Heartbeat(ctx context.Context, id int64, ttl time.Duration, now time.Time) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	defer t.Rollback()
	res, err := t.ExecContext(ctx, `UPDATE conductors SET heartbeat_at = ? WHERE id = ? AND fenced_at IS NULL`, ts(now), id)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrFenced
	}
	if _, err := t.ExecContext(ctx, `UPDATE nodes SET lease_expires = ? WHERE lease_owner = ?`, ts(now.Add(ttl)), id); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// AcquireLease reserves a node for run runID of conductor, until now+ttl
// unless heartbeats extend it, and returns the lease generation; a
// *LockedError while another run holds it (an expired lease stays until
// TakeOver releases it, so that its run is interrupted first).
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) AcquireLease(ctx context.Context, uuid string, runID, conductor int64, ttl time.Duration, now time.Time) (int64, error) {
	var out int64
	start, at := time.Now(), now
	err := s.retry(ctx, true, func() (err error) {
		out, err = s.acquireLeaseOnce(ctx, uuid, runID, conductor, ttl, at)
		at = now.Add(time.Since(start)) // a lease taken on a retry lasts ttl from then
		return err
	})
	return out, err
}

// acquireLeaseOnce is AcquireLease without the retry.
func (s *DB) acquireLeaseOnce(ctx context.Context, uuid string, runID, conductor int64, ttl time.Duration, now time.Time) (int64, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("lease node %s: %w", uuid, err)
	}
	defer t.Rollback()
	var fenced *int64
	err = t.QueryRowContext(ctx, `SELECT fenced_at FROM conductors WHERE id = ?`, conductor).Scan(&fenced)
	if err != nil {
		return 0, fmt.Errorf("lease node %s: conductor %d: %w", uuid, conductor, err)
	}
	if fenced != nil {
		return 0, ErrFenced
	}
	var gen int64
	err = t.QueryRowContext(ctx, `UPDATE nodes SET reservation = ?, lease_owner = ?, lease_expires = ?,
		lease_generation = lease_generation + 1
		WHERE uuid = ? AND (reservation IS NULL OR reservation = ?) RETURNING lease_generation`,
		runID, conductor, ts(now.Add(ttl)), uuid, runID).Scan(&gen)
	if err == nil {
		if err := t.Commit(); err != nil {
			return 0, fmt.Errorf("lease node %s: %w", uuid, err)
		}
		return gen, nil
	}
	t.Rollback()
	if errors.Is(err, sql.ErrNoRows) {
		return 0, s.whoHolds(ctx, uuid)
	}
	return 0, fmt.Errorf("lease node %s: %w", uuid, err)
}

// TakeOver fences the conductors whose heartbeat is older than timeout
// (by is the conductor doing it, never fenced itself): their running runs
// are interrupted (InterruptRun) and every lease they hold is released. It
// returns the interrupted runs. Safe to run from several processes at once.
func (s *DB) TakeOver(ctx context.Context, by int64, timeout time.Duration, now time.Time) ([]int64, error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	defer t.Rollback()
	skip := ""
	if s.d.name == DialectPostgres {
		skip = " FOR UPDATE SKIP LOCKED" // another process is taking them over
	}
	rows, err := t.QueryContext(ctx, `SELECT id FROM conductors WHERE fenced_at IS NULL AND heartbeat_at < ? AND id != ?`+skip,
		ts(now.Add(-timeout)), by)
	if err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	var dead []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("take over: %w", err)
		}
		dead = append(dead, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	// Fenced processes are listed for a day (`Conductors`), then forgotten.
	if _, err := t.ExecContext(ctx, `DELETE FROM conductors WHERE fenced_at < ?`, ts(now.Add(-fencedKept))); err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	if len(dead) == 0 {
		return nil, t.Commit()
	}
	in := `(?` + strings.Repeat(",?", len(dead)-1) + `)`
	if _, err := t.ExecContext(ctx, `UPDATE conductors SET fenced_at = ? WHERE id IN `+in, append([]any{ts(now)}, dead...)...); err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	if err := t.Commit(); err != nil {
		return nil, fmt.Errorf("take over: %w", err)
	}
	var runs []int64
	for _, c := range dead {
		ids, err := s.runningRunsOf(ctx, c.(int64))
		if err != nil {
			return runs, err
		}
		for _, id := range ids {
			if err := s.InterruptRun(ctx, id, fmt.Sprintf("its process (conductor %d) stopped heartbeating for over %v", c, timeout)); err != nil {
				return runs, err
			}
			runs = append(runs, id)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = NULL, lease_owner = NULL, lease_expires = NULL
		WHERE lease_owner IN `+in, dead...); err != nil {
		return runs, fmt.Errorf("take over: release leases: %w", err)
	}
	return runs, nil
}

func (s *DB) runningRunsOf(ctx context.Context, conductor int64) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM runs WHERE conductor = ? AND status = ?`, conductor, StatusRunning)
	if err != nil {
		return nil, fmt.Errorf("runs of conductor %d: %w", conductor, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("runs of conductor %d: %w", conductor, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// LeaseCounts returns how many nodes each conductor holds a lease on.
func (s *DB) LeaseCounts(ctx context.Context) (map[int64]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT lease_owner, COUNT(*) FROM nodes WHERE lease_owner IS NOT NULL GROUP BY lease_owner`)
	if err != nil {
		return nil, fmt.Errorf("count leases: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count leases: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
