package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// bulkRuns inserts n finished runs in one statement (90% succeeded, 5%
// failed, 5% interrupted; 10,000 nodes), as a fleet's run history.
func bulkRuns(ctx context.Context, s *DB, n int) error {
	cols := `script, script_sha256, node_uuid, node_name, params, status, error, started_at, finished_at, host, pid`
	sel := `'deploy', 'sha', 'uuid-' || (x % 10000), 'node-' || (x % 10000), '{}',
		CASE WHEN x % 20 = 0 THEN 'failed' WHEN x % 20 = 1 THEN 'interrupted' ELSE 'succeeded' END,
		'', x * 1000000000, x * 1000000000 + 5, 'h', 1`
	q := `INSERT INTO runs (` + cols + `) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
		SELECT ` + sel + ` FROM c`
	if s.d.name == DialectPostgres {
		q = `INSERT INTO runs (` + cols + `) SELECT ` + sel + ` FROM generate_series(1, ?::bigint) AS x`
	}
	if _, err := s.w.ExecContext(ctx, q, n); err != nil {
		return fmt.Errorf("bulk insert: %w", err)
	}
	_, err := s.w.ExecContext(ctx, `ANALYZE`)
	return err
}

// BenchmarkRunsList1M: `runs list --limit 50` pages over 1,000,000 runs on
// both stores (target < 50 ms a page): the newest page, a page deep in the
// history (keyset --before), the last failed runs, and one node's runs.
func BenchmarkRunsList1M(b *testing.B) {
	const rows = 1_000_000
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{1}, 32))
	stores := []struct {
		name string
		open func(b *testing.B) (*DB, error)
	}{
		{"sqlite", func(b *testing.B) (*DB, error) {
			return Open(context.Background(), filepath.Join(b.TempDir(), "runs.db"), c)
		}},
		{"postgres", func(b *testing.B) (*DB, error) {
			if !testenv.PostgresAvailable() && !testenv.Integration() {
				b.Skip("PostgreSQL not installed (testdata/tools/deps.sh)")
			}
			return OpenURL(context.Background(), testenv.Postgres(b), c)
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := st.open(b)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			began := time.Now()
			if err := bulkRuns(ctx, s, rows); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d runs inserted in %v", st.name, rows, time.Since(began).Round(time.Millisecond))
			pages := []struct {
				name string
				f    RunFilter
			}{
				{"newest", RunFilter{Limit: 50}},
				{"before", RunFilter{Limit: 50, Before: rows / 2}},
				{"after", RunFilter{Limit: 50, After: rows / 3}},
				{"failed", RunFilter{Limit: 50, Status: StatusFailed}},
				{"failed-before", RunFilter{Limit: 50, Status: StatusFailed, Before: rows / 2}},
				{"node", RunFilter{Limit: 50, Node: "node-42"}},
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					for b.Loop() {
						runs, err := s.ListRuns(ctx, p.f)
						if err != nil || len(runs) != 50 {
							b.Fatalf("%d runs, %v", len(runs), err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
				})
			}
		})
	}
}

// BenchmarkJobClaim: the store's part of one watch-folder job on each
// store (claim, running, its run created with the job link, finished,
// the job done and archived): the claim overhead per job.
func BenchmarkJobClaim(b *testing.B) {
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{1}, 32))
	for _, st := range []struct {
		name string
		open func(b *testing.B) (*DB, error)
	}{
		{"sqlite", func(b *testing.B) (*DB, error) {
			return Open(context.Background(), filepath.Join(b.TempDir(), "jobs.db"), c)
		}},
		{"postgres", func(b *testing.B) (*DB, error) {
			if !testenv.PostgresAvailable() && !testenv.Integration() {
				b.Skip("PostgreSQL not installed (testdata/tools/deps.sh)")
			}
			return OpenURL(context.Background(), testenv.Postgres(b), c)
		}},
	} {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := st.open(b)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			i := 0
			for b.Loop() {
				i++
				j := &Job{Name: fmt.Sprintf("j%d.json", i), File: fmt.Sprintf("j%d.json", i), SHA256: "h", Nodes: []string{"n1"}, Host: "h", PID: 1}
				if err := s.CreateJob(ctx, j); err != nil {
					b.Fatal(err)
				}
				if _, err := s.UpdateJob(ctx, j.ID, func(j *Job) error { j.Status = JobRunning; return nil }); err != nil {
					b.Fatal(err)
				}
				r := &Run{Script: "x", Host: "h", PID: 1, JobLink: &JobRun{Job: j.ID, Node: "n1", Status: StatusRunning}}
				if err := s.CreateRun(ctx, r); err != nil {
					b.Fatal(err)
				}
				if err := s.FinishRun(ctx, r.ID, StatusSucceeded, ""); err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				if err := s.SetJobRun(ctx, &JobRun{Job: j.ID, Node: "n1", RunID: r.ID, Status: StatusSucceeded, FinishedAt: &now}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.UpdateJob(ctx, j.ID, func(j *Job) error {
					j.Status, j.Archived, j.FinishedAt = JobDone, true, &now
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/job")
		})
	}
}
