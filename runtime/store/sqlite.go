package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/states"
)

// applicationID marks a lightsout database ("LOUT").
const applicationID = 0x4C4F5554

// migrations are applied in order; user_version records how many ran.
var migrations = []string{
	`CREATE TABLE nodes (
		uuid TEXT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		driver TEXT NOT NULL,
		driver_info TEXT NOT NULL DEFAULT '{}',
		properties TEXT NOT NULL DEFAULT '{}',
		instance_info TEXT NOT NULL DEFAULT '{}',
		driver_internal_info TEXT NOT NULL DEFAULT '{}',
		ports TEXT NOT NULL DEFAULT '[]',
		provision_state TEXT NOT NULL,
		power_state TEXT NOT NULL DEFAULT '',
		last_error TEXT NOT NULL DEFAULT '',
		maintenance INTEGER NOT NULL DEFAULT 0,
		maintenance_reason TEXT NOT NULL DEFAULT '',
		reservation INTEGER,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE runs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		script TEXT NOT NULL,
		script_sha256 TEXT NOT NULL,
		node_uuid TEXT,
		node_name TEXT NOT NULL DEFAULT '',
		params TEXT NOT NULL DEFAULT '{}',
		status TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		started_at INTEGER NOT NULL,
		finished_at INTEGER,
		host TEXT NOT NULL,
		pid INTEGER NOT NULL
	);
	CREATE INDEX runs_node ON runs(node_uuid, id);
	CREATE INDEX runs_status ON runs(status);
	CREATE TABLE events (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		seq INTEGER NOT NULL,
		time INTEGER NOT NULL,
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		data TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (run_id, seq)
	) WITHOUT ROWID;
	CREATE TABLE artifacts (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		run_id INTEGER NOT NULL,
		node_uuid TEXT NOT NULL DEFAULT '',
		kind TEXT NOT NULL,
		location TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		deleted_at INTEGER
	);
	CREATE INDEX artifacts_node ON artifacts(node_uuid);`,
	// 2: watch-folder job claims (jobs.go).
	`CREATE TABLE jobs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		job_id TEXT NOT NULL DEFAULT '',
		name TEXT NOT NULL,
		file TEXT NOT NULL,
		queued TEXT NOT NULL DEFAULT '',
		sha256 TEXT NOT NULL,
		action TEXT NOT NULL DEFAULT '',
		nodes TEXT NOT NULL DEFAULT '[]',
		status TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		error TEXT NOT NULL DEFAULT '',
		result TEXT NOT NULL DEFAULT '',
		final TEXT NOT NULL DEFAULT '',
		archived INTEGER NOT NULL DEFAULT 0,
		host TEXT NOT NULL DEFAULT '',
		pid INTEGER NOT NULL DEFAULT 0,
		claimed_at INTEGER NOT NULL,
		finished_at INTEGER
	);
	CREATE INDEX jobs_job_id ON jobs(job_id);
	CREATE INDEX jobs_file ON jobs(file, sha256);
	CREATE INDEX jobs_open ON jobs(archived, status);
	CREATE TABLE job_runs (
		job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
		node TEXT NOT NULL,
		run_id INTEGER NOT NULL DEFAULT 0,
		status TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		previous TEXT NOT NULL DEFAULT '[]',
		started_at INTEGER NOT NULL,
		finished_at INTEGER,
		PRIMARY KEY (job, node)
	) WITHOUT ROWID;`,
	// 3: `node abort` requests on a running run (the holding process polls it).
	`ALTER TABLE runs ADD COLUMN abort_request TEXT NOT NULL DEFAULT '';`,
}

// SQLite is the SQLite implementation of Store.
type SQLite struct {
	path   string
	w      *sql.DB // single writer connection
	r      *sql.DB // readers
	cipher *secrets.Cipher
	// sensitive flags values to encrypt at rest besides secret keys (seal.go).
	sensitive func(v any) bool
}

// Open opens (creating with mode 0600 if needed) the lightsout database at
// path and migrates it. cipher encrypts secret driver_info values. A file
// that is not a lightsout database is refused, never modified.
func Open(ctx context.Context, path string, cipher *secrets.Cipher) (*SQLite, error) {
	if cipher == nil {
		return nil, errors.New("open store: a secrets cipher is required")
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	if err := checkOwner(ctx, path); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &SQLite{path: path, w: w, r: r, cipher: cipher}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// prepareFile creates the database file 0600 if missing, and refuses files
// that are not SQLite databases.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // new, empty file
	}
	if n < 16 || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return fmt.Errorf("database %s is not a SQLite database (corrupt or foreign file): move it away or point [lightsout] database at another path", path)
	}
	return nil
}

