package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// pingAfterIdle: a pooled PostgreSQL connection idle longer is checked
// before use (shorter than any server restart, long enough that a busy
// process does not pay a round trip per query).
const pingAfterIdle = 50 * time.Millisecond

// idleInTransaction is the server's idle_in_transaction_session_timeout
// for lightsout's sessions (a value in the connection URL wins). A process
// stopped (SIGSTOP, a hung host) inside a transaction would otherwise hold
// its row locks, and block every process needing those rows (their
// heartbeats and takeovers included), until it resumes: the server ends
// such a session, rolling its transaction back. Keep it below
// [conductor] heartbeat_timeout minus heartbeat_interval. Store
// transactions are short: none waits this long between statements.
const idleInTransaction = 10 * time.Second

// ConnectionOption names the configuration option errors point at.
const ConnectionOption = "[database] connection"

// OpenURL opens the store a connection URL names: sqlite:///path/to/db (or
// a bare path) for SQLite, postgresql://user:password@host:port/db for
// PostgreSQL. Errors name the database but never the password.
func OpenURL(ctx context.Context, connection string, cipher *secrets.Cipher) (*DB, error) {
	if cipher == nil {
		return nil, errors.New("open store: a secrets cipher is required")
	}
	return openURL(ctx, connection, cipher)
}

// openURL is OpenURL; a nil cipher opens a store that can copy rows but
// not read secrets (Migrate).
func openURL(ctx context.Context, connection string, cipher *secrets.Cipher) (*DB, error) {
	kind, path, err := ParseConnection(connection)
	if err != nil {
		return nil, err
	}
	if kind == DialectSQLite {
		return openSQLite(ctx, path, cipher)
	}
	return openPostgres(ctx, connection, cipher)
}

// ParseConnection checks a connection URL and returns its dialect and, for
// SQLite, the database file. A bare path is a SQLite file.
func ParseConnection(connection string) (dialectName, path string, err error) {
	switch {
	case connection == "":
		return "", "", fmt.Errorf("%s is empty: set it to sqlite:///path/to/lightsout.db or postgresql://user:password@host:5432/lightsout", ConnectionOption)
	case strings.HasPrefix(connection, "/"):
		return DialectSQLite, connection, nil
	case strings.HasPrefix(connection, "sqlite://"):
		p := strings.TrimPrefix(connection, "sqlite://")
		if !strings.HasPrefix(p, "/") || p == "/" {
			return "", "", fmt.Errorf("%s %q: a SQLite URL names an absolute file path, three slashes: sqlite:///var/lib/lightsout/lightsout.db", ConnectionOption, connection)
		}
		return DialectSQLite, p, nil
	case strings.HasPrefix(connection, "postgresql://"), strings.HasPrefix(connection, "postgres://"):
		u, err := url.Parse(connection)
		if err != nil {
			return "", "", fmt.Errorf("%s: not a valid URL (%s): use postgresql://user:password@host:5432/database", ConnectionOption, maskErr(err, connection))
		}
		if u.Host == "" {
			return "", "", fmt.Errorf("%s %s: no host: use postgresql://user:password@host:5432/database", ConnectionOption, RedactConnection(connection))
		}
		if _, err := pgx.ParseConfig(connection); err != nil {
			return "", "", fmt.Errorf("%s %s: %s: use postgresql://user:password@host:5432/database[?sslmode=...]", ConnectionOption, RedactConnection(connection), maskErr(err, connection))
		}
		return DialectPostgres, "", nil
	}
	scheme, _, _ := strings.Cut(connection, ":")
	return "", "", fmt.Errorf("%s: unsupported database %q: use sqlite:///path/to/lightsout.db or postgresql://user:password@host:5432/lightsout", ConnectionOption, scheme)
}

// RedactConnection returns the connection URL with its password masked.
func RedactConnection(connection string) string {
	u, err := url.Parse(connection)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable URL)"
		}
		return connection
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return strings.Replace(u.String(), ":xxxxx@", ":******@", 1)
}

