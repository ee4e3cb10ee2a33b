// Package store persists nodes, runs, events, artifacts and watch-folder
// job claims. Store is the interface the runtime uses; DB implements it
// over database/sql for SQLite (Open: modernc.org/sqlite, no cgo) and
// PostgreSQL (OpenPostgres: pgx v5), one code base with a small dialect
// layer (db.go); OpenURL picks one from [database] connection. The suite
// in storetest runs against both. Leases for several processes sharing a
// database are in leases.go; copies between stores in migrate.go.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Run statuses.
const (
	StatusRunning     = "running"
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusTimedOut    = "timed_out"
	StatusCancelled   = "cancelled"
	StatusInterrupted = "interrupted"
)

// Event kinds.
const (
	EventStepStart = "step_start"
	EventStepEnd   = "step_end"
	EventLog       = "log"
	EventCall      = "call"
	EventState     = "state"
)

// Node is a server managed through its iLO. DriverInfo holds decrypted
// values in memory; the store encrypts secret keys at rest.
type Node struct {
	UUID               string         `json:"uuid"`
	Name               string         `json:"name"`
	Driver             string         `json:"driver"`
	DriverInfo         map[string]any `json:"driver_info"`
	Properties         map[string]any `json:"properties"`
	InstanceInfo       map[string]any `json:"instance_info"`
	DriverInternalInfo map[string]any `json:"driver_internal_info"`
	Ports              []Port         `json:"ports"`
	ProvisionState     string         `json:"provision_state"`
	PowerState         string         `json:"power_state"`
	LastError          string         `json:"last_error"`
	Maintenance        bool           `json:"maintenance"`
	MaintenanceReason  string         `json:"maintenance_reason,omitempty"`
	Reservation        int64          `json:"reservation,omitempty"` // id of the run holding the lock, 0 when free
	// Lease is the process (conductor) holding the reservation, when it
	// was taken with AcquireLease; nil otherwise.
	Lease     *Lease    `json:"lease,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Port is a NIC of a node.
type Port struct {
	Address string `json:"address"`
	// Name and State are what inspection saw ("Port 3",
	// "UnavailableOffline"); empty when unknown.
	Name  string `json:"name,omitempty"`
	State string `json:"state,omitempty"`
}

// Run is one execution of a script on (at most) one node.
type Run struct {
	ID         int64             `json:"id"`
	Script     string            `json:"script"`
	ScriptSHA  string            `json:"script_sha256"`
	NodeUUID   string            `json:"node_uuid,omitempty"`
	NodeName   string            `json:"node"`
	Params     map[string]string `json:"params"` // secrets masked before storing
	Status     string            `json:"status"`
	Error      string            `json:"error"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
	Host       string            `json:"host"`
	PID        int               `json:"pid"`
	// Conductor is the registered process running the run (leases.go), 0
	// when the process did not register.
	Conductor int64 `json:"conductor,omitempty"`
	// JobLink, when set, is recorded with the run in the same transaction
	// (its RunID filled in): a process killed right after the run is
	// created cannot leave a run its watch-folder job does not know about.
	JobLink *JobRun `json:"-"`
}

// Event is one entry of a run's timeline.
type Event struct {
	RunID int64          `json:"-"`
	Seq   int64          `json:"seq"`
	Time  time.Time      `json:"time"`
	Kind  string         `json:"kind"`
	Name  string         `json:"name"`
	Data  map[string]any `json:"data,omitempty"`
}

