package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
	"github.com/lightsout/lightsout/runtime/store"
)

// Run is one executing script. It implements module.Run for the bindings.
type Run struct {
	eng    *Engine
	id     int64
	ctx    context.Context
	script *Script
	params map[string]string
	stdout io.Writer
	onStep func(runID int64, node, step string)
	// onEvent observes the run's recorded events (RunRequest.OnEvent).
	onEvent func(runID int64, kind, name string, data map[string]any)
	seq     atomic.Int64
	// probe marks a state built only to read scripts (CleanSteps): it has
	// no run record, so its events are dropped.
	probe bool
	paths *sandbox.Policy // the run's file sandbox

	mu        sync.Mutex
	node      *store.Node
	traceback string         // of the first error raised inside a step
	onAbort   *lua.LFunction // run.on_abort: the failure path after a cancellation

	guard *guard // the run's resource limits, set by newState
}

var _ module.Run = (*Run)(nil)

// Context implements module.Run.
func (r *Run) Context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx
}

// ID implements module.Run.
func (r *Run) ID() int64 { return r.id }

// Config implements module.Run.
func (r *Run) Config() module.Config { return r.eng.cfg }

// Node implements module.Run.
func (r *Run) Node() module.Node {
	if r.node == nil {
		return nil
	}
	return runNode{r}
}

// Event implements module.Run: data is redacted before it is recorded.
func (r *Run) Event(kind, name string, data map[string]any) {
	if r.probe {
		return
	}
	var d map[string]any
	if data != nil {
		d, _ = r.eng.redactor.Value(data).(map[string]any)
	}
	name = r.eng.redactor.String(name)
	r.eng.rec.add(store.Event{RunID: r.id, Seq: r.seq.Add(1), Time: time.Now().UTC(), Kind: kind, Name: name, Data: d})
	if r.eng.onEvent != nil {
		r.eng.onEvent(kind, name, d)
	}
	if r.onEvent != nil {
		r.onEvent(r.id, kind, name, d)
	}
}

// Log implements module.Run.
func (r *Run) Log(level slog.Level, msg string, fields map[string]any) {
	msg = r.eng.redactor.String(msg)
	data := map[string]any{"msg": msg}
	if len(fields) > 0 {
		data["fields"] = fields
	}
	r.Event(store.EventLog, strings.ToLower(level.String()), data)
	if r.eng.log.Enabled(r.ctx, level) {
		attrs := []any{"run", r.id}
		if r.node != nil {
			attrs = append(attrs, "node", r.node.Name)
		}
		for _, k := range module.SortedKeys(fields) {
			attrs = append(attrs, k, r.eng.redactor.Value(fields[k]))
		}
		r.eng.log.Log(context.WithoutCancel(r.ctx), level, msg, attrs...)
	}
}

// Artifact implements module.Run.
// The kind is redacted; the location is kept whole for a later cleanup (the
// store encrypts it when it holds a secret or a signature) and redacted in
// the event.
func (r *Run) Artifact(kind, location string) error {
	kind = r.eng.redactor.String(kind)
	a := &store.Artifact{RunID: r.id, Kind: kind, Location: location}
	if r.node != nil {
		a.NodeUUID = r.node.UUID
	}
	if err := r.eng.st.AddArtifact(context.WithoutCancel(r.ctx), a); err != nil {
		return err
	}
	r.Event("artifact", kind, map[string]any{"location": location})
	return nil
}

// Artifacts implements module.Run.
func (r *Run) Artifacts(nodeUUID string) ([]module.Artifact, error) {
	as, err := r.eng.st.Artifacts(r.ctx, nodeUUID, false)
	if err != nil {
		return nil, err
	}
	out := make([]module.Artifact, len(as))
	for i, a := range as {
		out[i] = module.Artifact{ID: a.ID, RunID: a.RunID, NodeUUID: a.NodeUUID, Kind: a.Kind, Location: a.Location}
	}
	return out, nil
}

// ArtifactDeleted implements module.Run.
func (r *Run) ArtifactDeleted(id int64) error {
	return r.eng.st.MarkArtifactDeleted(context.WithoutCancel(r.ctx), id)
}

// AddSecret implements module.Run.
func (r *Run) AddSecret(v string) { r.eng.redactor.Add(v) }

// Redact implements module.Run.
func (r *Run) Redact(s string) string { return r.eng.redactor.String(s) }

