package testenv

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresBin is where Debian's postgresql-15 package puts the server.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// pgServer is the throw-away PostgreSQL server of this test binary: started
// by testdata/tools/pg.sh on first use, stopped by the script's watchdog
// when the binary exits. It is the only package-level state here, and it
// exists only in test binaries.
var pgServer struct {
	once  sync.Once
	url   string // admin URL (database postgres)
	dir   string
	err   error
	seq   atomic.Int64
	admin *sql.DB
}

// Postgres returns the URL of a new, empty PostgreSQL database on the test
// binary's throw-away server (started on first use, loopback only, random
// port), dropped when t ends. Without PostgreSQL it skips t, or fails it
// under LIGHTSOUT_INTEGRATION=1.
func Postgres(t testing.TB) string {
	t.Helper()
	RequireFiles(t, filepath.Join(PostgresBin, "postgres"), filepath.Join(PostgresBin, "initdb"))
	pgServer.once.Do(startPostgres)
	if pgServer.err != nil {
		t.Fatalf("start PostgreSQL (testdata/tools/pg.sh): %v", pgServer.err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pgServer.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pgServer.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// a pooled admin connection may have died in a RestartPostgres: it
		// fails once (57P01) and is discarded, the next attempt dials anew
		var err error
		for range 3 {
			if _, err = pgServer.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err == nil {
				return
			}
		}
		t.Errorf("drop database %s: %v", name, err)
	})
	u, _ := url.Parse(pgServer.url)
	u.Path = "/" + name
	return u.String()
}

// RestartPostgres restarts the test binary's PostgreSQL server (fast
// shutdown: every connection is dropped), for fault tests.
func RestartPostgres(t testing.TB) {
	t.Helper()
	if pgServer.dir == "" {
		t.Fatal("RestartPostgres before Postgres")
	}
	script, err := repoFile("testdata/tools/pg.sh")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(script, "restart", pgServer.dir).CombinedOutput(); err != nil {
		t.Fatalf("restart PostgreSQL: %v: %s", err, out)
	}
	// the admin pool's idle connections died with the old server
	pgServer.admin.SetMaxIdleConns(0)
	pgServer.admin.SetMaxIdleConns(2)
}

// PostgresAvailable reports whether the PostgreSQL server binaries are
// installed (benchmarks use it to skip quietly).
func PostgresAvailable() bool {
	_, err := os.Stat(filepath.Join(PostgresBin, "postgres"))
	return err == nil
}

func startPostgres() {
	script, err := repoFile("testdata/tools/pg.sh")
	if err != nil {
		pgServer.err = err
		return
	}
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", "--parent", fmt.Sprint(os.Getpid()))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		pgServer.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "url":
			pgServer.url = v
		case "dir":
			pgServer.dir = v
		}
	}
	if pgServer.url == "" {
		pgServer.err = fmt.Errorf("pg.sh printed no url (output %d bytes)", len(out))
		return
	}
	pgServer.admin, pgServer.err = sql.Open("pgx", pgServer.url)
}

// repoFile finds rel in the enclosing repository (tests run in their
// package's directory).
func repoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the test's directory", rel)
		}
		dir = parent
	}
}

// StoreConf returns the config lines (a [database] section: put them
// first, before lines other sections' options are appended to) that put a test's store in a fresh
// PostgreSQL database when LIGHTSOUT_TEST_STORE=postgres ("" otherwise:
// the default SQLite store), so a package's tests can run against both:
//
//	LIGHTSOUT_TEST_STORE=postgres go test ./runtime/app/
func StoreConf(t testing.TB) string {
	t.Helper()
	if os.Getenv("LIGHTSOUT_TEST_STORE") != "postgres" {
		return ""
	}
	return "[database]\nconnection = " + Postgres(t) + "\n\n"
}
