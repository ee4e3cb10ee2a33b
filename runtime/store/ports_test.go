package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func withPorts(name string, macs ...string) *Node {
	n := node(name)
	for _, m := range macs {
		n.Ports = append(n.Ports, Port{Address: m})
	}
	return n
}

// TestDuplicatePortsRefused: a MAC owned by one node cannot be given to
// another (case-insensitive, ':' or '-'), on create or on update; the
// error names the MAC and the owner and says to remove it there first.
func TestDuplicatePortsRefused(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "db"))
	if err := s.CreateNode(ctx, withPorts("a", "52:54:00:00:00:01", "52:54:00:00:00:ab")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateNode(ctx, withPorts("b", "52:54:00:00:00:02")); err != nil {
		t.Fatal(err)
	}
	addPort := func(mac string) func(n *Node) error {
		return func(n *Node) error { n.Ports = append(n.Ports, Port{Address: mac}); return nil }
	}
	tests := []struct {
		name  string
		do    func() error
		owner string // "" = accepted
	}{
		{"create with a taken MAC", func() error { return s.CreateNode(ctx, withPorts("c", "52:54:00:00:00:01")) }, "a"},
		{"create, other case", func() error { return s.CreateNode(ctx, withPorts("c", "52:54:00:00:00:0A", "52:54:00:00:00:02")) }, "b"},
		{"create, dashes", func() error { return s.CreateNode(ctx, withPorts("c", "52-54-00-00-00-01")) }, "a"},
		{"create, twice on itself", func() error { return s.CreateNode(ctx, withPorts("c", "52:54:00:00:00:0c", "52:54:00:00:00:0C")) }, "c"},
		{"update steals a port", func() error { _, err := s.UpdateNode(ctx, "b", addPort("52:54:00:00:00:01")); return err }, "a"},
		{"update steals, upper case", func() error { _, err := s.UpdateNode(ctx, "b", addPort("52:54:00:00:00:AB")); return err }, "a"},
		{"update adds a free port", func() error { _, err := s.UpdateNode(ctx, "b", addPort("52:54:00:00:00:03")); return err }, ""},
		{"update keeps its own ports", func() error {
			_, err := s.UpdateNode(ctx, "a", func(n *Node) error { n.LastError = "x"; return nil })
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.owner == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pc *PortConflictError
			if !errors.As(err, &pc) || pc.Owner != tt.owner {
				t.Fatalf("err = %v, want a PortConflictError owned by %s", err, tt.owner)
			}
			msg := err.Error()
			if !strings.Contains(msg, pc.Address) || !strings.Contains(msg, tt.owner) {
				t.Errorf("message %q lacks the MAC or the owner", msg)
			}
			if tt.owner != "c" && !strings.Contains(msg, "remove it from "+tt.owner+" first") {
				t.Errorf("message %q lacks the fix", msg)
			}
		})
	}
	if _, err := s.GetNode(ctx, "c"); err == nil {
		t.Error("a refused create left node c behind")
	}
	b, _ := s.GetNode(ctx, "b")
	if len(b.Ports) != 2 {
		t.Errorf("b ports = %v, want its own and the free one", b.Ports)
	}
	// Moving a port: remove it from a, then b may take it.
	if _, err := s.UpdateNode(ctx, "a", func(n *Node) error { n.Ports = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateNode(ctx, "b", addPort("52:54:00:00:00:01")); err != nil {
		t.Fatalf("after removal from a: %v", err)
	}
}

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
