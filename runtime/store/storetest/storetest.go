// Package storetest is the behaviour every store.Store must have, as one
// suite run against each implementation (SQLite and PostgreSQL), the way
// restic runs one test suite against every backend:
//
//	storetest.Run(t, func(t *testing.T) storetest.Opener { ... })
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// Opener opens the database under test with cipher: every call within one
// test opens the same database (a reopen). The store is closed when t ends
// (closing it earlier is allowed).
type Opener func(t testing.TB, cipher *secrets.Cipher) store.Store

// Dumper is implemented by stores that can show their rows as stored;
// the suite then checks that no secret is stored in clear.
type Dumper interface {
	Dump(ctx context.Context, fn func(table string, row []any) error) error
}

// Leaser is implemented by stores shared by several processes through
// leases (store.DB).
type Leaser interface {
	RegisterConductor(ctx context.Context, host string, pid int, now time.Time) (*store.Conductor, error)
	Heartbeat(ctx context.Context, id int64, ttl time.Duration, now time.Time) error
	AcquireLease(ctx context.Context, uuid string, runID, conductor int64, ttl time.Duration, now time.Time) (int64, error)
	TakeOver(ctx context.Context, by int64, timeout time.Duration, now time.Time) ([]int64, error)
	Conductors(ctx context.Context) ([]store.Conductor, error)
}

// Sensitive is implemented by stores that encrypt values a check flags.
type Sensitive interface {
	SetSensitive(fn func(v any) bool)
}

// Key returns the test cipher number n (different n: different keys).
func Key(n byte) *secrets.Cipher {
	c, err := secrets.NewCipher(bytes.Repeat([]byte{n}, 32))
	if err != nil {
		panic(err)
	}
	return c
}

// Run runs the suite; newDB returns the Opener of a new, empty database.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"ReopenKeepsDataWrongKeyRefused", testReopen},
		{"TransitionsAndLocks", testTransitionsAndLocks},
		{"RecoverInterrupted", testRecoverInterrupted},
		{"RecoverReleasesLocksOfFinishedRuns", testRecoverReleasesLocksOfFinishedRuns},
		{"ChangesFromOutsideTheHoldingRunAreRefused", testChangesFromOutside},
		{"InterruptRunFailsTransientNodes", testInterruptRunFailsTransientNodes},
		{"AbortRequest", testAbortRequest},
		{"EventsAndArtifacts", testEventsAndArtifacts},
		{"JobsRoundTripAndFilters", testJobs},
		{"DuplicatePortsRefused", testDuplicatePortsRefused},
		{"CreateNodesAllOrNothing", testCreateNodesAllOrNothing},
		{"URLCredentialsNeverInErrors", testURLCredentialsNeverInErrors},
		{"SealedValueWithWrongKeyNamesTheField", testSealedValueWithWrongKey},
		{"SecretsNeverStoredInClear", testSecretsNeverStoredInClear},
		{"ListRunsKeysetPages", testListRunsPages},
		{"PruneEventsKeepsFailedLonger", testPruneEvents},
		{"ConcurrentLocksOneWinner", testConcurrentLocks},
		{"ConcurrentUpdatesNoLostUpdate", testConcurrentUpdates},
		{"LeasesTakeOverAndFencing", testLeases},
		{"FinishRunOnlyOnce", testFinishOnce},
		{"ClaimJobIDOneWinner", testClaimJobIDOneWinner},
		{"SetJobRunChecksClaim", testSetJobRunChecksClaim},
		{"JobsKeepTheirFolder", testJobsByFolder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDB(t)) })
	}
}

// Node returns a manageable test node with a password in driver_info.
func Node(name string) *store.Node {
	return &store.Node{UUID: "uuid-" + name, Name: name, Driver: "agent_ilo", ProvisionState: "manageable",
		DriverInfo: map[string]any{"ilo_address": "h", "ilo_password": "Pa55-word"}}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testReopen(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Key(1))
	must(t, s.CreateNode(ctx, Node("a")))
	var dup *store.DuplicateError
	sameName := Node("a")
	sameName.UUID = "uuid-other"
	if err := s.CreateNode(ctx, sameName); !errors.As(err, &dup) || dup.Field != "name" {
		t.Fatalf("duplicate name: %v", err)
	}
	other := Node("b")
	other.UUID = "uuid-a"
	if err := s.CreateNode(ctx, other); !errors.As(err, &dup) || dup.Field != "uuid" {
		t.Fatalf("duplicate uuid: %v", err)
	}
	must(t, s.Close())
	s2 := open(t, Key(1)) // migrations are idempotent
	n, err := s2.GetNode(ctx, "a")
	if err != nil || n.DriverInfo["ilo_password"] != "Pa55-word" {
		t.Fatalf("got %+v %v", n, err)
	}
	if _, err := s2.GetNode(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused node b: %v", err)
	}
	must(t, s2.Close())
	// Another key cannot read the secret and says so.
	s3 := open(t, Key(2))
	if _, err := s3.GetNode(ctx, "a"); err == nil {
		t.Fatal("read with wrong key")
	}
}

