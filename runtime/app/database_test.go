package app_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
)

func openWithConf(t *testing.T, dir, conf string) (*app.App, error) {
	t.Helper()
	t.Setenv("LIGHTSOUT_CONFIG", "")
	p := filepath.Join(dir, "lightsout.conf")
	if err := os.WriteFile(p, []byte("[lightsout]\nstate_dir = "+dir+"\n"+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), app.Options{StateDir: dir, ConfigPath: p, Stdout: os.Stdout, Stderr: os.Stderr, LogLevel: "error"})
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

// TestPostgresConnection: with [database] connection = postgresql://… the
// app keeps its nodes in PostgreSQL (no SQLite file appears), secrets
// encrypted with the state dir's key, across a reopen.
func TestPostgresConnection(t *testing.T) {
	url := testenv.Postgres(t)
	dir := t.TempDir()
	conf := "[database]\nconnection = " + url + "\n"
	a, err := openWithConf(t, dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	if db, ok := a.Store.(*store.DB); !ok || db.Dialect() != store.DialectPostgres {
		t.Fatalf("store %T is not PostgreSQL", a.Store)
	}
	di := map[string]any{"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "Pg-Secret-1"}
	if _, err := a.CreateNode(context.Background(), app.NodeSpec{Name: "a", Driver: "agent_ilo", DriverInfo: di}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(dir, "lightsout.db")); err == nil {
		t.Error("a SQLite database was created although [database] connection is PostgreSQL")
	}
	b, err := openWithConf(t, dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.Store.GetNode(context.Background(), "a")
	if err != nil || n.DriverInfo["ilo_password"] != "Pg-Secret-1" {
		t.Fatalf("after reopen: %+v %v", n, err)
	}
}

// TestDatabaseConnectionErrors: an unreachable server or a bad URL is an
// error naming the option, the host:port and the fix, never the password.
func TestDatabaseConnectionErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	tests := []struct {
		name, conn string
		want       []string
	}{
		{"unreachable", "postgresql://lo:Sekr1t-Pw@" + closed + "/lightsout?connect_timeout=5", []string{"[database] connection", closed, "cannot reach PostgreSQL"}},
		{"bad scheme", "mysql://lo:Sekr1t-Pw@" + closed + "/lightsout", []string{"[database] connection", "postgresql://user:password@host:5432/lightsout"}},
		{"bad sslmode", "postgresql://lo:Sekr1t-Pw@" + closed + "/lightsout?sslmode=bogus", []string{"[database] connection", "sslmode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openWithConf(t, t.TempDir(), "[database]\nconnection = "+tt.conn+"\n")
			if err == nil {
				t.Fatal("opened")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Sekr1t-Pw") {
				t.Errorf("error %q shows the password", err)
			}
			t.Log(err)
		})
	}
}