// ConnectionPassword returns the password of a connection URL ("" if none),
// for the redactor.
func ConnectionPassword(connection string) string {
	u, err := url.Parse(connection)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// maskErr is err's message with the connection's password masked.
func maskErr(err error, connection string) string {
	msg := err.Error()
	if p := ConnectionPassword(connection); p != "" {
		msg = strings.ReplaceAll(msg, p, "******")
		msg = strings.ReplaceAll(msg, url.QueryEscape(p), "******")
	}
	return secrets.MaskURLs(msg)
}

// OpenPostgres opens the PostgreSQL lightsout database a postgresql:// URL
// names and migrates it. A database holding tables of another application
// is refused, never modified. Secrets are encrypted by cipher before they
// reach the server, as with SQLite.
func OpenPostgres(ctx context.Context, connection string, cipher *secrets.Cipher) (*DB, error) {
	if cipher == nil {
		return nil, errors.New("open store: a secrets cipher is required")
	}
	return openPostgres(ctx, connection, cipher)
}

func openPostgres(ctx context.Context, connection string, cipher *secrets.Cipher) (*DB, error) {
	cfg, err := pgx.ParseConfig(connection)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s: use postgresql://user:password@host:5432/database", ConnectionOption, RedactConnection(connection), maskErr(err, connection))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(idleInTransaction.Milliseconds())
	}
	where := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)) + "/" + cfg.Database
	// A pooled connection idle for a while is pinged before use: after a
	// server restart (or a failover) the first calls get a new connection
	// instead of "terminating connection due to administrator command".
	db := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool {
		return p.IdleDuration > pingAfterIdle
	}))
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		msg := maskErr(err, connection)
		if i := strings.LastIndex(msg, "\n"); i >= 0 { // pgx lists every attempt: keep the last
			msg = strings.TrimSpace(msg[i+1:])
		}
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s as user %q: %s (is the server running and %s right?)",
			where, cfg.User, msg, ConnectionOption)
	}
	d := &dialect{name: DialectPostgres}
	c := &conn{DB: db, d: d}
	s := &DB{d: d, where: "postgresql://" + where, w: c, r: c, cipher: cipher}
	if err := s.checkPostgresOwner(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkPostgresOwner refuses a database with tables but no lightsout schema
// table (another application's).
func (s *DB) checkPostgresOwner(ctx context.Context) error {
	var ours, tables int
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'lightsout_schema'),
		(SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema())`).Scan(&ours, &tables)
	if err != nil {
		return fmt.Errorf("read the tables of %s: %w", s.where, err)
	}
	if ours == 0 && tables > 0 {
		return fmt.Errorf("database %s holds %d tables of another application: it was not modified; point %s at an empty database (CREATE DATABASE lightsout)", s.where, tables, ConnectionOption)
	}
	return nil
}

// Transient reports whether err is a lost or refused database connection
// (PostgreSQL restarting, a network cut): the same statement may succeed
// when retried. Errors of the statement itself (constraint violations,
// serialization failures, ErrFenced) and the caller's context ending are
// not transient.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01 admin_shutdown, 57P02
		// crash_shutdown, 57P03 cannot_connect_now, 57P05
		// idle_session_timeout: the server ended or refused the session.
		switch pe.Code {
		case "57P01", "57P02", "57P03", "57P05":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "failed to connect")
}

// outcomeUnknown marks a transient error of a COMMIT or of a statement
// outside a transaction that may have reached the server: the change may
// have been made, so only an idempotent operation may be retried.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string { return e.err.Error() }
func (e *outcomeUnknown) Unwrap() error { return e.err }

// markUnknown wraps err in *outcomeUnknown when it is transient and
// nothing tells that the statement did not take effect: no connection
// could be made, nothing was sent (pgconn.SafeToRetry, database/sql's
// driver.ErrBadConn), or the server answered with an error (57P01 ends
// the session and rolls its transaction back: the server reported no
// success).
func markUnknown(err error) error {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if !Transient(err) || pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) || errors.As(err, &ce) || errors.As(err, &pe) {
		return err
	}
	return &outcomeUnknown{err}
}

// retryable reports whether a store operation that failed with err may be
// run again: its connection was lost (Transient) and either it made no
// change (its transaction was rolled back with the connection, or nothing
// reached the server) or it is idempotent.
func retryable(err error, idempotent bool) bool {
	if !Transient(err) {
		return false
	}
	var u *outcomeUnknown
	return idempotent || !errors.As(err, &u)
}

// retryFor bounds how long a store operation is retried while PostgreSQL
// is away: a restart or a failover takes seconds.
const retryFor = 30 * time.Second

// retry runs op, then again with a bounded backoff while it fails
// retryably (retryable) within retryFor and ctx; it returns op's last
// error. SQLite stores run op once: a local file has no connection to lose.
func (s *DB) retry(ctx context.Context, idempotent bool, op func() error) error {
	if s.d.name != DialectPostgres {
		return op()
	}
	deadline := time.Now().Add(retryFor)
	wait := 50 * time.Millisecond
	for {
		err := op()
		if !retryable(err, idempotent) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
