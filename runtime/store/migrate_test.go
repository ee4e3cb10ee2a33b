package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/store/storetest"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// fill writes one of everything into s.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		n := storetest.Node(name)
		n.Ports = []store.Port{{Address: "52:54:00:00:00:0" + name[:1]}}
		n.InstanceInfo = map[string]any{"image_url": "http://h/" + name + ".img"}
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	job := &store.Job{Name: "j.json", File: "j.json", SHA256: "h", Nodes: []string{"a"}}
	if err := s.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := &store.Run{Script: "deploy", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: 1, Params: map[string]string{"i": "x"},
			JobLink: &store.JobRun{Job: job.ID, Node: "a", Status: store.StatusRunning}}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, []store.Event{{RunID: r.ID, Seq: 1, Time: time.Now(), Kind: store.EventLog, Name: "info", Data: map[string]any{"msg": "é ✓"}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddArtifact(ctx, &store.Artifact{RunID: r.ID, NodeUUID: "uuid-a", Kind: "iso", Location: "http://h/o?temp_url_sig=S1g"}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishRun(ctx, r.ID, store.StatusFailed, "boom"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateSQLiteToPostgresAndBack: every table is copied, verified by
// counts and checksums; the copy reads back (secrets decrypt with the same
// key, ids continue after the copied ones); a non-empty destination is
// refused without --force; the copy back to SQLite has the same checksums.
func TestMigrateSQLiteToPostgresAndBack(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := "sqlite://" + filepath.Join(dir, "src.db")
	s, err := store.OpenURL(ctx, src, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s)
	s.Close()

	sums, err := store.Migrate(ctx, src, pg, false)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, x := range sums {
		rows[x.Table] = x.Rows
	}
	want := map[string]int64{"nodes": 2, "runs": 3, "events": 3, "artifacts": 3, "jobs": 1, "job_runs": 1, "conductors": 0}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("copied %v, want %v", rows, want)
	}
	d, err := store.OpenURL(ctx, pg, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.GetNode(ctx, "b")
	if err != nil || n.DriverInfo["ilo_password"] != "Pa55-word" || n.InstanceInfo["image_url"] != "http://h/b.img" || len(n.Ports) != 1 {
		t.Fatalf("node b in the copy: %+v %v", n, err)
	}
	runs, _ := d.ListRuns(ctx, store.RunFilter{})
	evs, _ := d.Events(ctx, runs[0].ID)
	arts, _ := d.RunArtifacts(ctx, runs[0].ID)
	if len(runs) != 3 || runs[0].Error != "boom" || len(evs) != 1 || evs[0].Data["msg"] != "é ✓" || len(arts) != 1 || arts[0].Location != "http://h/o?temp_url_sig=S1g" {
		t.Fatalf("copy: runs %+v events %+v artifacts %+v", runs, evs, arts)
	}
	next := &store.Run{Script: "x", Host: "h", PID: 1}
	if err := d.CreateRun(ctx, next); err != nil || next.ID != runs[2].ID+1 {
		t.Fatalf("new run after the copy: id %d (last copied %d) %v", next.ID, runs[2].ID, err)
	}
	d.Close()

	if _, err := store.Migrate(ctx, src, pg, false); err == nil || !strings.Contains(err.Error(), "not empty (2 nodes, 4 runs") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("non-empty destination: %v", err)
	}
	if _, err := store.Migrate(ctx, src, pg, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	back := "sqlite://" + filepath.Join(dir, "back.db")
	sums2, err := store.Migrate(ctx, pg, back, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sums, sums2) {
		t.Fatalf("checksums differ after SQLite -> PostgreSQL -> SQLite:\n%v\n%v", sums, sums2)
	}
	if _, err := store.Migrate(ctx, back, back, true); err == nil {
		t.Fatal("copy onto itself accepted")
	}
}

// TestChecksumsSeeChanges: one changed value changes its table's checksum
// and nothing else; row order does not matter.
func TestChecksumsSeeChanges(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "x.db"), storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fill(t, s)
	tables := []string{"nodes", "runs", "artifacts"}
	before, err := s.Checksums(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkArtifactDeleted(ctx, 2); err != nil {
		t.Fatal(err)
	}
	after, err := s.Checksums(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if before[0] != after[0] || before[1] != after[1] || before[2].Sum == after[2].Sum || before[2].Rows != after[2].Rows {
		t.Fatalf("before %v\nafter %v", before, after)
	}
}

// TestPostgresRestart: after the server restarts (every connection
// dropped), the store's next calls work again without reopening it.
func TestPostgresRestart(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	s, err := store.OpenURL(ctx, url, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateNode(ctx, storetest.Node("a")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		testenv.RestartPostgres(t)
		if _, err := s.GetNode(ctx, "a"); err != nil {
			t.Fatalf("read after restart %d: %v", i+1, err)
		}
		r := &store.Run{Script: "x", Host: "h", PID: 1}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatalf("write after restart %d: %v", i+1, err)
		}
		if _, err := s.UpdateNode(ctx, "a", func(n *store.Node) error { n.LastError = "x"; return nil }); err != nil {
			t.Fatalf("transaction after restart %d: %v", i+1, err)
		}
	}
}

// TestMigrateFromMissingFile: a --from SQLite file that does not exist is
// an error, not an empty copy (and no file is created).
func TestMigrateFromMissingFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	_, err := store.Migrate(context.Background(), "sqlite://"+missing, "sqlite://"+filepath.Join(dir, "to.db"), false)
	if err == nil || !strings.Contains(err.Error(), "--from") {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("the missing source was created")
	}
}

// TestMigration8AddsJobFolder: a SQLite database of schema version 7
// with a job row is upgraded: the row reads back with no folder, which
// the folder filters select as "recorded without a folder"; new rows keep
// their folder.
func TestMigration8AddsJobFolder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lightsout.db")
	s, err := store.Open(ctx, path, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX jobs_folder`, `ALTER TABLE jobs DROP COLUMN folder`, `PRAGMA user_version = 7`,
		`INSERT INTO jobs (name, file, sha256, status, claimed_at) VALUES ('old.json', 'old.json', 'h', 'requeued', 1)`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	s, err = store.Open(ctx, path, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateJob(ctx, &store.Job{Name: "new.json", File: "new.json", SHA256: "h", Folder: "f1"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		folders []string
		want    []string
	}{
		{nil, []string{"old.json", "new.json"}},
		{[]string{"f1"}, []string{"new.json"}},
		{[]string{"f2", ""}, []string{"old.json"}},
	} {
		js, err := s.ListJobs(ctx, store.JobFilter{Folders: tt.folders})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range js {
			got = append(got, j.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("folders %q: %v, want %v", tt.folders, got, tt.want)
		}
	}
}
