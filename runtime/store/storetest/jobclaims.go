package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
)

// testClaimJobIDOneWinner: jobs handed the same job id at once, through
// two handles on one database (two processes), see each other: exactly
// one becomes running, every other is told which job holds the id. Jobs
// refused as invalid or duplicate do not hold their id.
func testClaimJobIDOneWinner(t *testing.T, open Opener) {
	ctx := context.Background()
	handles := []store.Store{open(t, Key(1)), open(t, Key(1))}
	s := handles[0]
	refused := &store.Job{Name: "old.json", File: "old.json", SHA256: "h", JobID: "same", Status: store.JobInvalid}
	must(t, s.CreateJob(ctx, refused))
	other := &store.Job{Name: "other.json", File: "other.json", SHA256: "h", JobID: "another", Status: store.JobRunning}
	must(t, s.CreateJob(ctx, other))
	const n = 16
	jobs := make([]*store.Job, n)
	for i := range jobs {
		jobs[i] = &store.Job{Name: fmt.Sprintf("j%02d.json", i), File: fmt.Sprintf("j%02d.json", i), SHA256: "h", Generation: 1}
		must(t, s.CreateJob(ctx, jobs[i]))
	}
	dups := make([]*store.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = handles[i%2].ClaimJobID(ctx, jobs[i].ID, "same", func(j, dup *store.Job) error {
				j.JobID = "same"
				if dups[i] = dup; dup == nil {
					j.Status = store.JobRunning
				} else {
					j.Status = store.JobDuplicate
				}
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	var winner int64
	for i, err := range errs {
		must(t, err)
		j, err := s.GetJob(ctx, jobs[i].ID)
		must(t, err)
		switch {
		case j.Status == store.JobRunning && winner != 0:
			t.Fatalf("jobs %d and %d both run job id %q", winner, j.ID, "same")
		case j.Status == store.JobRunning:
			winner = j.ID
		case dups[i] == nil || dups[i].JobID != "same" || dups[i].ID == refused.ID:
			t.Errorf("job %d is a duplicate of %+v", j.ID, dups[i])
		}
	}
	if winner == 0 {
		t.Fatal("no job runs job id \"same\"")
	}
	// fn's error aborts the transaction: nothing is written.
	boom := errors.New("boom")
	if _, err := s.ClaimJobID(ctx, other.ID, "third", func(j, dup *store.Job) error { j.JobID = "third"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if j, _ := s.GetJob(ctx, other.ID); j.JobID != "another" {
		t.Fatalf("written despite the error: %+v", j)
	}
	if _, err := s.ClaimJobID(ctx, 9999, "x", func(j, dup *store.Job) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

// testSetJobRunChecksClaim: a job's run is recorded only by the holder of
// the job's current claim (fencing): once another process adopted the job
// (its claim generation grew), the old holder's SetJobRun and CreateRun
// with the job link fail with ErrFenced and write nothing.
func testSetJobRunChecksClaim(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Key(1))
	j := &store.Job{Name: "a.json", File: "a.json", SHA256: "h", Nodes: []string{"n1"}, Generation: 1}
	must(t, s.CreateJob(ctx, j))
	must(t, s.SetJobRun(ctx, &store.JobRun{Job: j.ID, Generation: 1, Node: "n1", RunID: 1, Status: store.StatusRunning}))
	// adopted by another process
	if _, err := s.UpdateJob(ctx, j.ID, func(j *store.Job) error { j.Generation++; return nil }); err != nil {
		t.Fatal(err)
	}
	err := s.SetJobRun(ctx, &store.JobRun{Job: j.ID, Generation: 1, Node: "n1", RunID: 1, Status: store.StatusSucceeded})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("SetJobRun with a lost claim: %v, want ErrFenced", err)
	}
	before, err := s.ListRuns(ctx, store.RunFilter{})
	must(t, err)
	r := &store.Run{Script: "x", Host: "h", PID: 1, JobLink: &store.JobRun{Job: j.ID, Generation: 1, Node: "n1", Status: store.StatusRunning}}
	if err := s.CreateRun(ctx, r); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("CreateRun linked with a lost claim: %v, want ErrFenced", err)
	}
	after, err := s.ListRuns(ctx, store.RunFilter{})
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("a run was created with a lost claim: %d runs, was %d", len(after), len(before))
	}
	runs, err := s.JobRuns(ctx, j.ID)
	must(t, err)
	if len(runs) != 1 || runs[0].Status != store.StatusRunning || runs[0].RunID != 1 {
		t.Fatalf("the old holder changed the job's runs: %+v", runs)
	}
	// the new holder writes
	must(t, s.SetJobRun(ctx, &store.JobRun{Job: j.ID, Generation: 2, Node: "n1", RunID: 2, Status: store.StatusSucceeded}))
	r = &store.Run{Script: "x", Host: "h", PID: 1, JobLink: &store.JobRun{Job: j.ID, Generation: 2, Node: "n2", Status: store.StatusRunning}}
	must(t, s.CreateRun(ctx, r))
	if runs, _ := s.JobRuns(ctx, j.ID); len(runs) != 2 || runs[0].RunID != 2 || runs[1].RunID != r.ID {
		t.Fatalf("the holder's runs: %+v", runs)
	}
	if err := s.SetJobRun(ctx, &store.JobRun{Job: 9999, Generation: 1, Node: "n1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

// testJobsByFolder: a job row keeps the watch folder it was dropped in
// (schema version 8), through updates and a reopen; ListJobs selects by
// folder ("" selecting rows recorded without one), and AdoptJobs takes
// only the jobs of the adopter's folder and those without a folder, so a
// watcher never judges the jobs of a folder it does not watch; a process
// that was taken over adopts nothing (ErrFenced).
func testJobsByFolder(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, Key(1))
	mk := func(name, folder string) *store.Job {
		j := &store.Job{Name: name, File: name, SHA256: "h", Folder: folder, Status: store.JobRequeued, Queued: name, Generation: 1}
		must(t, s.CreateJob(ctx, j))
		return j
	}
	a, b, legacy := mk("a.json", "folder-a"), mk("b.json", "folder-b"), mk("old.json", "")
	if _, err := s.UpdateJob(ctx, b.ID, func(j *store.Job) error { j.Attempts = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJobID(ctx, b.ID, "idb", func(j, _ *store.Job) error { j.JobID = "idb"; return nil }); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	s = open(t, Key(1))
	if g, err := s.GetJob(ctx, b.ID); err != nil || g.Folder != "folder-b" || g.Attempts != 2 || g.JobID != "idb" {
		t.Fatalf("job b after updates and a reopen: %+v %v", g, err)
	}
	ids := func(f store.JobFilter) []int64 {
		t.Helper()
		js, err := s.ListJobs(ctx, f)
		must(t, err)
		var out []int64
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    store.JobFilter
		want []int64
	}{
		{"every folder", store.JobFilter{}, []int64{a.ID, b.ID, legacy.ID}},
		{"folder a", store.JobFilter{Folders: []string{"folder-a"}}, []int64{a.ID}},
		{"folder a and no folder", store.JobFilter{Folders: []string{"folder-a", ""}, Open: true}, []int64{a.ID, legacy.ID}},
		{"another folder", store.JobFilter{Folders: []string{"folder-c"}}, nil},
		{"queued name in folder b", store.JobFilter{Queued: "b.json", Folders: []string{"folder-b", ""}}, []int64{b.ID}},
		{"queued name of folder b asked from folder a", store.JobFilter{Queued: "b.json", Folders: []string{"folder-a", ""}}, nil},
	} {
		if got := ids(tt.f); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v want %v", tt.name, got, tt.want)
		}
	}
	ad, ok := s.(store.JobAdopter)
	l, lok := s.(Leaser)
	if !ok || !lok {
		return
	}
	now := time.Now()
	ca, err := l.RegisterConductor(ctx, "h", 1, now)
	must(t, err)
	cb, err := l.RegisterConductor(ctx, "h", 2, now)
	must(t, err)
	// the three jobs belong to no live process (conductor 0)
	got, err := ad.AdoptJobs(ctx, ca.ID, "folder-a")
	must(t, err)
	var adopted []int64
	for _, j := range got {
		adopted = append(adopted, j.ID)
		if j.Conductor != ca.ID || j.Generation != 2 {
			t.Errorf("adopted job %d: conductor %d generation %d", j.ID, j.Conductor, j.Generation)
		}
	}
	if want := []int64{a.ID, legacy.ID}; !reflect.DeepEqual(adopted, want) {
		t.Fatalf("adopted by folder a's watcher: %v, want %v (not folder b's job %d)", adopted, want, b.ID)
	}
	if g, _ := s.GetJob(ctx, b.ID); g.Conductor != 0 || g.Generation != 1 {
		t.Fatalf("folder b's job was touched by folder a's adoption: %+v", g)
	}
	got, err = ad.AdoptJobs(ctx, cb.ID, "folder-b")
	must(t, err)
	if len(got) != 1 || got[0].ID != b.ID || got[0].Conductor != cb.ID {
		t.Fatalf("adopted by folder b's watcher: %+v, want job %d only", got, b.ID)
	}
	// a process taken over (SIGSTOP, then resumed) adopts nothing
	late := mk("late.json", "folder-a")
	cc, err := l.RegisterConductor(ctx, "h", 3, now.Add(-time.Hour))
	must(t, err)
	if _, err := l.TakeOver(ctx, ca.ID, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	for _, by := range []int64{cc.ID, 9999} {
		if got, err := ad.AdoptJobs(ctx, by, "folder-a"); !errors.Is(err, store.ErrFenced) || len(got) != 0 {
			t.Fatalf("adoption by fenced or unknown conductor %d: %+v %v, want ErrFenced", by, got, err)
		}
	}
	if g, _ := s.GetJob(ctx, late.ID); g.Conductor != 0 || g.Generation != 1 {
		t.Fatalf("a fenced conductor adopted job %d: %+v", late.ID, g)
	}
}