func testTransitionsAndLocks(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	must(t, s.CreateNode(ctx, Node("a")))
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
	var le *store.LockedError
	if err := s.LockNode(ctx, "uuid-a", 2); !errors.As(err, &le) || le.RunID != 1 || le.Error() != "node a is locked by run 1" {
		t.Fatalf("second lock: %v", err)
	}
	if err := s.DeleteNode(ctx, "a"); !errors.As(err, &le) {
		t.Fatalf("delete of a locked node: %v", err)
	}
	must(t, s.UnlockNode(ctx, "uuid-a", 1))
	if err := s.LockNode(ctx, "uuid-a", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.LockNode(ctx, "uuid-missing", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lock of a missing node: %v", err)
	}
}

func testRecoverInterrupted(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	must(t, s.CreateNode(ctx, Node("a")))
	dead := &store.Run{Script: "x", Host: "h", PID: 111, NodeUUID: "uuid-a", NodeName: "a"}
	live := &store.Run{Script: "x", Host: "h", PID: 222}
	must(t, s.CreateRun(ctx, dead))
	must(t, s.CreateRun(ctx, live))
	must(t, s.LockNode(ctx, "uuid-a", dead.ID))
	ids, err := s.RecoverInterrupted(ctx, func(host string, pid int) bool { return pid == 222 })
	if err != nil || len(ids) != 1 || ids[0] != dead.ID {
		t.Fatalf("%v %v", ids, err)
	}
	r, _ := s.GetRun(ctx, dead.ID)
	n, _ := s.GetNode(ctx, "a")
	if r.Status != store.StatusInterrupted || r.FinishedAt == nil || n.Reservation != 0 {
		t.Fatalf("run %+v node reservation %d", r, n.Reservation)
	}
	if r, _ := s.GetRun(ctx, live.ID); r.Status != store.StatusRunning {
		t.Fatalf("live run touched: %s", r.Status)
	}
}

// testRecoverReleasesLocksOfFinishedRuns: a process killed between
// FinishRun and UnlockNode leaves a finished run holding its node; the
// next recovery releases it, and leaves locks of live runs alone.
func testRecoverReleasesLocksOfFinishedRuns(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		must(t, s.CreateNode(ctx, Node(n)))
	}
	finished := &store.Run{Script: "x", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1}
	live := &store.Run{Script: "x", NodeUUID: "uuid-b", NodeName: "b", Host: "h", PID: 2}
	for _, r := range []*store.Run{finished, live} {
		must(t, s.CreateRun(ctx, r))
		must(t, s.LockNode(ctx, r.NodeUUID, r.ID))
	}
	must(t, s.FinishRun(ctx, finished.ID, store.StatusSucceeded, ""))
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

// testChangesFromOutside: while a run holds a node, operator changes
// (update, transition, delete) are refused naming the run and its script;
// the run's own changes and internal bookkeeping pass.
func testChangesFromOutside(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	must(t, s.CreateNode(ctx, Node("a")))
	r := &store.Run{Script: "deploy", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1}
	must(t, s.CreateRun(ctx, r))
	must(t, s.LockNode(ctx, r.NodeUUID, r.ID))
	set := func(n *store.Node) error { n.InstanceInfo["image_source"] = "B"; return nil }
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
		var le *store.LockedError
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
	if _, err := s.UpdateNodeAs(ctx, store.Internal, "a", func(n *store.Node) error { n.DriverInternalInfo["agent_url"] = "x"; return nil }); err != nil {
		t.Fatalf("internal bookkeeping: %v", err)
	}
	must(t, s.UnlockNode(ctx, "uuid-a", r.ID))
	if _, err := s.UpdateNode(ctx, "a", set); err != nil {
		t.Fatalf("unlocked: %v", err)
	}
	must(t, s.DeleteNode(ctx, "a"))
	if _, err := s.GetNode(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted node: %v", err)
	}
}

// testInterruptRunFailsTransientNodes: an interrupted run's node in a
// transient state moves to its failure state with last_error naming the
// run and the cause, and recovery pending; a stable node keeps its state;
// both are unlocked.
func testInterruptRunFailsTransientNodes(t *testing.T, open Opener) {
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
	s := open(t, Key(1))
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			name := fmt.Sprintf("n%d", i)
			n := Node(name)
			n.ProvisionState = tt.state
			must(t, s.CreateNode(ctx, n))
			r := &store.Run{Script: "deploy", NodeUUID: n.UUID, NodeName: name, Host: "h", PID: 1}
			must(t, s.CreateRun(ctx, r))
			must(t, s.LockNode(ctx, r.NodeUUID, r.ID))
			dead, err := s.RecoverInterrupted(ctx, func(string, int) bool { return false })
			if err != nil || len(dead) != 1 || dead[0] != r.ID {
				t.Fatalf("recover: %v %v", dead, err)
			}
			got, _ := s.GetNode(ctx, name)
			if got.ProvisionState != tt.want || got.Reservation != 0 {
				t.Fatalf("state %q reservation %d, want %q and 0", got.ProvisionState, got.Reservation, tt.want)
			}
			_, pending := got.DriverInternalInfo[store.RecoveryKey]
			if pending != tt.pending {
				t.Fatalf("recovery pending %v, want %v", pending, tt.pending)
			}
			if tt.pending && !strings.Contains(got.LastError, fmt.Sprintf("run %d (deploy) was interrupted: process died", r.ID)) {
				t.Fatalf("last_error %q", got.LastError)
			}
			run, _ := s.GetRun(ctx, r.ID)
			if run.Status != store.StatusInterrupted {
				t.Fatalf("run status %s", run.Status)
			}
		})
	}
}

