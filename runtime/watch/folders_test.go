package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// TestDeadProcessJobsOfAnotherFolder: two watcher processes of folders B
// and C share the store with folder A's watcher. B's process stops on
// SIGTERM (its job re-queued into B/incoming), C's is killed with SIGKILL
// in the middle of its job (left in C/processing). A watcher of A that
// starts then, with no live process behind those jobs, leaves them alone:
// their rows name their folder (schema version 8). Before, it marked both
// lost, and C's job later ran again from scratch as an unrecorded claim.
// B's and C's watchers then finish each job once, after its interrupted
// run.
func TestDeadProcessJobsOfAnotherFolder(t *testing.T) {
	eachStore(t, func(t *testing.T) {
		e := newEnv(t, 2)
		root := t.TempDir()
		dirB, dirC := filepath.Join(root, "b"), filepath.Join(root, "c")
		c := procs(t, e)
		ctx := context.Background()
		st := e.a.Store
		running := func(id string) bool {
			js, _ := st.ListJobs(ctx, store.JobFilter{JobID: id})
			if len(js) != 1 || js[0].Status != store.JobRunning {
				return false
			}
			runs, _ := st.JobRuns(ctx, js[0].ID)
			return len(runs) == 1 && runs[0].RunID != 0
		}
		c.startIn(dirB, 1)
		dropIn(t, dirB, "b.json", `{"id":"b","action":"run","script":"slow","nodes":["n00"],"params":{"sleep":"1"}}`)
		waitFor(t, time.Minute, "B's job to run", func() bool { return running("b") })
		c.stop(0) // SIGTERM, no grace: the run is cancelled, the job re-queued
		c.startIn(dirC, 1)
		dropIn(t, dirC, "c.json", `{"id":"c","action":"run","script":"slow","nodes":["n01"],"params":{"sleep":"1"}}`)
		waitFor(t, time.Minute, "C's job to run", func() bool { return running("c") })
		c.kill9(1)
		if !exists(filepath.Join(dirB, Incoming, "b.json")) || !exists(filepath.Join(dirC, Processing, "c.json")) {
			t.Fatalf("B's job is not back in incoming/ or C's not left in processing/")
		}
		if sh := e.a.Shared(); sh != nil {
			// PostgreSQL: C's process is taken over once its heartbeat is
			// older than the timeout; only then are its jobs adoptable.
			waitFor(t, time.Minute, "C's process to be taken over", func() bool {
				return c.fenced(c.procs[1].Process.Pid)
			})
		}
		before := map[string]*store.Job{}
		for _, id := range []string{"b", "c"} {
			js, _ := st.ListJobs(ctx, store.JobFilter{JobID: id})
			before[id] = js[0]
		}
		// a process started now: with SQLite it marks the dead processes'
		// runs interrupted and unlocks their nodes (runtime.New)
		a2 := e.openApp()
		dropIn(t, e.dir, "a.json", `{"id":"a","action":"run","script":"trivial","nodes":["n00"]}`)
		runOnce(t, a2, e.dir)
		if sub, _ := e.finished("a.json", time.Minute); sub != Done {
			t.Fatalf("A's own job: %s", sub)
		}
		for _, id := range []string{"b", "c"} {
			js, err := st.ListJobs(ctx, store.JobFilter{JobID: id})
			if err != nil || len(js) != 1 {
				t.Fatalf("job %s: %d rows %v", id, len(js), err)
			}
			j, was := js[0], before[id]
			if j.Archived || j.Status != was.Status || j.Generation != was.Generation || j.Conductor != was.Conductor {
				t.Errorf("A's watcher judged job %s of another folder: %s archived %v generation %d conductor %d (was %s, %d, %d): %s",
					id, j.Status, j.Archived, j.Generation, j.Conductor, was.Status, was.Generation, was.Conductor, j.Error)
			}
		}
		if !exists(filepath.Join(dirB, Incoming, "b.json")) || !exists(filepath.Join(dirC, Processing, "c.json")) {
			t.Fatal("A's watcher moved a job file of another folder")
		}
		for _, d := range []string{dirB, dirC} {
			runOnce(t, a2, d)
		}
		// a re-queue on SIGTERM uses up no attempt, a crash does
		for _, tt := range []struct {
			id, dir  string
			attempts int
		}{{"b", dirB, 1}, {"c", dirC, 2}} {
			ex := &env{t: t, a: e.a, dir: tt.dir}
			sub, res := ex.finished(tt.id+".json", time.Minute)
			if sub != Done || res.Attempts != tt.attempts || len(res.Nodes) != 1 || len(res.Nodes[0].PreviousRunIDs) == 0 {
				t.Errorf("job %s: %s, %d attempts, nodes %+v (want done, %d attempts, after its interrupted run)", tt.id, sub, res.Attempts, res.Nodes, tt.attempts)
			}
		}
		all, err := st.ListJobs(ctx, store.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		folders := map[string]bool{}
		for _, j := range all {
			if j.Status != store.JobDone || !j.Archived || j.Folder == "" {
				t.Errorf("job row %d (%s): %s archived %v folder %q: %s", j.ID, j.JobID, j.Status, j.Archived, j.Folder, j.Error)
			}
			folders[j.Folder] = true
		}
		if len(all) != 3 || len(folders) != 3 {
			t.Errorf("%d job rows in %d folders, want 3 in 3", len(all), len(folders))
		}
		checkClean(t, st)
	})
}

// TestFolderIDStable: a folder keeps its id across watchers, whatever
// path it is opened by; a damaged id file is refused with the fix.
func TestFolderIDStable(t *testing.T) {
	dir := t.TempDir()
	a, err := openSpool(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "mnt")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	b, err := openSpool(link, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.id == "" || a.id != b.id || a.dir == b.dir {
		t.Fatalf("ids %q %q for %s and %s", a.id, b.id, a.dir, b.dir)
	}
	if err := os.WriteFile(filepath.Join(dir, idName), []byte("  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openSpool(dir, true); err == nil || !strings.Contains(err.Error(), idName) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("damaged id file: %v", err)
	}
}

// runOnce runs a watcher of dir in this process until the folder is
// drained (Options.Once).
func runOnce(t *testing.T, a *app.App, dir string) {
	t.Helper()
	w, err := New(a, Options{Dir: dir, Parallel: 2, Settle: -1, Poll: 20 * time.Millisecond, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("watcher of %s: %v", dir, err)
	}
}