// Artifact is an object a run published (floppy, ISO, Swift object, ...).
type Artifact struct {
	ID        int64      `json:"id"`
	RunID     int64      `json:"run_id"`
	NodeUUID  string     `json:"node_uuid"`
	Kind      string     `json:"kind"`
	Location  string     `json:"location"`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// RunFilter selects runs for ListRuns. Pages are keyset cursors on the
// run id (never OFFSET), so a page costs the same at a million runs.
type RunFilter struct {
	Node   string // name or uuid
	Status string
	// Limit > 0 keeps the last Limit runs matching (the first Limit when
	// After is set); 0 keeps every run.
	Limit int
	// Before keeps runs with an id below it (the next older page: pass
	// the smallest id of the page shown); 0: no bound.
	Before int64
	// After keeps runs with an id above it (the next newer page: pass the
	// largest id of the page shown); 0: no bound.
	After int64
}

// Retention is how long the events of finished runs are kept; 0 keeps
// them forever.
type Retention struct {
	// Succeeded applies to runs that succeeded.
	Succeeded time.Duration
	// Failed applies to runs that did not (failed, timed out, cancelled,
	// interrupted): usually longer, they are the ones looked at again.
	Failed time.Duration
}

// Store is the persistence interface of the runtime.
type Store interface {
	CreateNode(ctx context.Context, n *Node) error
	// CreateNodes creates every node in one transaction: all of them, or
	// none and the first refusal (*DuplicateError, *PortConflictError).
	CreateNodes(ctx context.Context, nodes []*Node) error
	// GetNode finds a node by name or uuid.
	GetNode(ctx context.Context, ref string) (*Node, error)
	ListNodes(ctx context.Context) ([]*Node, error)
	// UpdateNode applies fn to the current node inside one transaction and
	// persists the result; a provision state change made by fn must be a
	// valid transition (use Transition for events).
	// It is a change from outside any run (an operator's): refused with a
	// *LockedError while a run holds the node (Ironic's reservation).
	UpdateNode(ctx context.Context, ref string, fn func(n *Node) error) (*Node, error)
	// UpdateNodeAs is UpdateNode made by holder: the id of the run holding
	// the node (its own changes pass), Operator (0: refused while reserved)
	// or Internal (bookkeeping such as agent heartbeats: never refused).
	UpdateNodeAs(ctx context.Context, holder int64, ref string, fn func(n *Node) error) (*Node, error)
	// DeleteNode deletes a node; a *LockedError while a run holds it.
	DeleteNode(ctx context.Context, ref string) error
	// Transition applies a state machine event to a node and returns it
	// (from outside any run: refused while a run holds the node).
	Transition(ctx context.Context, ref, event string) (*Node, error)
	// TransitionAs is Transition made by holder (see UpdateNodeAs).
	TransitionAs(ctx context.Context, holder int64, ref, event string) (*Node, error)

	// LockNode reserves a node for a run; ErrLocked if another run holds it.
	LockNode(ctx context.Context, uuid string, runID int64) error
	UnlockNode(ctx context.Context, uuid string, runID int64) error

	CreateRun(ctx context.Context, r *Run) error
	// FinishRun records a run's end once: another status or error for a
	// finished run is refused (ErrFenced when recovery interrupted it), the
	// same finish repeated is accepted and changes nothing.
	FinishRun(ctx context.Context, id int64, status, errMsg string) error
	GetRun(ctx context.Context, id int64) (*Run, error)
	ListRuns(ctx context.Context, f RunFilter) ([]*Run, error)
	AppendEvents(ctx context.Context, evs []Event) error
	Events(ctx context.Context, runID int64) ([]Event, error)
	// PruneEvents deletes the events of runs finished longer ago than
	// the retention allows (runs themselves stay listed), in short write
	// transactions; it returns how many runs lost their events.
	PruneEvents(ctx context.Context, r Retention, now time.Time) (int, error)

	AddArtifact(ctx context.Context, a *Artifact) error
	Artifacts(ctx context.Context, nodeUUID string, includeDeleted bool) ([]Artifact, error)
	RunArtifacts(ctx context.Context, runID int64) ([]Artifact, error)
	MarkArtifactDeleted(ctx context.Context, id int64) error

	// RecoverInterrupted marks runs left "running" by dead processes as
	// interrupted and releases their node locks. alive reports whether a
	// process (host, pid) still exists.
	// A node such a run left in a transient provision state moves to its
	// failure state (see InterruptRun).
	RecoverInterrupted(ctx context.Context, alive func(host string, pid int) bool) ([]int64, error)
	// InterruptRun marks a running run whose process is gone interrupted
	// (cause: "process died", "aborted by operator", ...) and releases its
	// node; a node left in a transient provision state moves to its
	// failure state with last_error naming the run and the cause, and
	// driver_internal_info[RecoveryKey] = the run id: its cleanup (power
	// off, eject, unpublish, agent token) is still to do.
	InterruptRun(ctx context.Context, runID int64, cause string) error
	// RequestAbort records an abort request on a running run; the process
	// running it polls AbortRequested and cancels the run.
	RequestAbort(ctx context.Context, runID int64, by string) error
	// AbortRequested returns the abort request recorded on a run ("" if none).
	AbortRequested(ctx context.Context, runID int64) (string, error)

	// Watch-folder jobs (see jobs.go).
	CreateJob(ctx context.Context, j *Job) error
	GetJob(ctx context.Context, id int64) (*Job, error)
	// UpdateJob applies fn to the job inside one transaction and persists it.
	UpdateJob(ctx context.Context, id int64, fn func(j *Job) error) (*Job, error)
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	// SetJobRun inserts or replaces the run of a job on one node; with
	// jr.Generation set, only while the caller still holds the job's claim
	// (else ErrFenced).
	SetJobRun(ctx context.Context, jr *JobRun) error
	// ClaimJobID gives job id the job id jobID, unless another job holds
	// it: fn sees the job and that other job (nil when none) in one
	// transaction serialised per job id (see DB.ClaimJobID).
	ClaimJobID(ctx context.Context, id int64, jobID string, fn func(j, dup *Job) error) (*Job, error)
	JobRuns(ctx context.Context, job int64) ([]JobRun, error)

	Close() error
}

// ErrNotFound is returned when a node or run does not exist.
var ErrNotFound = errors.New("not found")

// Holders of UpdateNodeAs / TransitionAs besides a run id.
const (
	// Operator is a change from outside any run: refused while a run holds the node.
	Operator int64 = 0
	// Internal is bookkeeping that never conflicts with the holding run
	// (agent heartbeats, interrupted-run recovery).
	Internal int64 = -1
)

// RecoveryKey is the driver_internal_info key naming the interrupted run
// whose cleanup is still to do (see InterruptRun).
const RecoveryKey = "recovery_pending"

// LockedError is returned when another run holds the node (LockNode, and
// changes from outside that run).
type LockedError struct {
	Node   string
	RunID  int64
	Script string
}

func (e *LockedError) Error() string {
	if e.Script != "" {
		return fmt.Sprintf("node %s is locked by run %d (%s)", e.Node, e.RunID, e.Script)
	}
	return fmt.Sprintf("node %s is locked by run %d", e.Node, e.RunID)
}

// DuplicateError is returned when a node name or uuid already exists.
type DuplicateError struct{ Field, Value string }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("a node with %s %q already exists: choose another %s or delete the existing node", e.Field, e.Value, e.Field)
}
