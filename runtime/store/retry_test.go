package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// refusedConnect returns the error pgconn gives when nothing listens on
// the port (a server not up yet after a restart).
func refusedConnect(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, "postgres://lightsout@"+addr+"/x?connect_timeout=5&sslmode=disable")
	if err == nil {
		c.Close(ctx)
		t.Fatalf("connected to %s, which nobody listens on", addr)
	}
	return err
}

// TestRetryable: which store errors are retried, and whether an
// operation that may have committed is retried only when idempotent.
func TestRetryable(t *testing.T) {
	pg := func(code string) error {
		return fmt.Errorf("lease node n1: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "m"})
	}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, c := range []struct {
		name            string
		err             error
		transient       bool
		once, idemp     bool // retryable(markUnknown(err), false/true)
		inTx, inTxIdemp bool // retryable(err, false/true): a statement inside a transaction
	}{
		{"nil", nil, false, false, false, false, false},
		// the server answered: the statement or COMMIT failed, safe to retry
		{"57P01 admin_shutdown", pg("57P01"), true, true, true, true, true},
		{"57P02 crash_shutdown", pg("57P02"), true, true, true, true, true},
		{"57P03 cannot_connect_now", pg("57P03"), true, true, true, true, true},
		{"08006 connection_failure", pg("08006"), true, true, true, true, true},
		{"57P04 database_dropped", pg("57P04"), false, false, false, false, false},
		{"23505 unique_violation", pg("23505"), false, false, false, false, false},
		{"40001 serialization_failure", pg("40001"), false, false, false, false, false},
		{"57014 query_canceled", pg("57014"), false, false, false, false, false},
		{"ErrFenced", fmt.Errorf("finish run 3: %w", ErrFenced), false, false, false, false, false},
		{"ErrNotFound", fmt.Errorf("node x: %w", ErrNotFound), false, false, false, false, false},
		{"sql.ErrNoRows", sql.ErrNoRows, false, false, false, false, false},
		{"context.Canceled", fmt.Errorf("lease: %w", context.Canceled), false, false, false, false, false},
		{"context.DeadlineExceeded", context.DeadlineExceeded, false, false, false, false, false},
		// database/sql's contract: ErrBadConn only when nothing was done
		{"driver.ErrBadConn", driver.ErrBadConn, true, true, true, true, true},
		{"wrapped io.EOF", fmt.Errorf("create run: %w", io.EOF), true, false, true, true, true},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, true, false, true, true, true},
		{"connection reset", fmt.Errorf("create run: %w", reset), true, false, true, true, true},
		// nothing reached a server: safe even for a non-idempotent write
		{"connect refused", refusedConnect(t), true, true, true, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Transient(c.err); got != c.transient {
				t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.transient)
			}
			u := markUnknown(c.err)
			if got := retryable(u, false); got != c.once {
				t.Errorf("after COMMIT or autocommit, not idempotent: retryable(%v) = %v, want %v", u, got, c.once)
			}
			if got := retryable(u, true); got != c.idemp {
				t.Errorf("after COMMIT or autocommit, idempotent: retryable(%v) = %v, want %v", u, got, c.idemp)
			}
			if got := retryable(c.err, false); got != c.inTx {
				t.Errorf("inside a transaction: retryable(%v, false) = %v, want %v", c.err, got, c.inTx)
			}
			if got := retryable(c.err, true); got != c.inTxIdemp {
				t.Errorf("inside a transaction: retryable(%v, true) = %v, want %v", c.err, got, c.inTxIdemp)
			}
			var pe *pgconn.PgError
			if errors.As(c.err, &pe) && !errors.As(u, &pe) {
				t.Errorf("markUnknown(%v) hides the *pgconn.PgError", c.err)
			}
		})
	}
}

// TestRetry: DB.retry runs an operation again only while it fails
// retryably, keeps the last error, stops with the context, and runs it
// once on SQLite.
func TestRetry(t *testing.T) {
	lost := fmt.Errorf("lease node n1: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is shutting down"})
	fenced := fmt.Errorf("lease node n1: %w", ErrFenced)
	unknown := markUnknown(fmt.Errorf("commit: %w", io.EOF))
	pg := &DB{d: &dialect{name: DialectPostgres}}
	lite := &DB{d: &dialect{name: DialectSQLite}}
	for _, c := range []struct {
		name       string
		s          *DB
		idempotent bool
		errs       []error // returned by successive calls; nil after
		calls      int
		want       error
	}{
		{"recovers after two lost connections", pg, false, []error{lost, lost}, 3, nil},
		{"a real error is not retried", pg, true, []error{fenced, lost}, 1, fenced},
		{"a lost connection then a real error", pg, true, []error{lost, fenced}, 2, fenced},
		{"unknown COMMIT outcome, not idempotent", pg, false, []error{unknown}, 1, unknown},
		{"unknown COMMIT outcome, idempotent", pg, true, []error{unknown}, 2, nil},
		{"SQLite runs it once", lite, true, []error{lost}, 1, lost},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := c.s.retry(context.Background(), c.idempotent, func() error {
				calls++
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if err != c.want || calls != c.calls {
				t.Errorf("got %v after %d calls, want %v after %d", err, calls, c.want, c.calls)
			}
		})
	}
	t.Run("stops with the context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := pg.retry(ctx, true, func() error {
			calls++
			if calls == 2 {
				cancel()
			}
			return lost
		})
		if err != lost || calls != 2 {
			t.Errorf("got %v after %d calls, want the last error after 2", err, calls)
		}
	})
}
