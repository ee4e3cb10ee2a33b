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
// when retried. Errors of the statement itself are not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
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
