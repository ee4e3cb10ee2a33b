package store

import (
	"context"
	"fmt"
	"strings"
)

// migrations are applied in order; user_version records how many ran.
var migrations = []string{
	`CREATE TABLE nodes (
		uuid TEXT PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		driver TEXT NOT NULL,
		driver_info TEXT NOT NULL DEFAULT '{}',
		properties TEXT NOT NULL DEFAULT '{}',
		instance_info TEXT NOT NULL DEFAULT '{}',
		driver_internal_info TEXT NOT NULL DEFAULT '{}',
		ports TEXT NOT NULL DEFAULT '[]',
		provision_state TEXT NOT NULL,
		power_state TEXT NOT NULL DEFAULT '',
		last_error TEXT NOT NULL DEFAULT '',
		maintenance INTEGER NOT NULL DEFAULT 0,
		maintenance_reason TEXT NOT NULL DEFAULT '',
		reservation INTEGER,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE TABLE runs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		script TEXT NOT NULL,
		script_sha256 TEXT NOT NULL,
		node_uuid TEXT,
		node_name TEXT NOT NULL DEFAULT '',
		params TEXT NOT NULL DEFAULT '{}',
		status TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		started_at INTEGER NOT NULL,
		finished_at INTEGER,
		host TEXT NOT NULL,
		pid INTEGER NOT NULL
	);
	CREATE INDEX runs_node ON runs(node_uuid, id);
	CREATE INDEX runs_status ON runs(status);
	CREATE TABLE events (
		run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		seq INTEGER NOT NULL,
		time INTEGER NOT NULL,
		kind TEXT NOT NULL,
		name TEXT NOT NULL,
		data TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (run_id, seq)
	) WITHOUT ROWID;
	CREATE TABLE artifacts (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		run_id INTEGER NOT NULL,
		node_uuid TEXT NOT NULL DEFAULT '',
		kind TEXT NOT NULL,
		location TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		deleted_at INTEGER
	);
	CREATE INDEX artifacts_node ON artifacts(node_uuid);`,
	// 2: watch-folder job claims (jobs.go).
	`CREATE TABLE jobs (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		job_id TEXT NOT NULL DEFAULT '',
		name TEXT NOT NULL,
		file TEXT NOT NULL,
		queued TEXT NOT NULL DEFAULT '',
		sha256 TEXT NOT NULL,
		action TEXT NOT NULL DEFAULT '',
		nodes TEXT NOT NULL DEFAULT '[]',
		status TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		error TEXT NOT NULL DEFAULT '',
		result TEXT NOT NULL DEFAULT '',
		final TEXT NOT NULL DEFAULT '',
		archived INTEGER NOT NULL DEFAULT 0,
		host TEXT NOT NULL DEFAULT '',
		pid INTEGER NOT NULL DEFAULT 0,
		claimed_at INTEGER NOT NULL,
		finished_at INTEGER
	);
	CREATE INDEX jobs_job_id ON jobs(job_id);
	CREATE INDEX jobs_file ON jobs(file, sha256);
	CREATE INDEX jobs_open ON jobs(archived, status);
	CREATE TABLE job_runs (
		job INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
		node TEXT NOT NULL,
		run_id INTEGER NOT NULL DEFAULT 0,
		status TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		previous TEXT NOT NULL DEFAULT '[]',
		started_at INTEGER NOT NULL,
		finished_at INTEGER,
		PRIMARY KEY (job, node)
	) WITHOUT ROWID;`,
	// 3: `node abort` requests on a running run (the holding process polls it).
	`ALTER TABLE runs ADD COLUMN abort_request TEXT NOT NULL DEFAULT '';`,
	// 4: keyset pagination of `runs list` filtered by status or node name
	// (ORDER BY id DESC LIMIT n stays an index range scan at a million runs).
	`DROP INDEX runs_status;
	CREATE INDEX runs_status ON runs(status, id);
	CREATE INDEX runs_node_name ON runs(node_name, id);`,
	// 5: event pruning finds old finished runs by finish time.
	`CREATE INDEX runs_finished ON runs(finished_at);`,
	// 6: leases (leases.go): the processes sharing the database, the lease
	// of a node's reservation, the process running a run.
	`CREATE TABLE conductors (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		host TEXT NOT NULL,
		pid INTEGER NOT NULL,
		started_at INTEGER NOT NULL,
		heartbeat_at INTEGER NOT NULL,
		fenced_at INTEGER
	);
	CREATE INDEX conductors_alive ON conductors(fenced_at, heartbeat_at);
	ALTER TABLE nodes ADD COLUMN lease_owner INTEGER;
	ALTER TABLE nodes ADD COLUMN lease_expires INTEGER;
	ALTER TABLE nodes ADD COLUMN lease_generation INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX nodes_lease_owner ON nodes(lease_owner);
	ALTER TABLE runs ADD COLUMN conductor INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX runs_conductor ON runs(conductor, status);`,
	// 7: watch-folder claims owned by a process (jobs.go AdoptJobs): the
	// conductor holding a job and the claim's generation (a fencing token).
	`ALTER TABLE jobs ADD COLUMN conductor INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN claim_generation INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX jobs_conductor ON jobs(archived, conductor);`,
	// 8: the watch folder a job belongs to (Job.Folder): a watcher judges,
	// re-claims and adopts only its own folder's jobs, so the re-queued or
	// interrupted job of a dead process watching another folder is not
	// taken for lost. Rows of older versions keep '' (any folder).
	`ALTER TABLE jobs ADD COLUMN folder TEXT NOT NULL DEFAULT '';
	CREATE INDEX jobs_folder ON jobs(folder, archived);`,
}

