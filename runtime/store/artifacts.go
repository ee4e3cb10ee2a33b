package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// AddArtifact implements Store.
func (s *DB) AddArtifact(ctx context.Context, a *Artifact) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now().UTC()
	}
	loc, err := s.sealLocation(a)
	if err != nil {
		return fmt.Errorf("add artifact: %w", err)
	}
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add artifact: %w", err)
	}
	defer t.Rollback()
	err = t.QueryRowContext(ctx, `INSERT INTO artifacts (run_id, node_uuid, kind, location, created_at) VALUES (?,?,?,?,?) RETURNING id`,
		a.RunID, a.NodeUUID, a.Kind, loc, ts(a.CreatedAt)).Scan(&a.ID)
	if err == nil {
		err = t.Commit()
	}
	if err != nil {
		return fmt.Errorf("add artifact: %w", err)
	}
	return nil
}

func (s *DB) queryArtifacts(ctx context.Context, q string, args ...any) ([]Artifact, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, run_id, node_uuid, kind, location, created_at, deleted_at FROM artifacts WHERE `+q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		var a Artifact
		var created int64
		var deleted sql.NullInt64
		if err := rows.Scan(&a.ID, &a.RunID, &a.NodeUUID, &a.Kind, &a.Location, &created, &deleted); err != nil {
			return nil, fmt.Errorf("list artifacts: %w", err)
		}
		a.CreatedAt = fromTS(created)
		if err := s.openLocation(&a); err != nil {
			return nil, fmt.Errorf("list artifacts: %w", err)
		}
		if deleted.Valid {
			t := fromTS(deleted.Int64)
			a.DeletedAt = &t
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Artifacts implements Store.
func (s *DB) Artifacts(ctx context.Context, nodeUUID string, includeDeleted bool) ([]Artifact, error) {
	if includeDeleted {
		return s.queryArtifacts(ctx, `node_uuid = ?`, nodeUUID)
	}
	return s.queryArtifacts(ctx, `node_uuid = ? AND deleted_at IS NULL`, nodeUUID)
}

// RunArtifacts implements Store.
func (s *DB) RunArtifacts(ctx context.Context, runID int64) ([]Artifact, error) {
	return s.queryArtifacts(ctx, `run_id = ?`, runID)
}

// MarkArtifactDeleted implements Store.
func (s *DB) MarkArtifactDeleted(ctx context.Context, id int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE artifacts SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, ts(time.Now().UTC()), id)
	if err != nil {
		return fmt.Errorf("mark artifact %d deleted: %w", id, err)
	}
	return nil
}
