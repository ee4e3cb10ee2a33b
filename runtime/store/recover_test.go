package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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

// TestChangesFromOutsideTheHoldingRunAreRefused: while a run holds a node,
// operator changes (update, transition, delete) are refused naming the run
// and its script; the run's own changes and internal bookkeeping pass.
func TestChangesFromOutsideTheHoldingRunAreRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "r.db"))
	ctx := context.Background()
	if err := s.CreateNode(ctx, node("a")); err != nil {
		t.Fatal(err)
	}
	r := &Run{Script: "deploy", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.LockNode(ctx, r.NodeUUID, r.ID); err != nil {
		t.Fatal(err)
	}
	set := func(n *Node) error { n.InstanceInfo["image_source"] = "B"; return nil }
	want := fmt.Sprintf("node a is locked by run %d (deploy)", r.ID)
	refused := []struct {
		name string
		do   func() error
	}{
		{"update", func() error { _, err := s.UpdateNode(ctx, "a", set); return err }},
		{"update as another run", func() error { _, err := s.UpdateNodeAs(ctx, r.ID+1, "a", set); return err }},
		{"transition", func() error { _, err := s.Transition(ctx, "a", "provide"); return err }},
		{"delete", func() error { return s.DeleteNode(ctx, "a") }},
	}
	for _, tt := range refused {
		err := tt.do()
		var le *LockedError
		if !errors.As(err, &le) || err.Error() != want {
			t.Errorf("%s: got %v, want %q", tt.name, err, want)
		}
	}
	if n, _ := s.GetNode(ctx, "a"); n.InstanceInfo["image_source"] != nil || n.ProvisionState != "manageable" {
		t.Fatalf("a refused change was applied: %+v", n)
	}
	if _, err := s.UpdateNodeAs(ctx, r.ID, "a", set); err != nil {
		t.Fatalf("the holding run's change: %v", err)
	}
	if _, err := s.TransitionAs(ctx, r.ID, "a", "provide"); err != nil {
		t.Fatalf("the holding run's transition: %v", err)
	}
	if _, err := s.UpdateNodeAs(ctx, Internal, "a", func(n *Node) error { n.DriverInternalInfo["agent_url"] = "x"; return nil }); err != nil {
		t.Fatalf("internal bookkeeping: %v", err)
	}
	if err := s.UnlockNode(ctx, "uuid-a", r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateNode(ctx, "a", set); err != nil {
		t.Fatalf("unlocked: %v", err)
	}
}

// TestInterruptRunFailsTransientNodes: an interrupted run's node in a
// transient state moves to its failure state with last_error naming the
// run and the cause, and recovery pending; a stable node keeps its state;
// both are unlocked.
func TestInterruptRunFailsTransientNodes(t *testing.T) {
	tests := []struct {
		state, want string
		pending     bool
	}{
		{"deploying", "deploy failed", true},
		{"wait call-back", "deploy failed", true},
		{"clean wait", "clean failed", true},
		{"inspecting", "inspect failed", true},
		{"deleting", "error", true},
		{"active", "active", false},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "r.db"))
			ctx := context.Background()
			n := node("a")
			n.ProvisionState = tt.state
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			r := &Run{Script: "deploy", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1}
			if err := s.CreateRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := s.LockNode(ctx, r.NodeUUID, r.ID); err != nil {
				t.Fatal(err)
			}
			dead, err := s.RecoverInterrupted(ctx, func(string, int) bool { return false })
			if err != nil || len(dead) != 1 || dead[0] != r.ID {
				t.Fatalf("recover: %v %v", dead, err)
			}
			got, _ := s.GetNode(ctx, "a")
			if got.ProvisionState != tt.want || got.Reservation != 0 {
				t.Fatalf("state %q reservation %d, want %q and 0", got.ProvisionState, got.Reservation, tt.want)
			}
			_, pending := got.DriverInternalInfo[RecoveryKey]
			if pending != tt.pending {
				t.Fatalf("recovery pending %v, want %v", pending, tt.pending)
			}
			if tt.pending && !strings.Contains(got.LastError, fmt.Sprintf("run %d (deploy) was interrupted: process died", r.ID)) {
				t.Fatalf("last_error %q", got.LastError)
			}
			run, _ := s.GetRun(ctx, r.ID)
			if run.Status != StatusInterrupted {
				t.Fatalf("run status %s", run.Status)
			}
		})
	}
}

// TestAbortRequest: recorded only on a running run, read back by the poller.
func TestAbortRequest(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "r.db"))
	ctx := context.Background()
	r := &Run{Script: "deploy", Host: "h", PID: 1}
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if by, err := s.AbortRequested(ctx, r.ID); err != nil || by != "" {
		t.Fatalf("before: %q %v", by, err)
	}
	if err := s.RequestAbort(ctx, r.ID, "aborted by operator"); err != nil {
		t.Fatal(err)
	}
	if by, err := s.AbortRequested(ctx, r.ID); err != nil || by != "aborted by operator" {
		t.Fatalf("after: %q %v", by, err)
	}
	if err := s.FinishRun(ctx, r.ID, StatusCancelled, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestAbort(ctx, r.ID, ""); err == nil {
		t.Fatal("abort of a finished run accepted")
	}
}
