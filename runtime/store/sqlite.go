package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lightsout/lightsout/runtime/secrets"
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