// updateNode persists a change to the run's node and refreshes the copy.
func (r *Run) updateNode(fn func(n *store.Node) error) (*store.Node, error) {
	r.mu.Lock()
	uuid := r.node.UUID
	r.mu.Unlock()
	n, err := r.eng.st.UpdateNodeAs(context.WithoutCancel(r.ctx), r.id, uuid, fn)
	if err != nil {
		return nil, err
	}
	r.eng.redactor.AddFromMap(n.DriverInfo)
	r.mu.Lock()
	r.node = n
	r.mu.Unlock()
	return n, nil
}

// runNode is the module.Node view of the run's node.
type runNode struct{ r *Run }

func (n runNode) cur() *store.Node {
	n.r.mu.Lock()
	defer n.r.mu.Unlock()
	return n.r.node
}

func (n runNode) UUID() string   { return n.cur().UUID }
func (n runNode) Name() string   { return n.cur().Name }
func (n runNode) Driver() string { return n.cur().Driver }
func (n runNode) DriverInfo() map[string]any {
	return copyMap(n.cur().DriverInfo)
}
func (n runNode) Internal() map[string]any { return copyMap(n.cur().DriverInternalInfo) }
func (n runNode) SetInternal(k string, v any) error {
	_, err := n.r.updateNode(func(sn *store.Node) error {
		if v == nil {
			delete(sn.DriverInternalInfo, k)
		} else {
			sn.DriverInternalInfo[k] = v
		}
		return nil
	})
	return err
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// execute runs the compiled chunk in a fresh LState.
// A Go panic anywhere in it (a binding bug, a gopher-lua panic) fails this
// run only.
func (r *Run) execute(proto *lua.FunctionProto, parent context.Context) (status, msg string) {
	defer func() {
		if v := recover(); v != nil {
			status, msg = store.StatusFailed, panicMessage(v)
		}
	}()
	L := r.eng.newState(r)
	defer L.Close()
	defer func() { r.guard.close() }() // the failure path may replace the guard
	r.Event(store.EventState, "started", map[string]any{"script": r.script.Name, "origin": r.script.Origin, "path": r.script.Path})
	L.Push(L.NewFunctionFromProto(proto))
	err := L.PCall(0, 0, nil)
	if err == nil {
		return store.StatusSucceeded, ""
	}
	if le := r.guard.err(); le != nil {
		return store.StatusFailed, le.Error() + " (" + le.Code + ")"
	}
	runCtx := r.Context()
	status, msg = classify(runCtx, parent, r.errorMessage(L, err))
	if runCtx.Err() != nil && r.onAbort != nil {
		r.failurePath(L, parent, interruption(runCtx, parent))
	}
	return status, msg
}

// failurePath runs the handler the script registered with run.on_abort
// after the run was cancelled (signal, abort, timeout): every call of the
// cancelled run fails at once, so the handler gets a fresh context bounded
// by [lightsout] abort_grace (a second signal ends the process sooner).
func (r *Run) failurePath(L *lua.LState, parent context.Context, cause string) {
	grace := r.eng.cfg.Duration("lightsout", "abort_grace", 60*time.Second)
	gctx, cancel := context.WithTimeout(context.WithoutCancel(parent), grace)
	defer cancel()
	r.mu.Lock()
	r.ctx = gctx
	fn := r.onAbort
	r.onAbort = nil
	r.mu.Unlock()
	// the failure path runs under the same resource limits, with the new context
	r.guard.close()
	r.guard = r.eng.newGuard(gctx, L)
	r.Event(store.EventState, "failure path", map[string]any{"cause": cause, "grace_s": grace.Seconds()})
	if err := L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, lua.LString("interrupted: "+cause)); err != nil {
		r.Log(slog.LevelError, "the failure path did not complete: "+r.errorMessage(L, err), nil)
	}
}

// errorMessage renders a Lua error with its code and traceback.
func (r *Run) errorMessage(L *lua.LState, err error) string {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	msg := luaErrorString(ae.Object)
	r.mu.Lock()
	tb := r.traceback
	r.mu.Unlock()
	if tb == "" {
		tb = ae.StackTrace
	}
	if tb != "" {
		msg += "\n" + tb
	}
	return msg
}

