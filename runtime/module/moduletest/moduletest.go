// Package moduletest provides an in-memory module.Run for unit tests of a
// binding's Lua face, like net/http/httptest. End-to-end tests should use the
// real runtime (runtime.Engine) instead.
package moduletest

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
)

// Event is one recorded event.
type Event struct {
	Kind, Name string
	Data       map[string]any
}

// Run is an in-memory module.Run.
type Run struct {
	Ctx     context.Context
	RunID   int64
	N       *Node
	Cfg     MapConfig
	mu      sync.Mutex
	Events  []Event
	Arts    []module.Artifact
	deleted map[int64]bool
	secrets []string
	policy  *sandbox.Policy
}

// NewRun returns a Run bound to ctx acting on node n (may be nil). Its
// sandbox allows nothing until SetSandbox or Allow.
func NewRun(ctx context.Context, n *Node) *Run {
	r := &Run{Ctx: ctx, RunID: 1, N: n, Cfg: MapConfig{}, deleted: map[int64]bool{}}
	r.SetSandbox(sandbox.Config{})
	return r
}

// SetSandbox replaces the run's file policy (c.Node defaults to the run's
// node).
func (r *Run) SetSandbox(c sandbox.Config) *sandbox.Policy {
	if c.Node == "" && r.N != nil {
		c.Node = r.N.ID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policy = sandbox.New(c)
	return r.policy
}

// Allow sets a sandbox whose work directory is workDir and where scripts
// may also read and write the directories dirs (as [lightsout]
// script_paths).
func (r *Run) Allow(workDir string, dirs ...string) *sandbox.Policy {
	return r.SetSandbox(sandbox.Config{WorkDir: workDir, Write: dirs})
}

// Paths implements module.Run.
func (r *Run) Paths() module.PathPolicy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.policy
}

// Context implements module.Run.
func (r *Run) Context() context.Context { return r.Ctx }

// ID implements module.Run.
func (r *Run) ID() int64 { return r.RunID }

// Node implements module.Run.
func (r *Run) Node() module.Node {
	if r.N == nil {
		return nil
	}
	return r.N
}

// Config implements module.Run.
func (r *Run) Config() module.Config { return r.Cfg }

// Event implements module.Run.
func (r *Run) Event(kind, name string, data map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, Event{kind, name, data})
}

// Log implements module.Run.
func (r *Run) Log(level slog.Level, msg string, fields map[string]any) {
	r.Event("log", level.String(), map[string]any{"msg": msg, "fields": fields})
}

// Artifact implements module.Run.
func (r *Run) Artifact(kind, location string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	uuid := ""
	if r.N != nil {
		uuid = r.N.ID
	}
	r.Arts = append(r.Arts, module.Artifact{ID: int64(len(r.Arts) + 1), RunID: r.RunID, NodeUUID: uuid, Kind: kind, Location: location})
	return nil
}

// Artifacts implements module.Run.
func (r *Run) Artifacts(nodeUUID string) ([]module.Artifact, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []module.Artifact
	for _, a := range r.Arts {
		if a.NodeUUID == nodeUUID && !r.deleted[a.ID] {
			out = append(out, a)
		}
	}
	return out, nil
}

// ArtifactDeleted implements module.Run.
func (r *Run) ArtifactDeleted(id int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted[id] = true
	return nil
}

// AddSecret implements module.Run.
func (r *Run) AddSecret(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, v)
}

// Redact implements module.Run.
func (r *Run) Redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "******")
		}
	}
	return s
}

// Calls returns the names of recorded "call" events in order.
func (r *Run) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.Events {
		if e.Kind == "call" {
			out = append(out, e.Name)
		}
	}
	return out
}

// Node is an in-memory module.Node.
type Node struct {
	mu       sync.Mutex
	ID       string
	NodeName string
	Drv      string
	Info     map[string]any
	Int      map[string]any
}

// UUID implements module.Node.
func (n *Node) UUID() string { return n.ID }

// Name implements module.Node.
func (n *Node) Name() string { return n.NodeName }

// Driver implements module.Node.
func (n *Node) Driver() string { return n.Drv }

// DriverInfo implements module.Node.
func (n *Node) DriverInfo() map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return copyMap(n.Info)
}

// Internal implements module.Node.
func (n *Node) Internal() map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return copyMap(n.Int)
}

// SetInternal implements module.Node.
func (n *Node) SetInternal(k string, v any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Int == nil {
		n.Int = map[string]any{}
	}
	n.Int[k] = v
	return nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// MapConfig is a module.Config backed by a map keyed "section.key".
type MapConfig map[string]string

// Get implements module.Config.
func (c MapConfig) Get(section, key string) (string, bool) {
	v, ok := c[section+"."+key]
	return v, ok
}

// Open loads m into a fresh LState for r, registers it for require and
// returns the state; the caller closes it.
func Open(r *Run, mods ...module.Module) *lua.LState {
	L := lua.NewState()
	L.SetContext(r.Ctx)
	for _, m := range mods {
		m := m
		L.PreloadModule(m.Name(), func(L *lua.LState) int {
			L.Push(m.Open(L, r))
			return 1
		})
	}
	return L
}