// testAbortRequest: recorded only on a running run, read back by the poller.
func testAbortRequest(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	r := &store.Run{Script: "deploy", Host: "h", PID: 1}
	must(t, s.CreateRun(ctx, r))
	if by, err := s.AbortRequested(ctx, r.ID); err != nil || by != "" {
		t.Fatalf("before: %q %v", by, err)
	}
	must(t, s.RequestAbort(ctx, r.ID, "aborted by operator"))
	if by, err := s.AbortRequested(ctx, r.ID); err != nil || by != "aborted by operator" {
		t.Fatalf("after: %q %v", by, err)
	}
	must(t, s.FinishRun(ctx, r.ID, store.StatusCancelled, ""))
	if err := s.RequestAbort(ctx, r.ID, ""); err == nil {
		t.Fatal("abort of a finished run accepted")
	}
}

func testEventsAndArtifacts(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	r := &store.Run{Script: "x", Host: "h", PID: 1}
	must(t, s.CreateRun(ctx, r))
	now := time.Now()
	evs := []store.Event{{RunID: r.ID, Seq: 2, Time: now, Kind: store.EventLog, Name: "info", Data: map[string]any{"msg": "b"}},
		{RunID: r.ID, Seq: 1, Time: now, Kind: store.EventStepStart, Name: "s"}}
	must(t, s.AppendEvents(ctx, evs))
	// a re-sent event replaces the stored one
	must(t, s.AppendEvents(ctx, []store.Event{{RunID: r.ID, Seq: 2, Time: now, Kind: store.EventLog, Name: "info", Data: map[string]any{"msg": "c"}}}))
	got, err := s.Events(ctx, r.ID)
	if err != nil || len(got) != 2 || got[0].Seq != 1 || got[1].Data["msg"] != "c" || !got[0].Time.Equal(now) {
		t.Fatalf("events %+v %v", got, err)
	}
	a := &store.Artifact{RunID: r.ID, NodeUUID: "u", Kind: "iso", Location: "http://127.0.0.1/x"}
	must(t, s.AddArtifact(ctx, a))
	b := &store.Artifact{RunID: r.ID, NodeUUID: "u", Kind: "floppy", Location: "http://127.0.0.1/y"}
	must(t, s.AddArtifact(ctx, b))
	if a.ID == 0 || b.ID <= a.ID {
		t.Fatalf("artifact ids %d %d", a.ID, b.ID)
	}
	if as, _ := s.Artifacts(ctx, "u", false); len(as) != 2 || as[0].Location != a.Location {
		t.Fatalf("artifacts %v", as)
	}
	must(t, s.MarkArtifactDeleted(ctx, a.ID))
	if as, _ := s.Artifacts(ctx, "u", false); len(as) != 1 || as[0].ID != b.ID {
		t.Fatalf("deleted artifact listed %v", as)
	}
	if as, _ := s.RunArtifacts(ctx, r.ID); len(as) != 2 || as[0].DeletedAt == nil {
		t.Fatalf("run artifacts %v", as)
	}
}

