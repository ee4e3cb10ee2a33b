package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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

func TestTransitionsAndLocks(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := context.Background()
	s.CreateNode(ctx, node("a"))
	if _, err := s.Transition(ctx, "a", "deploy"); err == nil {
		t.Fatal("manageable -> deploy allowed")
	}
	n, err := s.Transition(ctx, "a", "inspect")
	if err != nil || n.ProvisionState != "inspecting" {
		t.Fatalf("%v %v", n, err)
	}
	if err := s.LockNode(ctx, "uuid-a", 1); err != nil {
		t.Fatal(err)
	}
	var le *LockedError
	if err := s.LockNode(ctx, "uuid-a", 2); !errors.As(err, &le) || le.RunID != 1 || le.Error() != "node a is locked by run 1" {
		t.Fatalf("second lock: %v", err)
	}
	if err := s.DeleteNode(ctx, "a"); !errors.As(err, &le) {
		t.Fatalf("delete of a locked node: %v", err)
	}
	s.UnlockNode(ctx, "uuid-a", 1)
	if err := s.LockNode(ctx, "uuid-a", 2); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverInterrupted(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := context.Background()
	s.CreateNode(ctx, node("a"))
	dead := &Run{Script: "x", Host: "h", PID: 111, NodeUUID: "uuid-a", NodeName: "a"}
	live := &Run{Script: "x", Host: "h", PID: 222}
	s.CreateRun(ctx, dead)
	s.CreateRun(ctx, live)
	s.LockNode(ctx, "uuid-a", dead.ID)
	ids, err := s.RecoverInterrupted(ctx, func(host string, pid int) bool { return pid == 222 })
	if err != nil || len(ids) != 1 || ids[0] != dead.ID {
		t.Fatalf("%v %v", ids, err)
	}
	r, _ := s.GetRun(ctx, dead.ID)
	n, _ := s.GetNode(ctx, "a")
	if r.Status != StatusInterrupted || r.FinishedAt == nil || n.Reservation != 0 {
		t.Fatalf("run %+v node reservation %d", r, n.Reservation)
	}
	if r, _ := s.GetRun(ctx, live.ID); r.Status != StatusRunning {
		t.Fatalf("live run touched: %s", r.Status)
	}
}

func TestEventsAndArtifacts(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "x.db"))
	ctx := context.Background()
	r := &Run{Script: "x", Host: "h", PID: 1}
	s.CreateRun(ctx, r)
	now := time.Now()
	evs := []Event{{RunID: r.ID, Seq: 2, Time: now, Kind: EventLog, Name: "info", Data: map[string]any{"msg": "b"}},
		{RunID: r.ID, Seq: 1, Time: now, Kind: EventStepStart, Name: "s"}}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Events(ctx, r.ID)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Data["msg"] != "b" {
		t.Fatalf("events %+v", got)
	}
	a := &Artifact{RunID: r.ID, NodeUUID: "u", Kind: "iso", Location: "http://127.0.0.1/x"}
	s.AddArtifact(ctx, a)
	if as, _ := s.Artifacts(ctx, "u", false); len(as) != 1 {
		t.Fatalf("artifacts %v", as)
	}
	s.MarkArtifactDeleted(ctx, a.ID)
	if as, _ := s.Artifacts(ctx, "u", false); len(as) != 0 {
		t.Fatalf("deleted artifact listed %v", as)
	}
	if as, _ := s.RunArtifacts(ctx, r.ID); len(as) != 1 || as[0].DeletedAt == nil {
		t.Fatalf("run artifacts %v", as)
	}
}
