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

// Open opens (creating with mode 0600 if needed) the SQLite lightsout
// database at path and migrates it. cipher encrypts secret values. A file
// that is not a lightsout database is refused, never modified.
//
// Concurrency: WAL; every connection gets busy_timeout (a DSN _pragma, so
// pooled connections opened later get it too); one writer connection whose
// transactions are BEGIN IMMEDIATE (a read-then-write transaction takes the
// write lock first, so it never fails with SQLITE_BUSY_SNAPSHOT, which no
// busy timeout retries); readers never hold a transaction across a write.
func Open(ctx context.Context, path string, cipher *secrets.Cipher) (*DB, error) {
	if cipher == nil {
		return nil, errors.New("open store: a secrets cipher is required")
	}
	return openSQLite(ctx, path, cipher)
}

// openSQLite is Open; a nil cipher opens a store that can copy rows but
// not read secrets (Migrate).
func openSQLite(ctx context.Context, path string, cipher *secrets.Cipher) (*DB, error) {
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	if err := checkOwner(ctx, path); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(" + busyTimeoutMS + ")&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)"
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
	gate, err := newWriteGate(path)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	d := &dialect{name: DialectSQLite}
	s := &DB{d: d, where: path, w: &conn{DB: w, d: d, gate: gate}, r: &conn{DB: r, d: d}, cipher: cipher}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// busyTimeoutMS is how long a SQLite connection waits for another
// process's lock before "database is locked".
const busyTimeoutMS = "10000"

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
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout("+busyTimeoutMS+")")
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

func ts(t time.Time) int64 { return t.UnixNano() }

func fromTS(n int64) time.Time { return time.Unix(0, n).UTC() }

const nodeCols = `uuid, name, driver, driver_info, properties, instance_info, driver_internal_info,
	ports, provision_state, power_state, last_error, maintenance, maintenance_reason, reservation,
	created_at, updated_at, lease_owner, lease_expires, lease_generation`