// checkOwner refuses a database that belongs to another application,
// reading it without any pragma that would change the file.
func checkOwner(ctx context.Context, path string) error {
	// busy_timeout: another process may be opening or checkpointing the
	// database (SQLITE_BUSY_RECOVERY); the pragma does not change the file
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer db.Close()
	var appID, tables int
	if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("database %s is unreadable (corrupt?): %w: move it away or point [lightsout] database at another path", path, err)
	}
	if appID == applicationID {
		return nil
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
		return fmt.Errorf("database %s is unreadable (corrupt?): %w: move it away or point [lightsout] database at another path", path, err)
	}
	if appID != 0 || tables > 0 {
		return fmt.Errorf("database %s belongs to another application (application_id %#x): it was not modified; point [lightsout] database at another path", path, appID)
	}
	return nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	var version int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	if version > len(migrations) {
		return fmt.Errorf("database %s has schema version %d, newer than this lightsout (%d): upgrade lightsout", s.path, version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", s.path, err)
		}
		stmts := []string{migrations[i], fmt.Sprintf("PRAGMA user_version = %d", i+1),
			fmt.Sprintf("PRAGMA application_id = %d", applicationID)}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate %s to version %d: %w", s.path, i+1, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", s.path, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	err := s.w.Close()
	if s.r != nil {
		if e := s.r.Close(); err == nil {
			err = e
		}
	}
	return err
}

func ts(t time.Time) int64 { return t.UnixNano() }

func fromTS(n int64) time.Time { return time.Unix(0, n).UTC() }

