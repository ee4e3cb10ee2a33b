package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestJobsRoundTripAndFilters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j.db")
	s := open(t, p)
	ctx := context.Background()
	a := &Job{Name: "a.json", File: "a.json", SHA256: "h1", Nodes: []string{"n1", "n2"}, Host: "h", PID: 7}
	b := &Job{Name: "b.json", File: "b.json", SHA256: "h2", JobID: "x"}
	for _, j := range []*Job{a, b} {
		if err := s.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if a.Status != JobClaimed || a.ID == 0 || b.ID <= a.ID {
		t.Fatalf("created: %+v %+v", a, b)
	}
	now := time.Now().UTC()
	got, err := s.UpdateJob(ctx, b.ID, func(j *Job) error {
		j.Status, j.Attempts, j.Result, j.Final, j.FinishedAt = JobDone, 2, `{"ok":true}`, "done/b.json", &now
		return nil
	})
	if err != nil || got.Status != JobDone {
		t.Fatal(got, err)
	}
	if _, err := s.UpdateJob(ctx, a.ID, func(j *Job) error { return errors.New("boom") }); err == nil {
		t.Fatal("fn error not returned")
	}
	s.Close()
	s = open(t, p) // survives a reopen
	tests := []struct {
		name string
		f    JobFilter
		want []int64
	}{
		{"all", JobFilter{}, []int64{a.ID, b.ID}},
		{"by id", JobFilter{JobID: "x"}, []int64{b.ID}},
		{"by file and hash", JobFilter{File: "a.json", SHA256: "h1"}, []int64{a.ID}},
		{"wrong hash", JobFilter{File: "a.json", SHA256: "h2"}, nil},
		{"status list", JobFilter{Status: []string{JobDone, JobFailed}}, []int64{b.ID}},
		{"open", JobFilter{Open: true}, []int64{a.ID, b.ID}},
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
			if len(ids) != len(tt.want) || (len(ids) > 0 && (ids[0] != tt.want[0] || ids[len(ids)-1] != tt.want[len(tt.want)-1])) {
				t.Fatalf("got %v want %v", ids, tt.want)
			}
		})
	}
	g, err := s.GetJob(ctx, b.ID)
	if err != nil || g.Attempts != 2 || g.FinishedAt == nil || g.Final != "done/b.json" || g.Result != `{"ok":true}` {
		t.Fatalf("get: %+v %v", g, err)
	}
	if _, err := s.GetJob(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
	ga, _ := s.GetJob(ctx, a.ID)
	if len(ga.Nodes) != 2 || ga.Host != "h" || ga.PID != 7 || ga.Status != JobClaimed {
		t.Fatalf("a: %+v", ga)
	}
	if err := s.SetJobRun(ctx, &JobRun{Job: a.ID, Node: "n2", RunID: 5, Status: StatusRunning}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobRun(ctx, &JobRun{Job: a.ID, Node: "n1", RunID: 4, Status: StatusSucceeded, FinishedAt: &now}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobRun(ctx, &JobRun{Job: a.ID, Node: "n2", RunID: 6, Status: StatusSucceeded, Previous: []int64{5}, FinishedAt: &now}); err != nil {
		t.Fatal(err)
	}
	runs, err := s.JobRuns(ctx, a.ID)
	if err != nil || len(runs) != 2 || runs[0].Node != "n1" || runs[1].RunID != 6 || len(runs[1].Previous) != 1 || runs[1].FinishedAt == nil {
		t.Fatalf("job runs: %+v %v", runs, err)
	}
}
