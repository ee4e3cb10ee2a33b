package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/states"
)

type scanner interface{ Scan(dest ...any) error }

func (s *DB) scanNode(row scanner) (*Node, error) {
	var n Node
	var di, props, ii, dii, ports string
	var maint int
	var resv sql.NullInt64
	var created, updated int64
	var owner, expires sql.NullInt64
	var gen int64
	if err := row.Scan(&n.UUID, &n.Name, &n.Driver, &di, &props, &ii, &dii, &ports,
		&n.ProvisionState, &n.PowerState, &n.LastError, &maint, &n.MaintenanceReason, &resv,
		&created, &updated, &owner, &expires, &gen); err != nil {
		return nil, err
	}
	if owner.Valid {
		n.Lease = &Lease{Conductor: owner.Int64, Expires: fromTS(expires.Int64), Generation: gen}
	}
	n.Maintenance = maint != 0
	n.Reservation = resv.Int64
	n.CreatedAt, n.UpdatedAt = fromTS(created), fromTS(updated)
	for _, f := range []struct {
		src string
		dst *map[string]any
	}{{di, &n.DriverInfo}, {props, &n.Properties}, {ii, &n.InstanceInfo}, {dii, &n.DriverInternalInfo}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("node %s: decode stored JSON: %w", n.Name, err)
		}
		if *f.dst == nil {
			*f.dst = map[string]any{}
		}
	}
	if err := json.Unmarshal([]byte(ports), &n.Ports); err != nil {
		return nil, fmt.Errorf("node %s: decode ports: %w", n.Name, err)
	}
	if err := s.decryptInfo(&n); err != nil {
		return nil, err
	}
	return &n, nil
}

func (s *DB) decryptInfo(n *Node) error {
	for _, f := range []struct {
		field string
		m     map[string]any
	}{{"driver_info", n.DriverInfo}, {"properties", n.Properties}, {"instance_info", n.InstanceInfo}, {"driver_internal_info", n.DriverInternalInfo}} {
		if err := s.openMap(n.Name, n.UUID, f.field, f.m); err != nil {
			return err
		}
	}
	return nil
}

// encodeNode returns the JSON columns of n with secret and sensitive values
// encrypted (seal.go).
func (s *DB) encodeNode(n *Node) (di, props, ii, dii, ports string, err error) {
	var sealed [4]map[string]any
	for i, f := range []struct {
		field string
		m     map[string]any
	}{{"driver_info", n.DriverInfo}, {"properties", n.Properties}, {"instance_info", n.InstanceInfo}, {"driver_internal_info", n.DriverInternalInfo}} {
		if sealed[i], err = s.sealMap(n.UUID, f.field, f.m); err != nil {
			return
		}
	}
	j := func(v any) string {
		if err != nil {
			return ""
		}
		var b []byte
		b, err = json.Marshal(v)
		return string(b)
	}
	di, props, ii, dii = j(sealed[0]), j(sealed[1]), j(sealed[2]), j(sealed[3])
	if n.Ports == nil {
		ports = "[]"
	} else {
		ports = j(n.Ports)
	}
	return
}

// CreateNode implements Store.
func (s *DB) CreateNode(ctx context.Context, n *Node) error {
	now := time.Now().UTC()
	n.CreatedAt, n.UpdatedAt = now, now
	if n.ProvisionState == "" {
		n.ProvisionState = states.Enroll
	}
	n.LastError, n.MaintenanceReason = secrets.MaskURLs(n.LastError), secrets.MaskURLs(n.MaintenanceReason)
	di, props, ii, dii, ports, err := s.encodeNode(n)
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	defer tx.Rollback()
	if err := s.lockPorts(ctx, tx); err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	if err := checkPorts(ctx, tx, n, nil); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO nodes (`+nodeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,NULL,NULL,0)`,
		n.UUID, n.Name, n.Driver, di, props, ii, dii, ports, n.ProvisionState, n.PowerState, n.LastError,
		boolInt(n.Maintenance), n.MaintenanceReason, ts(now), ts(now))
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return s.createError(n, err)
	}
	return nil
}