const nodeCols = `uuid, name, driver, driver_info, properties, instance_info, driver_internal_info,
	ports, provision_state, power_state, last_error, maintenance, maintenance_reason, reservation,
	created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func (s *SQLite) scanNode(row scanner) (*Node, error) {
	var n Node
	var di, props, ii, dii, ports string
	var maint int
	var resv sql.NullInt64
	var created, updated int64
	if err := row.Scan(&n.UUID, &n.Name, &n.Driver, &di, &props, &ii, &dii, &ports,
		&n.ProvisionState, &n.PowerState, &n.LastError, &maint, &n.MaintenanceReason, &resv,
		&created, &updated); err != nil {
		return nil, err
	}
	n.Maintenance = maint != 0
	n.Reservation = resv.Int64
	n.CreatedAt, n.UpdatedAt = fromTS(created), fromTS(updated)
	for _, f := range []struct {
		src string
		dst *map[string]any
	}{{di, &n.DriverInfo}, {props, &n.Properties}, {ii, &n.InstanceInfo}, {dii, &n.DriverInternalInfo}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("node %s: decode stored JSON: %w", n.Name, err)
		}
		if *f.dst == nil {
			*f.dst = map[string]any{}
		}
	}
	if err := json.Unmarshal([]byte(ports), &n.Ports); err != nil {
		return nil, fmt.Errorf("node %s: decode ports: %w", n.Name, err)
	}
	if err := s.decryptInfo(&n); err != nil {
		return nil, err
	}
	return &n, nil
}

func (s *SQLite) decryptInfo(n *Node) error {
	for _, f := range []struct {
		field string
		m     map[string]any
	}{{"driver_info", n.DriverInfo}, {"properties", n.Properties}, {"instance_info", n.InstanceInfo}, {"driver_internal_info", n.DriverInternalInfo}} {
		if err := s.openMap(n.Name, n.UUID, f.field, f.m); err != nil {
			return err
		}
	}
	return nil
}

// encodeNode returns the JSON columns of n with secret and sensitive values
// encrypted (seal.go).
func (s *SQLite) encodeNode(n *Node) (di, props, ii, dii, ports string, err error) {
	var sealed [4]map[string]any
	for i, f := range []struct {
		field string
		m     map[string]any
	}{{"driver_info", n.DriverInfo}, {"properties", n.Properties}, {"instance_info", n.InstanceInfo}, {"driver_internal_info", n.DriverInternalInfo}} {
		if sealed[i], err = s.sealMap(n.UUID, f.field, f.m); err != nil {
			return
		}
	}
	j := func(v any) string {
		if err != nil {
			return ""
		}
		var b []byte
		b, err = json.Marshal(v)
		return string(b)
	}
	di, props, ii, dii = j(sealed[0]), j(sealed[1]), j(sealed[2]), j(sealed[3])
	if n.Ports == nil {
		ports = "[]"
	} else {
		ports = j(n.Ports)
	}
	return
}

// CreateNode implements Store.
func (s *SQLite) CreateNode(ctx context.Context, n *Node) error {
	now := time.Now().UTC()
	n.CreatedAt, n.UpdatedAt = now, now
	if n.ProvisionState == "" {
		n.ProvisionState = states.Enroll
	}
	n.LastError, n.MaintenanceReason = secrets.MaskURLs(n.LastError), secrets.MaskURLs(n.MaintenanceReason)
	di, props, ii, dii, ports, err := s.encodeNode(n)
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	defer tx.Rollback()
	if err := checkPorts(ctx, tx, n, nil); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO nodes (`+nodeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?)`,
		n.UUID, n.Name, n.Driver, di, props, ii, dii, ports, n.ProvisionState, n.PowerState, n.LastError,
		boolInt(n.Maintenance), n.MaintenanceReason, ts(now), ts(now))
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: nodes.name") {
			return &DuplicateError{Field: "name", Value: n.Name}
		}
		if strings.Contains(err.Error(), "UNIQUE constraint failed: nodes.uuid") {
			return &DuplicateError{Field: "uuid", Value: n.UUID}
		}
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GetNode implements Store.
func (s *SQLite) GetNode(ctx context.Context, ref string) (*Node, error) {
	return s.getNode(ctx, s.r, ref)
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func (s *SQLite) getNode(ctx context.Context, q querier, ref string) (*Node, error) {
	n, err := s.scanNode(q.QueryRowContext(ctx, `SELECT `+nodeCols+` FROM nodes WHERE name = ? OR uuid = ? LIMIT 1`, ref, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("node %q: %w (see `lightsout node list`)", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", ref, err)
	}
	return n, nil
}

// ListNodes implements Store.
func (s *SQLite) ListNodes(ctx context.Context) ([]*Node, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := s.scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// UpdateNode implements Store: a change from outside any run, refused
// with a *LockedError while a run holds the node.
func (s *SQLite) UpdateNode(ctx context.Context, ref string, fn func(n *Node) error) (*Node, error) {
	return s.UpdateNodeAs(ctx, Operator, ref, fn)
}

// UpdateNodeAs implements Store.
func (s *SQLite) UpdateNodeAs(ctx context.Context, holder int64, ref string, fn func(n *Node) error) (*Node, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update node %s: %w", ref, err)
	}
	defer tx.Rollback()
	n, err := s.getNode(ctx, tx, ref)
	if err != nil {
		return nil, err
	}
	if err := s.checkHolder(ctx, tx, n, holder); err != nil {
		return nil, err
	}
	before := n.ProvisionState
	uuid, name := n.UUID, n.Name
	portsBefore := append([]Port(nil), n.Ports...)
	if err := fn(n); err != nil {
		return nil, err
	}
	if err := checkPorts(ctx, tx, n, portsBefore); err != nil {
		return nil, err
	}
	if n.UUID != uuid {
		return nil, fmt.Errorf("update node %s: the uuid cannot be changed", name)
	}
	if n.ProvisionState != before && !states.Known(n.ProvisionState) {
		return nil, fmt.Errorf("update node %s: unknown provision state %q", name, n.ProvisionState)
	}
	n.UpdatedAt = time.Now().UTC()
	n.LastError, n.MaintenanceReason = secrets.MaskURLs(n.LastError), secrets.MaskURLs(n.MaintenanceReason)
	di, props, ii, dii, ports, err := s.encodeNode(n)
	if err != nil {
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE nodes SET name=?, driver=?, driver_info=?, properties=?,
		instance_info=?, driver_internal_info=?, ports=?, provision_state=?, power_state=?, last_error=?,
		maintenance=?, maintenance_reason=?, updated_at=? WHERE uuid=?`,
		n.Name, n.Driver, di, props, ii, dii, ports, n.ProvisionState, n.PowerState, n.LastError,
		boolInt(n.Maintenance), n.MaintenanceReason, ts(n.UpdatedAt), n.UUID)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: nodes.name") {
			return nil, &DuplicateError{Field: "name", Value: n.Name}
		}
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	return n, nil
}