func testJobs(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	a := &store.Job{Name: "a.json", File: "a.json", SHA256: "h1", Nodes: []string{"n1", "n2"}, Host: "h", PID: 7}
	b := &store.Job{Name: "b.json", File: "b.json", SHA256: "h2", JobID: "x"}
	for _, j := range []*store.Job{a, b} {
		must(t, s.CreateJob(ctx, j))
	}
	if a.Status != store.JobClaimed || a.ID == 0 || b.ID <= a.ID {
		t.Fatalf("created: %+v %+v", a, b)
	}
	now := time.Now().UTC()
	got, err := s.UpdateJob(ctx, b.ID, func(j *store.Job) error {
		j.Status, j.Attempts, j.Result, j.Final, j.FinishedAt = store.JobDone, 2, `{"ok":true}`, "done/b.json", &now
		return nil
	})
	if err != nil || got.Status != store.JobDone {
		t.Fatal(got, err)
	}
	if _, err := s.UpdateJob(ctx, a.ID, func(j *store.Job) error { return errors.New("boom") }); err == nil {
		t.Fatal("fn error not returned")
	}
	must(t, s.Close())
	s = open(t, Key(1)) // survives a reopen
	tests := []struct {
		name string
		f    store.JobFilter
		want []int64
	}{
		{"all", store.JobFilter{}, []int64{a.ID, b.ID}},
		{"by id", store.JobFilter{JobID: "x"}, []int64{b.ID}},
		{"by file and hash", store.JobFilter{File: "a.json", SHA256: "h1"}, []int64{a.ID}},
		{"wrong hash", store.JobFilter{File: "a.json", SHA256: "h2"}, nil},
		{"status list", store.JobFilter{Status: []string{store.JobDone, store.JobFailed}}, []int64{b.ID}},
		{"open", store.JobFilter{Open: true}, []int64{a.ID, b.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := s.ListJobs(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, j := range js {
				ids = append(ids, j.ID)
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Fatalf("got %v want %v", ids, tt.want)
			}
		})
	}
	g, err := s.GetJob(ctx, b.ID)
	if err != nil || g.Attempts != 2 || g.FinishedAt == nil || g.Final != "done/b.json" || g.Result != `{"ok":true}` {
		t.Fatalf("get: %+v %v", g, err)
	}
	if _, err := s.GetJob(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
	ga, _ := s.GetJob(ctx, a.ID)
	if len(ga.Nodes) != 2 || ga.Host != "h" || ga.PID != 7 || ga.Status != store.JobClaimed {
		t.Fatalf("a: %+v", ga)
	}
	must(t, s.SetJobRun(ctx, &store.JobRun{Job: a.ID, Node: "n2", RunID: 5, Status: store.StatusRunning}))
	must(t, s.SetJobRun(ctx, &store.JobRun{Job: a.ID, Node: "n1", RunID: 4, Status: store.StatusSucceeded, FinishedAt: &now}))
	must(t, s.SetJobRun(ctx, &store.JobRun{Job: a.ID, Node: "n2", RunID: 6, Status: store.StatusSucceeded, Previous: []int64{5}, FinishedAt: &now}))
	runs, err := s.JobRuns(ctx, a.ID)
	if err != nil || len(runs) != 2 || runs[0].Node != "n1" || runs[1].RunID != 6 || len(runs[1].Previous) != 1 || runs[1].FinishedAt == nil {
		t.Fatalf("job runs: %+v %v", runs, err)
	}
	// A run created with its job link records both at once.
	r := &store.Run{Script: "x", Host: "h", PID: 1, JobLink: &store.JobRun{Job: b.ID, Node: "n3", Status: store.StatusRunning}}
	must(t, s.CreateRun(ctx, r))
	if runs, _ := s.JobRuns(ctx, b.ID); len(runs) != 1 || runs[0].RunID != r.ID {
		t.Fatalf("job link: %+v (run %d)", runs, r.ID)
	}
}

// testDuplicatePortsRefused: a MAC owned by one node cannot be given to
// another (case-insensitive, ':' or '-'), on create or on update; the
// error names the MAC and the owner and says to remove it there first.
func testDuplicatePortsRefused(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Key(1))
	withPorts := func(name string, macs ...string) *store.Node {
		n := Node(name)
		for _, m := range macs {
			n.Ports = append(n.Ports, store.Port{Address: m})
		}
		return n
	}
	must(t, s.CreateNode(ctx, withPorts("a", "52:54:00:00:00:01", "52:54:00:00:00:ab")))
	must(t, s.CreateNode(ctx, withPorts("b", "52:54:00:00:00:02")))
	addPort := func(mac string) func(n *store.Node) error {
		return func(n *store.Node) error { n.Ports = append(n.Ports, store.Port{Address: mac}); return nil }
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
			_, err := s.UpdateNode(ctx, "a", func(n *store.Node) error { n.LastError = "x"; return nil })
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.owner == "" {
				must(t, err)
				return
			}
			var pc *store.PortConflictError
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
	if _, err := s.UpdateNode(ctx, "a", func(n *store.Node) error { n.Ports = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateNode(ctx, "b", addPort("52:54:00:00:00:01")); err != nil {
		t.Fatalf("after removal from a: %v", err)
	}
}

// testCreateNodesAllOrNothing: a batch (node import) is created whole,
// secrets encrypted and read back, or refused whole on the first port
// conflict or duplicate, whether it is with a stored node or with an
// earlier node of the same batch.
func testCreateNodesAllOrNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Key(1))
	withPorts := func(name string, macs ...string) *store.Node {
		n := Node(name)
		n.DriverInfo["ilo_password"] = "Pw-" + name
		for _, m := range macs {
			n.Ports = append(n.Ports, store.Port{Address: m})
		}
		return n
	}
	must(t, s.CreateNode(ctx, withPorts("a", "52:54:00:00:00:01")))
	tests := []struct {
		name  string
		batch []*store.Node
		check func(err error) bool
	}{
		{"a stored node's MAC", []*store.Node{withPorts("b", "52:54:00:00:00:02"), withPorts("c", "52:54:00:00:00:01")}, func(err error) bool {
			var pc *store.PortConflictError
			return errors.As(err, &pc) && pc.Owner == "a" && pc.Node == "c"
		}},
		{"an earlier node's MAC in the batch", []*store.Node{withPorts("b", "52:54:00:00:00:02"), withPorts("c", "52-54-00-00-00-02")}, func(err error) bool {
			var pc *store.PortConflictError
			return errors.As(err, &pc) && pc.Owner == "b" && pc.Node == "c"
		}},
		{"a MAC twice on one node", []*store.Node{withPorts("b", "52:54:00:00:00:02", "52:54:00:00:00:02")}, func(err error) bool {
			var pc *store.PortConflictError
			return errors.As(err, &pc) && pc.Owner == "b"
		}},
		{"a stored name", []*store.Node{withPorts("b"), func() *store.Node { n := withPorts("a"); n.UUID = "uuid-a2"; return n }()}, func(err error) bool {
			var d *store.DuplicateError
			return errors.As(err, &d) && d.Field == "name" && d.Value == "a"
		}},
		{"a name twice in the batch", []*store.Node{withPorts("b"), func() *store.Node { n := withPorts("b"); n.UUID = "uuid-b2"; return n }()}, func(err error) bool {
			var d *store.DuplicateError
			return errors.As(err, &d) && d.Field == "name" && d.Value == "b"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateNodes(ctx, tt.batch); !tt.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if nodes, _ := s.ListNodes(ctx); len(nodes) != 1 {
				t.Fatalf("a refused batch left %d nodes, want only a", len(nodes))
			}
		})
	}
	batch := make([]*store.Node, 50)
	for i := range batch {
		batch[i] = withPorts(fmt.Sprintf("n%02d", i), fmt.Sprintf("52:54:00:00:01:%02x", i))
	}
	must(t, s.CreateNodes(ctx, batch))
	nodes, err := s.ListNodes(ctx)
	if err != nil || len(nodes) != 51 {
		t.Fatalf("after the batch: %d nodes, %v; want 51", len(nodes), err)
	}
	for _, n := range nodes[1:] {
		if n.DriverInfo["ilo_password"] != "Pw-"+n.Name || n.ProvisionState != "manageable" || len(n.Ports) != 1 {
			t.Fatalf("node %s read back as %+v", n.Name, n)
		}
	}
	if dumper, ok := s.(Dumper); ok {
		must(t, dumper.Dump(ctx, func(table string, row []any) error {
			for _, v := range row {
				if strings.Contains(fmt.Sprint(v), "Pw-n") {
					t.Errorf("table %s stores a batch node's password in clear", table)
				}
			}
			return nil
		}))
	}
}

// testURLCredentialsNeverInErrors: last_error, the maintenance reason and a
// run's error are stored with URL credentials masked, whoever wrote them.
func testURLCredentialsNeverInErrors(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	n := Node("a")
	n.LastError = "download http://u:LePw-1@h/i.raw failed"
	must(t, s.CreateNode(ctx, n))
	_, err := s.UpdateNode(ctx, "a", func(n *store.Node) error {
		n.Maintenance, n.MaintenanceReason = true, "see http://h/o?temp_url_sig=MrSig-2"
		return nil
	})
	must(t, err)
	r := &store.Run{Script: "deploy", NodeUUID: n.UUID}
	must(t, s.CreateRun(ctx, r))
	must(t, s.FinishRun(ctx, r.ID, store.StatusFailed, "GET https://x:RunPw-3@h/ failed"))
	run, _ := s.GetRun(ctx, r.ID)
	got, _ := s.GetNode(ctx, "a")
	if got.LastError != "download http://u:******@h/i.raw failed" || got.MaintenanceReason != "see http://h/o?temp_url_sig=******" ||
		run.Error != "GET https://x:******@h/ failed" || !got.Maintenance {
		t.Fatalf("last_error %q, reason %q, run error %q", got.LastError, got.MaintenanceReason, run.Error)
	}
}

func testSealedValueWithWrongKey(t *testing.T, open Opener) {
	s := open(t, Key(1))
	n := Node("a")
	delete(n.DriverInfo, "ilo_password")
	n.InstanceInfo = map[string]any{"image_url": "http://h/i.img"}
	must(t, s.CreateNode(context.Background(), n))
	must(t, s.Close())
	s2 := open(t, Key(9))
	_, err := s2.GetNode(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "instance_info image_url") || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("GetNode with another key: %v", err)
	}
}

// testSecretsNeverStoredInClear: secret keys, image_url, values holding a
// known secret or URL credentials, and temp-URL artifact locations are
// encrypted in every stored row, and read back decrypted.
func testSecretsNeverStoredInClear(t *testing.T, open Opener) {
	const sentinel = "S3ntinel-Zq7"
	s := open(t, Key(1))
	dumper, ok := s.(Dumper)
	if !ok {
		t.Skip("the store cannot show its stored rows")
	}
	if sv, ok := s.(Sensitive); ok {
		red := secrets.NewRedactor()
		red.Add(sentinel)
		sv.SetSensitive(red.Holds)
	}
	ctx := context.Background()
	n := Node("a")
	n.DriverInfo["ilo_deploy_iso"] = "http://iso-user:IsoPw-8842@10.0.0.9/deploy.iso"
	n.DriverInfo["copied"] = "x" + sentinel
	n.InstanceInfo = map[string]any{"image_url": "http://10.0.0.9/img-ImageUrl-55.qcow2", "image_checksum": "sha256:abc",
		"nested": map[string]any{"list": []any{"a", sentinel}}}
	n.DriverInternalInfo = map[string]any{"agent_token": "AgentTok-7781"}
	must(t, s.CreateNode(ctx, n))
	art := &store.Artifact{RunID: 1, NodeUUID: n.UUID, Kind: "iso", Location: "http://10.0.0.9/v1/AUTH_x/c/o?temp_url_sig=ArtSig-9911&temp_url_expires=1"}
	must(t, s.AddArtifact(ctx, art))
	got, err := s.GetNode(ctx, "a")
	if err != nil || !reflect.DeepEqual(got.DriverInfo, n.DriverInfo) || !reflect.DeepEqual(got.InstanceInfo, n.InstanceInfo) {
		t.Fatalf("read back %+v %v", got, err)
	}
	if as, _ := s.Artifacts(ctx, n.UUID, true); len(as) != 1 || as[0].Location != art.Location {
		t.Fatalf("artifact read back %+v", as)
	}
	clear := []string{"Pa55-word", sentinel, "IsoPw-8842", "ImageUrl-55", "AgentTok-7781", "ArtSig-9911"}
	sawChecksum := false
	err = dumper.Dump(ctx, func(table string, row []any) error {
		for _, v := range row {
			str := fmt.Sprint(v)
			sawChecksum = sawChecksum || strings.Contains(str, "sha256:abc")
			for _, c := range clear {
				if strings.Contains(str, c) {
					t.Errorf("table %s stores %q in clear", table, c)
				}
			}
		}
		return nil
	})
	must(t, err)
	if !sawChecksum {
		t.Error("ordinary values were encrypted too (or Dump shows nothing)")
	}
}

// testListRunsPages: --limit keeps the newest runs (oldest first), Before
// and After walk pages by id, filters combine with them.
func testListRunsPages(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	var ids []int64
	for i := 0; i < 25; i++ {
		st := store.StatusSucceeded
		if i%5 == 0 {
			st = store.StatusFailed
		}
		r := &store.Run{Script: "x", NodeName: fmt.Sprintf("n%d", i%2), Host: "h", PID: 1}
		must(t, s.CreateRun(ctx, r))
		must(t, s.FinishRun(ctx, r.ID, st, ""))
		ids = append(ids, r.ID)
	}
	list := func(f store.RunFilter) []int64 {
		t.Helper()
		rs, err := s.ListRuns(ctx, f)
		must(t, err)
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    store.RunFilter
		want []int64
	}{
		{"all", store.RunFilter{}, ids},
		{"last 10", store.RunFilter{Limit: 10}, ids[15:]},
		{"page before", store.RunFilter{Limit: 10, Before: ids[15]}, ids[5:15]},
		{"last page", store.RunFilter{Limit: 10, Before: ids[5]}, ids[:5]},
		{"after", store.RunFilter{Limit: 10, After: ids[4]}, ids[5:15]},
		{"after, no limit", store.RunFilter{After: ids[20]}, ids[21:]},
		{"failed", store.RunFilter{Status: store.StatusFailed, Limit: 3}, []int64{ids[10], ids[15], ids[20]}},
		{"failed before", store.RunFilter{Status: store.StatusFailed, Limit: 3, Before: ids[10]}, []int64{ids[0], ids[5]}},
		{"node", store.RunFilter{Node: "n1", Limit: 2}, []int64{ids[21], ids[23]}},
	}
	for _, tt := range tests {
		if got := list(tt.f); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// testConcurrentLocks: of many runs locking one node at once, exactly one
// gets it; the others get a *LockedError naming it.
func testConcurrentLocks(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	must(t, s.CreateNode(ctx, Node("a")))
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.LockNode(ctx, "uuid-a", int64(i+1))
		}()
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		var le *store.LockedError
		switch {
		case err == nil:
			winners++
		case !errors.As(err, &le):
			t.Errorf("run %d: %v", i+1, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d runs hold the node", winners)
	}
}

// testConcurrentUpdates: read-then-write updates from many goroutines are
// serialised (no update is lost).
func testConcurrentUpdates(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	must(t, s.CreateNode(ctx, Node("a")))
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.UpdateNode(ctx, "a", func(n *store.Node) error {
					c, _ := n.Properties["count"].(float64)
					n.Properties["count"] = c + 1
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := s.GetNode(ctx, "a")
	must(t, err)
	if n.Properties["count"] != float64(workers*each) {
		t.Fatalf("count = %v, want %d (lost updates)", n.Properties["count"], workers*each)
	}
}

// testPruneEvents: events of succeeded runs go after Retention.Succeeded,
// of runs that did not succeed after Retention.Failed; running runs and
// the run rows themselves stay.
func testPruneEvents(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	mk := func(status string) int64 {
		r := &store.Run{Script: "x", Host: "h", PID: 1}
		must(t, s.CreateRun(ctx, r))
		var evs []store.Event
		for i := int64(1); i <= 3; i++ {
			evs = append(evs, store.Event{RunID: r.ID, Seq: i, Time: time.Now(), Kind: store.EventLog, Name: "info"})
		}
		must(t, s.AppendEvents(ctx, evs))
		if status != store.StatusRunning {
			must(t, s.FinishRun(ctx, r.ID, status, ""))
		}
		return r.ID
	}
	ok1, ok2, failed, timedOut, running := mk(store.StatusSucceeded), mk(store.StatusSucceeded), mk(store.StatusFailed), mk(store.StatusTimedOut), mk(store.StatusRunning)
	events := func(id int64) int {
		evs, err := s.Events(ctx, id)
		must(t, err)
		return len(evs)
	}
	keep := store.Retention{Succeeded: time.Hour, Failed: 3 * time.Hour}
	if n, err := s.PruneEvents(ctx, keep, time.Now()); err != nil || n != 0 {
		t.Fatalf("nothing old yet: pruned %d, %v", n, err)
	}
	if n, err := s.PruneEvents(ctx, keep, time.Now().Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("after 2h: pruned %d runs, %v; want the 2 succeeded", n, err)
	}
	if events(ok1) != 0 || events(ok2) != 0 || events(failed) != 3 || events(timedOut) != 3 || events(running) != 3 {
		t.Fatalf("after 2h: events %d %d %d %d %d", events(ok1), events(ok2), events(failed), events(timedOut), events(running))
	}
	if n, err := s.PruneEvents(ctx, keep, time.Now().Add(4*time.Hour)); err != nil || n != 2 {
		t.Fatalf("after 4h: pruned %d runs, %v; want the failed and the timed out", n, err)
	}
	if events(failed) != 0 || events(timedOut) != 0 || events(running) != 3 {
		t.Fatal("after 4h: the failed runs kept their events, or the running one lost them")
	}
	if n, err := s.PruneEvents(ctx, store.Retention{}, time.Now().Add(1000*time.Hour)); err != nil || n != 0 {
		t.Fatalf("no retention: pruned %d, %v", n, err)
	}
	if runs, _ := s.ListRuns(ctx, store.RunFilter{}); len(runs) != 5 {
		t.Fatalf("%d runs listed after pruning, want 5", len(runs))
	}
}

// testFinishOnce: a finished run cannot be finished otherwise (its status
// is what recovery or the first finish recorded); the same finish repeated
// (a retry whose first attempt committed) is accepted and changes nothing.
func testFinishOnce(t *testing.T, open Opener) {
	s := open(t, Key(1))
	ctx := context.Background()
	r := &store.Run{Script: "x", Host: "h", PID: 1}
	must(t, s.CreateRun(ctx, r))
	must(t, s.FinishRun(ctx, r.ID, store.StatusFailed, "first"))
	first, _ := s.GetRun(ctx, r.ID)
	if err := s.FinishRun(ctx, r.ID, store.StatusSucceeded, ""); err == nil || !strings.Contains(err.Error(), "already failed") {
		t.Fatalf("second finish: %v", err)
	}
	if err := s.FinishRun(ctx, r.ID, store.StatusFailed, "second"); err == nil || !strings.Contains(err.Error(), "already failed") {
		t.Fatalf("second finish with another error: %v", err)
	}
	if err := s.FinishRun(ctx, r.ID, store.StatusFailed, "first"); err != nil {
		t.Fatalf("the same finish repeated: %v", err)
	}
	if got, _ := s.GetRun(ctx, r.ID); first == nil || got == nil || !got.FinishedAt.Equal(*first.FinishedAt) {
		t.Fatalf("a repeated finish changed the run: %+v, was %+v", got, first)
	}
	if got, _ := s.GetRun(ctx, r.ID); got.Status != store.StatusFailed || got.Error != "first" {
		t.Fatalf("run after a second finish: %+v", got)
	}
}

// testLeases: a lease names its process; a process whose heartbeat stopped
// is taken over by another (its run interrupted, its node failed and
// released), and once resumed it is fenced: no heartbeat, no finish, no
// node change, no new lease.
func testLeases(t *testing.T, open Opener) {
	s := open(t, Key(1))
	l, ok := s.(Leaser)
	if !ok {
		t.Skip("the store has no leases")
	}
	ctx := context.Background()
	t0 := time.Now()
	const ttl = 30 * time.Second
	c1, err := l.RegisterConductor(ctx, "h1", 11, t0)
	must(t, err)
	c2, err := l.RegisterConductor(ctx, "h2", 22, t0)
	must(t, err)
	n := Node("a")
	n.ProvisionState = "deploying"
	must(t, s.CreateNode(ctx, n))
	r1 := &store.Run{Script: "deploy", NodeUUID: n.UUID, NodeName: "a", Host: "h1", PID: 11, Conductor: c1.ID}
	r2 := &store.Run{Script: "deploy", NodeUUID: n.UUID, NodeName: "a", Host: "h2", PID: 22, Conductor: c2.ID}
	must(t, s.CreateRun(ctx, r1))
	must(t, s.CreateRun(ctx, r2))
	gen, err := l.AcquireLease(ctx, n.UUID, r1.ID, c1.ID, ttl, t0)
	must(t, err)
	got, _ := s.GetNode(ctx, "a")
	if got.Reservation != r1.ID || got.Lease == nil || got.Lease.Conductor != c1.ID || got.Lease.Generation != gen || !got.Lease.Expires.Equal(t0.Add(ttl).UTC().Truncate(0)) {
		t.Fatalf("leased node: reservation %d lease %+v (want run %d, conductor %d, generation %d)", got.Reservation, got.Lease, r1.ID, c1.ID, gen)
	}
	var le *store.LockedError
	if _, err := l.AcquireLease(ctx, n.UUID, r2.ID, c2.ID, ttl, t0); !errors.As(err, &le) || le.RunID != r1.ID {
		t.Fatalf("lease held by another run: %v", err)
	}
	must(t, l.Heartbeat(ctx, c1.ID, ttl, t0.Add(10*time.Second)))
	must(t, l.Heartbeat(ctx, c2.ID, ttl, t0.Add(40*time.Second)))
	if runs, err := l.TakeOver(ctx, c2.ID, ttl, t0.Add(35*time.Second)); err != nil || len(runs) != 0 {
		t.Fatalf("take over before the timeout: %v %v", runs, err)
	}
	// c1 stops heartbeating (SIGSTOP); c2 takes over after the timeout.
	runs, err := l.TakeOver(ctx, c2.ID, ttl, t0.Add(45*time.Second))
	if err != nil || len(runs) != 1 || runs[0] != r1.ID {
		t.Fatalf("take over: %v %v, want run %d", runs, err, r1.ID)
	}
	got, _ = s.GetNode(ctx, "a")
	run1, _ := s.GetRun(ctx, r1.ID)
	if got.Reservation != 0 || got.Lease != nil || got.ProvisionState != "deploy failed" || run1.Status != store.StatusInterrupted ||
		!strings.Contains(run1.Error, "stopped heartbeating") {
		t.Fatalf("after take over: node %q reservation %d lease %+v; run %s %q", got.ProvisionState, got.Reservation, got.Lease, run1.Status, run1.Error)
	}
	// c1 resumes: fenced everywhere.
	if err := l.Heartbeat(ctx, c1.ID, ttl, t0.Add(50*time.Second)); !errors.Is(err, store.ErrFenced) {
		t.Errorf("heartbeat of the taken-over process: %v", err)
	}
	if err := s.FinishRun(ctx, r1.ID, store.StatusSucceeded, ""); !errors.Is(err, store.ErrFenced) {
		t.Errorf("finish of its interrupted run: %v", err)
	}
	if _, err := s.UpdateNodeAs(ctx, r1.ID, "a", func(n *store.Node) error { n.LastError = "late"; return nil }); !errors.Is(err, store.ErrFenced) {
		t.Errorf("node change by its interrupted run: %v", err)
	}
	if _, err := l.AcquireLease(ctx, n.UUID, r1.ID, c1.ID, ttl, t0.Add(50*time.Second)); !errors.Is(err, store.ErrFenced) {
		t.Errorf("new lease of the taken-over process: %v", err)
	}
	if run1, _ := s.GetRun(ctx, r1.ID); run1.Status != store.StatusInterrupted {
		t.Errorf("run status after the fenced writes: %s", run1.Status)
	}
	gen2, err := l.AcquireLease(ctx, n.UUID, r2.ID, c2.ID, ttl, t0.Add(50*time.Second))
	if err != nil || gen2 != gen+1 {
		t.Fatalf("lease by the live process: generation %d (want %d) %v", gen2, gen+1, err)
	}
	if runs, err := l.TakeOver(ctx, c2.ID, ttl, t0.Add(60*time.Second)); err != nil || len(runs) != 0 {
		t.Fatalf("second take over: %v %v", runs, err)
	}
	if got, _ := s.GetNode(ctx, "a"); got.Reservation != r2.ID {
		t.Fatalf("the live process lost its lease: reservation %d", got.Reservation)
	}
	cs, err := l.Conductors(ctx)
	if err != nil || len(cs) != 2 || cs[1].ID != c1.ID || cs[1].FencedAt == nil || cs[0].FencedAt != nil {
		t.Fatalf("conductors: %+v %v", cs, err)
	}
	// A day later the fenced process is forgotten; the live one stays.
	later := t0.Add(25 * time.Hour)
	must(t, l.Heartbeat(ctx, c2.ID, ttl, later))
	if _, err := l.TakeOver(ctx, c2.ID, ttl, later); err != nil {
		t.Fatal(err)
	}
	if cs, _ := l.Conductors(ctx); len(cs) != 1 || cs[0].ID != c2.ID {
		t.Fatalf("conductors a day later: %+v", cs)
	}
}