// CreateNodes implements Store: every node in one transaction (all of
// them or none), the stored ports read once for the whole batch, so an
// import of N nodes costs one commit and O(N) work rather than a commit
// and a scan of every stored port per node.
func (s *DB) CreateNodes(ctx context.Context, nodes []*Node) error {
	if len(nodes) == 0 {
		return nil
	}
	type row struct{ di, props, ii, dii, ports string }
	rows := make([]row, len(nodes))
	now := time.Now().UTC()
	for i, n := range nodes {
		n.CreatedAt, n.UpdatedAt = now, now
		if n.ProvisionState == "" {
			n.ProvisionState = states.Enroll
		}
		n.LastError, n.MaintenanceReason = secrets.MaskURLs(n.LastError), secrets.MaskURLs(n.MaintenanceReason)
		var err error
		r := &rows[i]
		if r.di, r.props, r.ii, r.dii, r.ports, err = s.encodeNode(n); err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %d nodes: %w", len(nodes), err)
	}
	defer tx.Rollback()
	if err := s.lockPorts(ctx, tx); err != nil {
		return fmt.Errorf("create %d nodes: %w", len(nodes), err)
	}
	owners, err := portOwners(ctx, tx, "")
	if err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO nodes (`+nodeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,?,NULL,NULL,0)`)
	if err != nil {
		return fmt.Errorf("create %d nodes: %w", len(nodes), err)
	}
	defer stmt.Close()
	for i, n := range nodes {
		if err := newPortConflict(n, owners); err != nil {
			return err
		}
		for _, p := range n.Ports {
			owners[PortKey(p.Address)] = n.Name
		}
		r := rows[i]
		if _, err := stmt.ExecContext(ctx, n.UUID, n.Name, n.Driver, r.di, r.props, r.ii, r.dii, r.ports, n.ProvisionState, n.PowerState, n.LastError,
			boolInt(n.Maintenance), n.MaintenanceReason, ts(now), ts(now)); err != nil {
			return s.createError(n, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create %d nodes: %w", len(nodes), err)
	}
	return nil
}

// createError maps a failed node insert to a *DuplicateError when a
// unique column refused it.
func (s *DB) createError(n *Node, err error) error {
	switch s.d.uniqueViolation(err) {
	case "name":
		return &DuplicateError{Field: "name", Value: n.Name}
	case "uuid":
		return &DuplicateError{Field: "uuid", Value: n.UUID}
	}
	return fmt.Errorf("create node %s: %w", n.Name, err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GetNode implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) GetNode(ctx context.Context, ref string) (*Node, error) {
	var out *Node
	err := s.retry(ctx, true, func() (err error) {
		out, err = s.getNodeOnce(ctx, ref)
		return err
	})
	return out, err
}

// getNodeOnce is GetNode without the retry.
func (s *DB) getNodeOnce(ctx context.Context, ref string) (*Node, error) {
	return s.getNode(ctx, s.r, ref, "")
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// getNode reads a node by name or uuid; lock is appended to the query
// (s.d.forUpdate() in a read-then-write transaction).
func (s *DB) getNode(ctx context.Context, q querier, ref, lock string) (*Node, error) {
	n, err := s.scanNode(q.QueryRowContext(ctx, `SELECT `+nodeCols+` FROM nodes WHERE name = ? OR uuid = ? LIMIT 1`+lock, ref, ref))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("node %q: %w (see `lightsout node list`)", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", ref, err)
	}
	return n, nil
}

// ListNodes implements Store.
func (s *DB) ListNodes(ctx context.Context) ([]*Node, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := s.scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// UpdateNode implements Store: a change from outside any run, refused
// with a *LockedError while a run holds the node.
func (s *DB) UpdateNode(ctx context.Context, ref string, fn func(n *Node) error) (*Node, error) {
	return s.UpdateNodeAs(ctx, Operator, ref, fn)
}

// UpdateNodeAs implements Store.
// It is retried while the connection to PostgreSQL is lost before anything was committed (retry).
func (s *DB) UpdateNodeAs(ctx context.Context, holder int64, ref string, fn func(n *Node) error) (*Node, error) {
	var out *Node
	err := s.retry(ctx, false, func() (err error) {
		out, err = s.updateNodeAsOnce(ctx, holder, ref, fn)
		return err
	})
	return out, err
}

// updateNodeAsOnce is UpdateNodeAs without the retry.
func (s *DB) updateNodeAsOnce(ctx context.Context, holder int64, ref string, fn func(n *Node) error) (*Node, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update node %s: %w", ref, err)
	}
	defer tx.Rollback()
	n, err := s.getNode(ctx, tx, ref, s.d.forUpdate())
	if err != nil {
		return nil, err
	}
	if err := s.checkHolder(ctx, tx, n, holder); err != nil {
		return nil, err
	}
	before := n.ProvisionState
	uuid, name := n.UUID, n.Name
	portsBefore := append([]Port(nil), n.Ports...)
	if err := fn(n); err != nil {
		return nil, err
	}
	if err := s.lockPorts(ctx, tx); err != nil {
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	if err := checkPorts(ctx, tx, n, portsBefore); err != nil {
		return nil, err
	}
	if n.UUID != uuid {
		return nil, fmt.Errorf("update node %s: the uuid cannot be changed", name)
	}
	if n.ProvisionState != before && !states.Known(n.ProvisionState) {
		return nil, fmt.Errorf("update node %s: unknown provision state %q", name, n.ProvisionState)
	}
	n.UpdatedAt = time.Now().UTC()
	n.LastError, n.MaintenanceReason = secrets.MaskURLs(n.LastError), secrets.MaskURLs(n.MaintenanceReason)
	di, props, ii, dii, ports, err := s.encodeNode(n)
	if err != nil {
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE nodes SET name=?, driver=?, driver_info=?, properties=?,
		instance_info=?, driver_internal_info=?, ports=?, provision_state=?, power_state=?, last_error=?,
		maintenance=?, maintenance_reason=?, updated_at=? WHERE uuid=?`,
		n.Name, n.Driver, di, props, ii, dii, ports, n.ProvisionState, n.PowerState, n.LastError,
		boolInt(n.Maintenance), n.MaintenanceReason, ts(n.UpdatedAt), n.UUID)
	if err != nil {
		if s.d.uniqueViolation(err) == "name" {
			return nil, &DuplicateError{Field: "name", Value: n.Name}
		}
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update node %s: %w", name, err)
	}
	return n, nil
}

// Transition implements Store (from outside any run).
func (s *DB) Transition(ctx context.Context, ref, event string) (*Node, error) {
	return s.TransitionAs(ctx, Operator, ref, event)
}

// TransitionAs implements Store.
func (s *DB) TransitionAs(ctx context.Context, holder int64, ref, event string) (*Node, error) {
	return s.UpdateNodeAs(ctx, holder, ref, func(n *Node) error {
		to, err := states.Next(n.ProvisionState, event)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		n.ProvisionState = to
		return nil
	})
}

// DeleteNode implements Store.
func (s *DB) DeleteNode(ctx context.Context, ref string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM nodes WHERE (name = ? OR uuid = ?) AND reservation IS NULL`, ref, ref)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", ref, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		node, err := s.GetNode(ctx, ref)
		if err != nil {
			return err
		}
		return s.lockedError(ctx, s.r, node.Name, node.Reservation)
	}
	return nil
}

// checkHolder refuses a change to a node reserved by another run than
// holder (Internal passes always).
//
// Fencing: a run that is no longer running (interrupted by a takeover
// while its process was stopped) cannot change a node it does not hold.
func (s *DB) checkHolder(ctx context.Context, q querier, n *Node, holder int64) error {
	if holder == Internal || n.Reservation == holder {
		return nil
	}
	if n.Reservation == 0 {
		if holder <= 0 {
			return nil
		}
		var status string
		if err := q.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, holder).Scan(&status); err != nil || status == StatusRunning {
			return nil // an unknown holder: as before fencing existed
		}
		return fmt.Errorf("node %s: run %d is %s: %w", n.Name, holder, status, ErrFenced)
	}
	return s.lockedError(ctx, q, n.Name, n.Reservation)
}

// lockedError describes the run holding a node.
func (s *DB) lockedError(ctx context.Context, q querier, name string, runID int64) error {
	le := &LockedError{Node: name, RunID: runID}
	_ = q.QueryRowContext(ctx, `SELECT script FROM runs WHERE id = ?`, runID).Scan(&le.Script)
	return le
}

// LockNode implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) LockNode(ctx context.Context, uuid string, runID int64) error {
	return s.retry(ctx, true, func() error { return s.lockNodeOnce(ctx, uuid, runID) })
}

// lockNodeOnce is LockNode without the retry.
func (s *DB) lockNodeOnce(ctx context.Context, uuid string, runID int64) error {
	res, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = ? WHERE uuid = ? AND (reservation IS NULL OR reservation = ?)`, runID, uuid, runID)
	if err != nil {
		return fmt.Errorf("lock node %s: %w", uuid, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	return s.whoHolds(ctx, uuid)
}

// whoHolds returns the *LockedError naming the run holding a node, or
// ErrNotFound.
func (s *DB) whoHolds(ctx context.Context, uuid string) error {
	var name string
	var holder sql.NullInt64
	err := s.w.QueryRowContext(ctx, `SELECT name, reservation FROM nodes WHERE uuid = ?`, uuid).Scan(&name, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock node %s: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock node %s: %w", uuid, err)
	}
	return s.lockedError(ctx, s.w, name, holder.Int64)
}

// UnlockNode implements Store.
// It is retried while the connection to PostgreSQL is lost (retry).
func (s *DB) UnlockNode(ctx context.Context, uuid string, runID int64) error {
	return s.retry(ctx, true, func() error { return s.unlockNodeOnce(ctx, uuid, runID) })
}

// unlockNodeOnce is UnlockNode without the retry.
func (s *DB) unlockNodeOnce(ctx context.Context, uuid string, runID int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE nodes SET reservation = NULL, lease_owner = NULL, lease_expires = NULL WHERE uuid = ? AND reservation = ?`, uuid, runID)
	if err != nil {
		return fmt.Errorf("unlock node %s: %w", uuid, err)
	}
	return nil
}