// Transition implements Store (from outside any run).
func (s *SQLite) Transition(ctx context.Context, ref, event string) (*Node, error) {
	return s.TransitionAs(ctx, Operator, ref, event)
}

// TransitionAs implements Store.
func (s *SQLite) TransitionAs(ctx context.Context, holder int64, ref, event string) (*Node, error) {
	return s.UpdateNodeAs(ctx, holder, ref, func(n *Node) error {
		to, err := states.Next(n.ProvisionState, event)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		n.ProvisionState = to
		return nil
	})
}

// DeleteNode implements Store.
func (s *SQLite) DeleteNode(ctx context.Context, ref string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM nodes WHERE (name = ? OR uuid = ?) AND reservation IS NULL`, ref, ref)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", ref, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		node, err := s.GetNode(ctx, ref)
		if err != nil {
			return err
		}
		return s.lockedError(ctx, s.r, node.Name, node.Reservation)
	}
	return nil
}

// checkHolder refuses a change to a node reserved by another run than
// holder (Internal passes always).
func (s *SQLite) checkHolder(ctx context.Context, q querier, n *Node, holder int64) error {
	if holder == Internal || n.Reservation == 0 || n.Reservation == holder {
		return nil
	}
	return s.lockedError(ctx, q, n.Name, n.Reservation)
}

// lockedError describes the run holding a node.
func (s *SQLite) lockedError(ctx context.Context, q querier, name string, runID int64) error {
	le := &LockedError{Node: name, RunID: runID}
	_ = q.QueryRowContext(ctx, `SELECT script FROM runs WHERE id = ?`, runID).Scan(&le.Script)
	return le
}

// LockNode implements Store.
func (s *SQLite) LockNode(ctx context.Context, uuid string, runID int64) error {
	res, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = ? WHERE uuid = ? AND (reservation IS NULL OR reservation = ?)`, runID, uuid, runID)
	if err != nil {
		return fmt.Errorf("lock node %s: %w", uuid, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var name string
	var holder sql.NullInt64
	err = s.w.QueryRowContext(ctx, `SELECT name, reservation FROM nodes WHERE uuid = ?`, uuid).Scan(&name, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock node %s: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock node %s: %w", uuid, err)
	}
	return s.lockedError(ctx, s.w, name, holder.Int64)
}

// UnlockNode implements Store.
func (s *SQLite) UnlockNode(ctx context.Context, uuid string, runID int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = NULL WHERE uuid = ? AND reservation = ?`, uuid, runID)
	if err != nil {
		return fmt.Errorf("unlock node %s: %w", uuid, err)
	}
	return nil
}

// CreateRun implements Store.
func (s *SQLite) CreateRun(ctx context.Context, r *Run) error {
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
	res, err := tx.ExecContext(ctx, `INSERT INTO runs (script, script_sha256, node_uuid, node_name, params, status, error, started_at, host, pid)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, r.Script, r.ScriptSHA, node, r.NodeName, string(params), r.Status, r.Error,
		ts(r.StartedAt), r.Host, r.PID)
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	if r.JobLink != nil {
		r.JobLink.RunID = id
		if err := setJobRun(ctx, tx, r.JobLink); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	r.ID = id
	return nil
}

// FinishRun implements Store.
func (s *SQLite) FinishRun(ctx context.Context, id int64, status, errMsg string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?`,
		status, secrets.MaskURLs(errMsg), ts(time.Now().UTC()), id)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	return nil
}

const runCols = `id, script, script_sha256, COALESCE(node_uuid, ''), node_name, params, status, error, started_at, finished_at, host, pid`

func scanRun(row scanner) (*Run, error) {
	var r Run
	var params string
	var started int64
	var finished sql.NullInt64
	if err := row.Scan(&r.ID, &r.Script, &r.ScriptSHA, &r.NodeUUID, &r.NodeName, &params, &r.Status, &r.Error,
		&started, &finished, &r.Host, &r.PID); err != nil {
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
func (s *SQLite) GetRun(ctx context.Context, id int64) (*Run, error) {
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
func (s *SQLite) ListRuns(ctx context.Context, f RunFilter) ([]*Run, error) {
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
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q = `SELECT * FROM (` + strings.Replace(q, "ORDER BY id", "ORDER BY id DESC", 1) + fmt.Sprintf(` LIMIT %d) ORDER BY id`, f.Limit)
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
func (s *SQLite) AppendEvents(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO events (run_id, seq, time, kind, name, data) VALUES (?,?,?,?,?,?)`)
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
func (s *SQLite) Events(ctx context.Context, runID int64) ([]Event, error) {
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

// AddArtifact implements Store.
func (s *SQLite) AddArtifact(ctx context.Context, a *Artifact) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now().UTC()
	}
	loc, err := s.sealLocation(a)
	if err != nil {
		return fmt.Errorf("add artifact: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO artifacts (run_id, node_uuid, kind, location, created_at) VALUES (?,?,?,?,?)`,
		a.RunID, a.NodeUUID, a.Kind, loc, ts(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("add artifact: %w", err)
	}
	a.ID, err = res.LastInsertId()
	return err
}

func (s *SQLite) queryArtifacts(ctx context.Context, q string, args ...any) ([]Artifact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, run_id, node_uuid, kind, location, created_at, deleted_at FROM artifacts WHERE `+q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		var created int64
		var deleted sql.NullInt64
		if err := rows.Scan(&a.ID, &a.RunID, &a.NodeUUID, &a.Kind, &a.Location, &created, &deleted); err != nil {
			return nil, fmt.Errorf("list artifacts: %w", err)
		}
		a.CreatedAt = fromTS(created)
		if err := s.openLocation(&a); err != nil {
			return nil, fmt.Errorf("list artifacts: %w", err)
		}
		if deleted.Valid {
			t := fromTS(deleted.Int64)
			a.DeletedAt = &t
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Artifacts implements Store.
func (s *SQLite) Artifacts(ctx context.Context, nodeUUID string, includeDeleted bool) ([]Artifact, error) {
	if includeDeleted {
		return s.queryArtifacts(ctx, `node_uuid = ?`, nodeUUID)
	}
	return s.queryArtifacts(ctx, `node_uuid = ? AND deleted_at IS NULL`, nodeUUID)
}

// RunArtifacts implements Store.
func (s *SQLite) RunArtifacts(ctx context.Context, runID int64) ([]Artifact, error) {
	return s.queryArtifacts(ctx, `run_id = ?`, runID)
}

// MarkArtifactDeleted implements Store.
func (s *SQLite) MarkArtifactDeleted(ctx context.Context, id int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE artifacts SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, ts(time.Now().UTC()), id)
	if err != nil {
		return fmt.Errorf("mark artifact %d deleted: %w", id, err)
	}
	return nil
}

// RecoverInterrupted implements Store.
func (s *SQLite) RecoverInterrupted(ctx context.Context, alive func(host string, pid int) bool) ([]int64, error) {
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
	if _, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = NULL
		WHERE reservation IN (SELECT id FROM runs WHERE status != ?)`, StatusRunning); err != nil {
		return nil, fmt.Errorf("release locks of finished runs: %w", err)
	}
	return dead, nil
}

// InterruptRun implements Store.
func (s *SQLite) InterruptRun(ctx context.Context, runID int64, cause string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	defer tx.Rollback()
	var script, nodeUUID string
	err = tx.QueryRowContext(ctx, `SELECT script, COALESCE(node_uuid, '') FROM runs WHERE id = ? AND status = ?`,
		runID, StatusRunning).Scan(&script, &nodeUUID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // finished meanwhile
	}
	if err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	msg := fmt.Sprintf("run %d (%s) was interrupted: %s", runID, script, cause)
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?`,
		StatusInterrupted, msg, ts(time.Now().UTC()), runID, StatusRunning); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	if nodeUUID != "" {
		n, err := s.getNode(ctx, tx, nodeUUID)
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
				reservation = NULL, updated_at = ? WHERE uuid = ?`, n.ProvisionState, n.LastError, dii, ts(n.UpdatedAt), n.UUID); err != nil {
				return fmt.Errorf("interrupt run %d: %w", runID, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE nodes SET reservation = NULL WHERE reservation = ?`, runID); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("interrupt run %d: %w", runID, err)
	}
	return nil
}

// RequestAbort implements Store.
func (s *SQLite) RequestAbort(ctx context.Context, runID int64, by string) error {
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
func (s *SQLite) AbortRequested(ctx context.Context, runID int64) (string, error) {
	var by string
	err := s.r.QueryRowContext(ctx, `SELECT abort_request FROM runs WHERE id = ?`, runID).Scan(&by)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("abort request of run %d: %w", runID, err)
	}
	return by, nil
}
