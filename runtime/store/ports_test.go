package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestExistingDuplicatesStillOpen: a database with duplicates written by an
// older version opens, reports them, and unrelated updates still work.
func TestExistingDuplicatesStillOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	for _, n := range []string{"a", "b"} {
		if err := s.CreateNode(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	// as an older lightsout would have stored them
	for _, n := range []string{"a", "b"} {
		if _, err := s.w.ExecContext(ctx, `UPDATE nodes SET ports = ? WHERE name = ?`, `[{"address":"52:54:00:00:00:01"}]`, n); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path)
	dups, err := s.DuplicatePorts(ctx)
	if err != nil || len(dups) != 1 || dups[0].Address != "52:54:00:00:00:01" || strings.Join(dups[0].Nodes, ",") != "a,b" {
		t.Fatalf("DuplicatePorts = %v, %v", dups, err)
	}
	if _, err := s.UpdateNode(ctx, "b", func(n *Node) error { n.LastError = "still editable"; return nil }); err != nil {
		t.Fatalf("unrelated update of a node with a duplicate: %v", err)
	}
}
