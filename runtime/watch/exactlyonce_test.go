package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/store"
)

// eachStore runs fn against SQLite, then against PostgreSQL (skipped
// without PostgreSQL unless LIGHTSOUT_INTEGRATION=1): the store selection
// of testenv.StoreConf, done by the test itself so both always run.
func eachStore(t *testing.T, fn func(t *testing.T)) {
	for _, st := range []string{"sqlite", "postgres"} {
		t.Run(st, func(t *testing.T) {
			t.Setenv("LIGHTSOUT_TEST_STORE", st)
			fn(t)
		})
	}
}

// openApp opens a second App on e's installation: another process using
// the same configuration, state dir and store.
func (e *env) openApp() *app.App {
	e.t.Helper()
	a, err := app.Open(context.Background(), app.Options{ConfigPath: filepath.Join(e.state, "lightsout.conf"), StateDir: e.state,
		ScriptDirs: []string{e.site}, Modules: []module.Module{}, Stdout: discard{}, Stderr: discard{}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Close() })
	return a
}

// dropIn writes a job into dir/incoming the way producers should.
func dropIn(t testing.TB, dir, name, body string) {
	t.Helper()
	in := filepath.Join(dir, Incoming)
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, name+".part"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(in, name+".part"), filepath.Join(in, name)); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateJobIDAcrossProcesses: two watcher processes of two folders
// sharing one store are handed, at the same
// time, job files with the same job id: the same "id" field under another
// file name, or the same file name and content without an id. Each id
// runs exactly once; the other file is refused as a duplicate naming it.
func TestDuplicateJobIDAcrossProcesses(t *testing.T) {
	eachStore(t, func(t *testing.T) {
		const pairs = 12
		e := newEnv(t, pairs)
		dirs := []string{e.dir, filepath.Join(t.TempDir(), "spool2")}
		name := func(k, i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("p%d-id%02d.json", k, i) // same id field, different file names
			}
			return fmt.Sprintf("same%02d.json", i) // same name and content: the same derived id
		}
		body := func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf(`{"id":"same-%02d","action":"run","script":"trivial","nodes":["n%02d"]}`, i, i)
			}
			return fmt.Sprintf(`{"action":"run","script":"trivial","nodes":["n%02d"]}`, i)
		}
		c := procs(t, e)
		for _, dir := range dirs {
			c.startIn(dir, 8, helperPoll+"=0") // inotify: both wake up at the same time
		}
		for i := range pairs {
			for k, dir := range dirs {
				dropIn(t, dir, name(k, i), body(i))
			}
		}
		waitFor(t, 2*time.Minute, "every job to finish", func() bool {
			n := 0
			for _, dir := range dirs {
				for _, sub := range []string{Done, Failed} {
					entries, _ := os.ReadDir(filepath.Join(dir, sub))
					for _, x := range entries {
						if isResult(x.Name()) {
							n++
						}
					}
				}
			}
			return n == 2*pairs
		})
		c.stopAll()
		ctx := context.Background()
		byID := map[string]map[string]int{}
		for _, dir := range dirs {
			for _, sub := range []string{Done, Failed} {
				entries, _ := os.ReadDir(filepath.Join(dir, sub))
				for _, x := range entries {
					if filepath.Ext(x.Name()) != ".json" || !isResult(x.Name()) {
						continue
					}
					r := readResult(t, filepath.Join(dir, sub, x.Name()))
					if byID[r.Job] == nil {
						byID[r.Job] = map[string]int{}
					}
					byID[r.Job][r.Status]++
					if r.Status == store.JobDuplicate && r.DuplicateOf != r.Job {
						t.Errorf("%s: duplicate_of %q, want %q", x.Name(), r.DuplicateOf, r.Job)
					}
				}
			}
		}
		if len(byID) != pairs {
			t.Fatalf("%d job ids finished, want %d: %v", len(byID), pairs, byID)
		}
		for id, st := range byID {
			if st[store.JobDone] != 1 || st[store.JobDuplicate] != 1 || len(st) != 2 {
				t.Errorf("job id %s: %v, want one done and one duplicate", id, st)
			}
		}
		runs, err := e.a.Store.ListRuns(ctx, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		perNode := map[string]int{}
		for _, r := range runs {
			perNode[r.NodeName]++
		}
		for i := range pairs {
			if n := perNode[fmt.Sprintf("n%02d", i)]; n != 1 {
				t.Errorf("node n%02d ran %d times, want once", i, n)
			}
		}
		checkClean(t, e.a.Store)
	})
}

func isResult(name string) bool { return strings.HasSuffix(name, ".result.json") }

func readResult(t testing.TB, p string) Result {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v\n%s", p, err, b)
	}
	return r
}

