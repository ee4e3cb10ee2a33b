package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestRecoverReleasesLocksOfFinishedRuns: a process killed between
// FinishRun and UnlockNode leaves a finished run holding its node; the
// next recovery releases it, and leaves locks of live runs alone.
func TestRecoverReleasesLocksOfFinishedRuns(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "r.db"))
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if err := s.CreateNode(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	finished := &Run{Script: "x", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1}
	live := &Run{Script: "x", NodeUUID: "uuid-b", NodeName: "b", Host: "h", PID: 2}
	for _, r := range []*Run{finished, live} {
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.LockNode(ctx, r.NodeUUID, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishRun(ctx, finished.ID, StatusSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	// killed here: no UnlockNode
	if _, err := s.RecoverInterrupted(ctx, func(string, int) bool { return true }); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetNode(ctx, "a")
	b, _ := s.GetNode(ctx, "b")
	if a.Reservation != 0 || b.Reservation != live.ID {
		t.Fatalf("after recovery: a locked by %d, b by %d (want 0 and %d)", a.Reservation, b.Reservation, live.ID)
	}
}