// luaErrorString renders an error value: "message (code)" for lightsout
// error tables, tostring otherwise.
func luaErrorString(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		m := t.RawGetString("message")
		if m != lua.LNil {
			s := lua.LVAsString(m)
			if op := lua.LVAsString(t.RawGetString("operation")); op != "" {
				s = op + ": " + s
			}
			if c := lua.LVAsString(t.RawGetString("code")); c != "" {
				s += " (" + c + ")"
			}
			return s
		}
	}
	return v.String()
}

// step implements run.step(name, fn).
func (r *Run) step(L *lua.LState) int {
	name := r.eng.redactor.String(L.CheckString(1))
	fn := L.CheckFunction(2)
	if r.onStep != nil && r.node != nil {
		r.onStep(r.id, r.node.Name, name)
	} else if r.onStep != nil {
		r.onStep(r.id, "", name)
	}
	r.Event(store.EventStepStart, name, nil)
	start := time.Now()
	base := L.GetTop()
	L.Push(fn)
	err := L.PCall(0, lua.MultRet, nil)
	data := map[string]any{"duration_ms": float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		var ae *lua.ApiError
		obj := lua.LValue(lua.LString(err.Error()))
		if errors.As(err, &ae) {
			obj = ae.Object
			r.mu.Lock()
			if r.traceback == "" {
				r.traceback = ae.StackTrace
			}
			r.mu.Unlock()
		}
		data["status"] = "failed"
		data["error"] = luaErrorString(obj)
		if t, ok := obj.(*lua.LTable); ok {
			if c := lua.LVAsString(t.RawGetString("code")); c != "" {
				data["code"] = c
			}
		}
		r.Event(store.EventStepEnd, name, data)
		L.Error(obj, 0)
		return 0
	}
	data["status"] = "ok"
	r.Event(store.EventStepEnd, name, data)
	return L.GetTop() - base
}

// logLevel parses a run.log level.
func logLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid log level %q: use debug, info, warn or error", s)
}

// print writes redacted output and records it.
func (r *Run) print(L *lua.LState) int {
	n := L.GetTop()
	parts := make([]string, n)
	for i := 1; i <= n; i++ {
		parts[i-1] = L.ToStringMeta(L.Get(i)).String()
	}
	line := r.eng.redactor.String(strings.Join(parts, "\t"))
	r.Event(store.EventLog, "print", map[string]any{"msg": line})
	r.eng.outMu.Lock()
	defer r.eng.outMu.Unlock()
	if r.node != nil {
		fmt.Fprintf(r.stdout, "[%s] %s\n", r.node.Name, line)
	} else {
		fmt.Fprintln(r.stdout, line)
	}
	return 0
}

// sleep implements run.sleep(seconds), honouring the run's context.
func (r *Run) sleep(L *lua.LState) int {
	secs := float64(L.CheckNumber(1))
	if secs < 0 {
		L.ArgError(1, "seconds must be >= 0")
	}
	t := time.NewTimer(time.Duration(secs * float64(time.Second)))
	defer t.Stop()
	ctx := L.Context() // the Lua state's: done only once the run's is
	if ctx == nil {
		ctx = r.Context()
	}
	select {
	case <-t.C:
	case <-ctx.Done():
		module.Raise(L, "run.sleep", ctx.Err())
	}
	return 0
}

// configTable builds the read-only `config` global: config.section.key,
// secret options masked.
func (r *Run) configTable(L *lua.LState) lua.LValue {
	root := L.NewTable()
	for _, v := range r.eng.cfg.Values() {
		sec, ok := root.RawGetString(v.Section).(*lua.LTable)
		if !ok {
			sec = L.NewTable()
			root.RawSetString(v.Section, sec)
		}
		sec.RawSetString(v.Key, lua.LString(v.Value))
	}
	root.ForEach(func(k, sec lua.LValue) { root.RawSet(k, readOnly(L, sec.(*lua.LTable), "config."+k.String())) })
	return readOnly(L, root, "config")
}

// readOnly wraps t in a proxy whose writes raise an error.
func readOnly(L *lua.LState, t *lua.LTable, name string) *lua.LTable {
	proxy := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s is read-only", name)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(proxy, mt)
	return proxy
}

// paramsTable builds the `params` global. Secret values stay readable by
// the script; they were registered for redaction when the run started.
func (r *Run) paramsTable(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, len(r.params))
	for k, v := range r.params {
		t.RawSetString(k, lua.LString(v))
	}
	return t
}