// statements splits a migration into its statements (they hold no ';'
// inside literals).
func statements(m string) []string {
	var out []string
	for _, q := range strings.Split(m, ";") {
		if q = strings.TrimSpace(q); q != "" {
			out = append(out, q)
		}
	}
	return out
}

// migrate applies the migrations the database lacks, each in one
// transaction with its new schema version. An up-to-date SQLite database
// is only read: opening the store (every CLI command does) never takes the
// write lock, so a command in a tight loop cannot starve other writers.
func (s *DB) migrate(ctx context.Context) error {
	if s.d.name == DialectSQLite {
		var version int
		if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema version of %s: %w", s.where, err)
		}
		if version == len(migrations) {
			return nil
		}
	}
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next missing migration; done when none is missing.
func (s *DB) migrateOne(ctx context.Context) (done bool, err error) {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate %s: %w", s.where, err)
	}
	defer t.Rollback()
	version, err := s.schemaVersion(ctx, t)
	if err != nil {
		return false, err
	}
	if version > len(migrations) {
		return false, fmt.Errorf("database %s has schema version %d, newer than this lightsout (%d): upgrade lightsout", s.where, version, len(migrations))
	}
	if version == len(migrations) {
		return true, nil
	}
	stmts := statements(s.d.schema(migrations[version]))
	if s.d.name == DialectPostgres {
		stmts = append(stmts, fmt.Sprintf("UPDATE lightsout_schema SET version = %d", version+1))
	} else {
		stmts = append(stmts, fmt.Sprintf("PRAGMA user_version = %d", version+1),
			fmt.Sprintf("PRAGMA application_id = %d", applicationID))
	}
	for _, q := range stmts {
		if _, err := t.ExecContext(ctx, q); err != nil {
			return false, fmt.Errorf("migrate %s to version %d: %w", s.where, version+1, err)
		}
	}
	if err := t.Commit(); err != nil {
		return false, fmt.Errorf("migrate %s: %w", s.where, err)
	}
	return false, nil
}

// schemaVersion reads the schema version inside a migration transaction
// (on PostgreSQL it also serialises concurrent migrations and creates the
// version table of a new database).
func (s *DB) schemaVersion(ctx context.Context, t *tx) (int, error) {
	var version int
	if s.d.name != DialectPostgres {
		if err := t.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return 0, fmt.Errorf("read schema version of %s: %w", s.where, err)
		}
		return version, nil
	}
	if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(applicationID)); err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.where, err)
	}
	if _, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lightsout_schema (version BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.where, err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO lightsout_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM lightsout_schema)`); err != nil {
		return 0, fmt.Errorf("migrate %s: %w", s.where, err)
	}
	if err := t.QueryRowContext(ctx, `SELECT version FROM lightsout_schema`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read schema version of %s: %w", s.where, err)
	}
	return version, nil
}
