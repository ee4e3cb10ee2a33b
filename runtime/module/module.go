// Package module is the narrow contract between the Lua runtime and the
// bindings (ilo, vmedia, swift, image, agent, ...).
//
// A binding exports a long-lived value implementing [Module] (created once per
// process, so it may hold shared state such as per-iLO rate limiters). For each
// run the runtime calls Open with a fresh *lua.LState and the [Run] the script
// belongs to; Open returns the value `require(name)` yields, normally a table
// of functions. Every Go function a script can call must honour
// Run.Context() and report BMC, store or agent calls through [Record] (or
// Run.Event) so they show up in `lightsout runs show`.
package module

import (
	"context"
	"log/slog"

	lua "github.com/yuin/gopher-lua"
)

// Module is a Go module that scripts load with require(Name()).
type Module interface {
	// Name is the require name, e.g. "ilo".
	Name() string
	// Open builds the module value for one run.
	Open(L *lua.LState, r Run) lua.LValue
}

// Run is what a binding sees of the run that calls it.
type Run interface {
	// Context is cancelled when the run times out or is cancelled.
	Context() context.Context
	// ID is the run id in the store.
	ID() int64
	// Node is the node this run acts on (nil for node-less runs).
	Node() Node
	// Config is a read-only view of the effective configuration.
	Config() Config
	// Event records one event (kind is "call", "log", "state", ...). data is
	// redacted and JSON-encoded by the runtime; never pass raw secrets knowingly.
	Event(kind, name string, data map[string]any)
	// Log records a log event and writes it to the process log.
	Log(level slog.Level, msg string, fields map[string]any)
	// Artifact records a published object (kind e.g. "floppy", "iso", "swift").
	Artifact(kind, location string) error
	// Artifacts lists the not-yet-deleted artifacts of a node (all runs).
	Artifacts(nodeUUID string) ([]Artifact, error)
	// ArtifactDeleted marks an artifact as deleted.
	ArtifactDeleted(id int64) error
	// AddSecret registers a value (e.g. a token generated at run time) that
	// must be redacted from every output of this run.
	AddSecret(value string)
	// Redact replaces every known secret in s with "******".
	Redact(s string) string
	// Paths is the run's file sandbox: every local path a script hands a
	// binding goes through it before the binding opens or creates it.
	Paths() PathPolicy
}

// PathPolicy decides which local files a run may read and create (see
// docs/playbooks.md, "Sandbox"). Errors are *Error with CodeForbidden
// (outside the sandbox, a protected file, a file the run did not create),
// CodeNotFound or CodeInvalid; their messages name the path and the fix.
type PathPolicy interface {
	// WorkDir returns the run's private work directory, creating it. Relative
	// paths given by scripts are relative to it.
	WorkDir() (string, error)
	// Read checks that the script may read path and returns it resolved
	// (absolute, symlinks evaluated). The file must exist.
	Read(path string) (string, error)
	// Create checks that the script may write a new file at path and
	// returns it resolved; the parent directories are created. An existing
	// file is refused unless this run created it.
	Create(path string) (string, error)
}

// Node is the persisted node a run acts on. Getters return copies.
type Node interface {
	UUID() string
	Name() string
	Driver() string
	// DriverInfo returns driver_info with secrets decrypted (in memory only).
	DriverInfo() map[string]any
	// Internal returns driver_internal_info.
	Internal() map[string]any
	// SetInternal persists driver_internal_info[key] = value.
	SetInternal(key string, value any) error
}

// Artifact is a published object recorded by a run.
type Artifact struct {
	ID       int64
	RunID    int64
	NodeUUID string
	Kind     string
	Location string
}

// Config is a read-only view of the INI configuration.
type Config interface {
	// Get returns the value of [section] key and whether it is set (in a
	// file, the environment or a built-in default).
	Get(section, key string) (string, bool)
}
