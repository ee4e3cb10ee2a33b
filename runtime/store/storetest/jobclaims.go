package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

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