// TestSameNameFinishedAtOnce: two processes sharing a folder finish, at
// the same moment, jobs that were all dropped as x.json: no job file and
// no result file replaces another; each job ends under its own name
// (x.json, x~2.json, ...) next to its own result.
func TestSameNameFinishedAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T) {
		const jobs = 24
		e := newEnv(t, 0)
		a2 := e.openApp()
		w1, err := New(e.a, Options{Dir: e.dir, Settle: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer w1.Close()
		// The second process shares the folder: with PostgreSQL it opens
		// it as New does; with SQLite (one watcher per folder, a lock) it
		// stands for a process that ignored the lock.
		w2, err := New(a2, Options{Dir: filepath.Join(t.TempDir(), "other"), Settle: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer w2.Close()
		w2.sp = &spool{dir: w1.sp.dir}
		ctx := context.Background()
		ws := []*Watcher{w1, w2}
		rows := make([]*store.Job, jobs)
		for i := range rows {
			proc := fmt.Sprintf("x~%d.json", i+1)
			if i == 0 {
				proc = "x.json"
			}
			body := fmt.Sprintf(`{"id":"x%d","action":"run","script":"trivial"}`, i)
			if err := os.WriteFile(w1.sp.path(Processing, proc), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, _, _, err := fingerprint(w1.sp.path(Processing, proc), DefaultMaxSize)
			if err != nil {
				t.Fatal(err)
			}
			if rows[i], err = ws[i%2].recordClaim(ctx, "x.json", proc, sum); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, row := range rows {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := ws[i%2]
				res := w.newResult(row)
				res.Job = fmt.Sprintf("x%d", i)
				<-start
				w.finish(ctx, row, store.JobDone, res)
			}()
		}
		close(start)
		wg.Wait()
		done := e.jobs(Done)
		if len(done) != jobs {
			t.Fatalf("%d job files in done/, want %d: %v", len(done), jobs, done)
		}
		seen := map[string]string{}
		for _, name := range done {
			r := e.result(Done, name)
			if prev, ok := seen[r.Job]; ok {
				t.Errorf("job %s has two results: %s and %s", r.Job, prev, name)
			}
			seen[r.Job] = name
			body, err := os.ReadFile(filepath.Join(e.dir, Done, name))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`"id":"%s"`, r.Job); !strings.Contains(string(body), want) {
				t.Errorf("done/%s holds %s, its result is job %s: a file replaced another", name, body, r.Job)
			}
		}
		if len(seen) != jobs {
			t.Fatalf("%d distinct results, want %d", len(seen), jobs)
		}
		all, err := e.a.Store.ListJobs(ctx, store.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		finals := map[string]bool{}
		for _, j := range all {
			if !j.Archived || finals[j.Final] {
				t.Errorf("job %d: final %s, archived %v (finals %v)", j.ID, j.Final, j.Archived, finals)
			}
			finals[j.Final] = true
		}
		if left, _ := os.ReadDir(filepath.Join(e.dir, Done)); len(left) != 2*jobs {
			t.Errorf("done/ holds %d files, want %d job and result files (no temporary file left)", len(left), 2*jobs)
		}
	})
}

// TestAdoptedJobFencesItsWatcher: a job is adopted (its claim generation
// grows, as store.AdoptJobs does for a process whose heartbeat stopped)
// while its run is in flight. When the run ends, the old holder may not
// record it: SetJobRun is refused with ErrFenced, the watcher stops with
// ErrFenced, and neither the job's runs, its row nor its file are touched
// by it.
func TestAdoptedJobFencesItsWatcher(t *testing.T) {
	eachStore(t, func(t *testing.T) {
		e := newEnv(t, 1)
		e.drop("slow.json", `{"id":"s","action":"run","script":"slow","nodes":["n00"],"params":{"sleep":"1"}}`)
		w, err := New(e.a, Options{Dir: e.dir, Parallel: 1, Settle: -1, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		st := e.a.Store
		var job *store.Job
		waitFor(t, time.Minute, "the job's run to start", func() bool {
			jobs, _ := st.ListJobs(ctx, store.JobFilter{JobID: "s"})
			if len(jobs) != 1 {
				return false
			}
			runs, _ := st.JobRuns(ctx, jobs[0].ID)
			job = jobs[0]
			return len(runs) == 1 && runs[0].RunID != 0 && runs[0].Status == store.StatusRunning
		})
		adopted, err := st.UpdateJob(ctx, job.ID, func(j *store.Job) error { j.Generation++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrFenced) {
				t.Fatalf("watcher stopped with %v, want ErrFenced", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the fenced watcher did not stop")
		}
		runs, err := st.JobRuns(ctx, job.ID)
		if err != nil || len(runs) != 1 || runs[0].Status != store.StatusRunning || runs[0].FinishedAt != nil {
			t.Fatalf("the fenced watcher recorded the end of its run: %+v %v", runs, err)
		}
		j, err := st.GetJob(ctx, job.ID)
		if err != nil || j.Generation != adopted.Generation || j.Status != store.JobRunning || j.Archived || j.Final != "" {
			t.Fatalf("the fenced watcher wrote the job: %+v %v", j, err)
		}
		if l := e.jobs(Processing); len(l) != 1 {
			t.Fatalf("processing/ holds %v: the fenced watcher moved the job", l)
		}
		if l := append(e.jobs(Done), e.jobs(Failed)...); len(l) != 0 {
			t.Fatalf("the fenced watcher finished the job: %v", l)
		}
	})
}
