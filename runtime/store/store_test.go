package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/runtime/secrets"
)

func open(t testing.TB, path string) *SQLite {
	t.Helper()
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{1}, 32))
	s, err := Open(context.Background(), path, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func node(name string) *Node {
	return &Node{UUID: "uuid-" + name, Name: name, Driver: "agent_ilo", ProvisionState: "manageable",
		DriverInfo: map[string]any{"ilo_address": "h", "ilo_password": "Pa55-word"}}
}

func TestReopenKeepsDataAndEncrypts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	s := open(t, p)
	ctx := context.Background()
	if err := s.CreateNode(ctx, node("a")); err != nil {
		t.Fatal(err)
	}
	var dup *DuplicateError
	if err := s.CreateNode(ctx, node("a")); !errors.As(err, &dup) {
		t.Fatalf("duplicate: %v", err)
	}
	s.Close()
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	s2 := open(t, p) // migrations are idempotent
	n, err := s2.GetNode(ctx, "a")
	if err != nil || n.DriverInfo["ilo_password"] != "Pa55-word" {
		t.Fatalf("got %+v %v", n, err)
	}
	s2.Close()
	for _, f := range []string{p, p + "-wal"} {
		if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, []byte("Pa55-word")) {
			t.Fatalf("%s holds the clear password", f)
		}
	}
	// Another key cannot read the secret and says so.
	other, _ := secrets.NewCipher(bytes.Repeat([]byte{2}, 32))
	s3, err := Open(ctx, p, other)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := s3.GetNode(ctx, "a"); err == nil {
		t.Fatal("read with wrong key")
	}
}
