package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// DefaultHeartbeatTimeout is how long agent.wait_heartbeat waits when
// neither opts.timeout nor `[conductor] deploy_callback_timeout` is set
// (Ironic's default deploy_callback_timeout).
const DefaultHeartbeatTimeout = 1800 * time.Second

// DefaultPollInterval is how often agent.wait_command re-reads the command
// list when no heartbeat arrives in between (IPA heartbeats as soon as an
// asynchronous command ends, which also wakes the wait).
const DefaultPollInterval = 2 * time.Second

// Module is the Lua module `agent`. Create it once per process with
// NewModule and register it with the runtime.
type Module struct {
	server *agentapi.Server
	client *Client
}

// NewModule returns the `agent` module backed by the callback server.
func NewModule(server *agentapi.Server) *Module {
	return &Module{server: server, client: &Client{HTTP: &http.Client{}}}
}

// Name implements module.Module.
func (m *Module) Name() string { return "agent" }

// Open implements module.Module.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	b := &binding{m: m, r: r}
	t := L.NewTable()
	for name, fn := range map[string]lua.LGFunction{
		"callback_url":   b.callbackURL,
		"token":          b.token,
		"forget":         b.forget,
		"info":           b.info,
		"wait_heartbeat": b.waitHeartbeat,
		"command":        b.command,
		"commands":       b.commands,
		"wait_command":   b.waitCommand,
	} {
		t.RawSetString(name, L.NewFunction(fn))
	}
	return t
}

// binding is the module opened for one run.
type binding struct {
	m *Module
	r module.Run
}

// nodeArg returns argument n as a node UUID: nil, the run's node UUID or
// name, or its node table. Another node (or any node in a node-less run)
// is refused with forbidden: a script may not read, rotate or revoke
// another node's agent token.
func (b *binding) nodeArg(L *lua.LState, n int, op string) string {
	return module.NodeArg(L, b.r, n, op)
}

// seconds reads opts[key] as a positive duration in seconds (0 when unset).
func seconds(L *lua.LState, opts *lua.LTable, key, op string) time.Duration {
	v := opts.RawGetString(key)
	if v == lua.LNil {
		return 0
	}
	n, ok := v.(lua.LNumber)
	if !ok || n <= 0 {
		module.Raise(L, op, module.Errorf(module.CodeInvalid, op, "opts.%s must be a positive number of seconds, got %s", key, v.String()))
	}
	return time.Duration(float64(n) * float64(time.Second))
}

// boolOpt reads opts[key] as a boolean with a default.
func boolOpt(L *lua.LState, opts *lua.LTable, key, op string, def bool) bool {
	switch v := opts.RawGetString(key).(type) {
	case *lua.LNilType:
		return def
	case lua.LBool:
		return bool(v)
	default:
		module.Raise(L, op, module.Errorf(module.CodeInvalid, op, "opts.%s must be a boolean, got %s", key, v.Type()))
	}
	return def
}

// fail redacts err with the run's secrets and raises it.
func (b *binding) fail(L *lua.LState, op string, err error) {
	e := &module.Error{Code: module.CodeOf(err), Operation: op, Message: b.r.Redact(err.Error())}
	var me *module.Error
	if errors.As(err, &me) {
		e.Message = b.r.Redact(me.Message)
	}
	module.Raise(L, op, e)
}

// classify maps client errors to module codes.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var me *module.Error
	if errors.As(err, &me) {
		return err
	}
	code := module.CodeTransient
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusNotFound:
			code = module.CodeNotSupported
		case he.Status == http.StatusBadRequest:
			code = module.CodeInvalid
		case he.Status == http.StatusConflict || he.Status >= 500:
			code = module.CodeTransient
		default:
			code = module.CodeError
		}
	}
	return &module.Error{Code: code, Operation: op, Message: err.Error(), Err: err}
}

// agentFor returns the agent URL and token of a node that heartbeated.
func (b *binding) agentFor(op, node string) (string, string, error) {
	tok, ok := b.m.server.Token(node)
	if !ok {
		return "", "", module.Errorf(module.CodeNotFound, op, "node %s has no agent token: call agent.token(node) before booting the ramdisk", node)
	}
	hb, ok := b.m.server.Agent(node)
	if !ok {
		return "", "", module.Errorf(module.CodeNotFound, op, "node %s: no agent heartbeat yet; call agent.wait_heartbeat(node) first", node)
	}
	return hb.AgentURL, tok, nil
}

func (b *binding) callbackURL(L *lua.LState) int {
	L.Push(lua.LString(agentapi.CallbackURL(b.r.Config(), b.m.server.URL())))
	return 1
}

func (b *binding) token(L *lua.LState) int {
	const op = "agent.token"
	node := b.nodeArg(L, 1, op)
	var tok string
	err := module.Record(b.r, op, map[string]any{"node": node}, func(context.Context) error {
		var err error
		tok, err = b.m.server.NewToken(node)
		if err == nil {
			b.r.AddSecret(tok)
		}
		return err
	})
	if err != nil {
		b.fail(L, op, err)
	}
	L.Push(lua.LString(tok))
	return 1
}

func (b *binding) forget(L *lua.LState) int {
	const op = "agent.forget"
	node := b.nodeArg(L, 1, op)
	_ = module.Record(b.r, op, map[string]any{"node": node}, func(context.Context) error {
		b.m.server.Forget(node)
		return nil
	})
	return 0
}

func heartbeatTable(L *lua.LState, hb agentapi.Heartbeat) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("node", lua.LString(hb.NodeUUID))
	t.RawSetString("agent_url", lua.LString(hb.AgentURL))
	t.RawSetString("agent_version", lua.LString(hb.AgentVersion))
	t.RawSetString("agent_status", lua.LString(hb.AgentStatus))
	t.RawSetString("last_heartbeat", lua.LNumber(float64(hb.At.UnixNano())/1e9))
	t.RawSetString("count", lua.LNumber(hb.Count))
	return t
}

func (b *binding) info(L *lua.LState) int {
	node := b.nodeArg(L, 1, "agent.info")
	hb, ok := b.m.server.Agent(node)
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(heartbeatTable(L, hb))
	return 1
}

// defaultHeartbeatTimeout reads [conductor] deploy_callback_timeout.
func (b *binding) defaultHeartbeatTimeout() time.Duration {
	if v, ok := b.r.Config().Get("conductor", "deploy_callback_timeout"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return DefaultHeartbeatTimeout
}

func (b *binding) waitHeartbeat(L *lua.LState) int {
	const op = "agent.wait_heartbeat"
	node := b.nodeArg(L, 1, op)
	opts := module.OptTable(L, 2, op)
	timeout := seconds(L, opts, "timeout", op)
	if timeout == 0 {
		timeout = b.defaultHeartbeatTimeout()
	}
	var after time.Time
	if v, ok := opts.RawGetString("after").(lua.LNumber); ok {
		after = time.Unix(0, int64(float64(v)*1e9))
	}
	var hb agentapi.Heartbeat
	err := module.Record(b.r, op, map[string]any{"node": node, "timeout_s": timeout.Seconds()}, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		hb, err = b.m.server.WaitHeartbeat(ctx, node, after)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return &module.Error{Code: module.CodeTimeout, Operation: op, Err: err,
				Message: fmt.Sprintf("no agent heartbeat from node %s within %s", node, timeout)}
		case errors.Is(err, agentapi.ErrNotExpected):
			return &module.Error{Code: module.CodeNotFound, Operation: op, Err: err,
				Message: fmt.Sprintf("node %s: %v", node, err)}
		case err != nil:
			return err
		}
		return nil
	})
	if err != nil {
		b.fail(L, op, err)
	}
	L.Push(heartbeatTable(L, hb))
	return 1
}

// resultTable converts a command result to Lua, raising on failure when
// check is set.
func (b *binding) finish(L *lua.LState, op string, res CommandResult, check bool) int {
	if check && (res.CommandStatus == StatusFailed || res.CommandStatus == StatusCleanVersionMismatch) {
		b.fail(L, op, module.Errorf(module.CodeError, op, "agent command %s %s: %s", res.CommandName, strings.ToLower(res.CommandStatus), res.ErrorMessage()))
	}
	L.Push(module.ToLua(L, res.Map()))
	return 1
}

func (b *binding) command(L *lua.LState) int {
	const op = "agent.command"
	node := b.nodeArg(L, 1, op)
	name := L.CheckString(2)
	if !strings.Contains(name, ".") {
		b.fail(L, op, module.Errorf(module.CodeInvalid, op, "command name %q must be <extension>.<command>, e.g. standby.prepare_image", name))
	}
	params := map[string]any{}
	switch v := L.Get(3).(type) {
	case *lua.LNilType:
	case *lua.LTable:
		m, ok := module.FromLua(v).(map[string]any)
		if !ok {
			b.fail(L, op, module.Errorf(module.CodeInvalid, op, "argument #3 (params) must be a table with string keys, not a list"))
		}
		params = m
	default:
		b.fail(L, op, module.Errorf(module.CodeInvalid, op, "argument #3 (params) must be a table, got %s", v.Type()))
	}
	opts := module.OptTable(L, 4, op)
	wait := boolOpt(L, opts, "wait", op, true)
	check := boolOpt(L, opts, "check", op, true)
	timeout := seconds(L, opts, "timeout", op)
	var res CommandResult
	fields := map[string]any{"node": node, "command": name, "wait": wait, "params": module.SortedKeys(params)}
	err := module.Record(b.r, op, fields, func(ctx context.Context) error {
		agentURL, tok, err := b.agentFor(op, node)
		if err != nil {
			return err
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		res, err = b.m.client.Run(ctx, agentURL, tok, name, params, wait)
		if err == nil {
			fields["status"] = res.CommandStatus
		}
		return classify(op, err)
	})
	if err != nil {
		b.fail(L, op, err)
	}
	return b.finish(L, op, res, check && wait)
}

func (b *binding) commands(L *lua.LState) int {
	const op = "agent.commands"
	node := b.nodeArg(L, 1, op)
	var list []CommandResult
	err := module.Record(b.r, op, map[string]any{"node": node}, func(ctx context.Context) error {
		agentURL, tok, err := b.agentFor(op, node)
		if err != nil {
			return err
		}
		list, err = b.m.client.List(ctx, agentURL, tok)
		return classify(op, err)
	})
	if err != nil {
		b.fail(L, op, err)
	}
	t := L.CreateTable(len(list), 0)
	for _, c := range list {
		t.Append(module.ToLua(L, c.Map()))
	}
	L.Push(t)
	return 1
}

// lastNamed returns the last command called name. IPA reports the short
// command name ("prepare_image" for "standby.prepare_image"), so both
// forms match.
func lastNamed(list []CommandResult, name string) (CommandResult, bool) {
	_, short, ok := strings.Cut(name, ".")
	if !ok {
		short = name
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].CommandName == name || list[i].CommandName == short {
			return list[i], true
		}
	}
	return CommandResult{}, false
}

func (b *binding) waitCommand(L *lua.LState) int {
	const op = "agent.wait_command"
	node := b.nodeArg(L, 1, op)
	name := L.CheckString(2)
	opts := module.OptTable(L, 3, op)
	timeout := seconds(L, opts, "timeout", op)
	interval := seconds(L, opts, "interval", op)
	if interval == 0 {
		interval = DefaultPollInterval
	}
	check := boolOpt(L, opts, "check", op, true)
	var res CommandResult
	fields := map[string]any{"node": node, "command": name}
	err := module.Record(b.r, op, fields, func(ctx context.Context) error {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var err error
		res, err = b.pollCommand(ctx, op, node, name, interval)
		if err == nil {
			fields["status"] = res.CommandStatus
		}
		return err
	})
	if err != nil {
		b.fail(L, op, err)
	}
	return b.finish(L, op, res, check)
}

// pollCommand re-reads the command list until the last command called
// name is done. It wakes at every heartbeat (IPA heartbeats when an
// asynchronous command ends) or after interval, and stops with ctx.
func (b *binding) pollCommand(ctx context.Context, op, node, name string, interval time.Duration) (CommandResult, error) {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var lastErr error
	for {
		changed, _ := b.m.server.Changed(node)
		agentURL, tok, err := b.agentFor(op, node)
		if err != nil {
			return CommandResult{}, err
		}
		list, err := b.m.client.List(ctx, agentURL, tok)
		if err == nil {
			res, ok := lastNamed(list, name)
			if !ok {
				return CommandResult{}, module.Errorf(module.CodeNotFound, op, "node %s: the agent has not run %s (start it with agent.command)", node, name)
			}
			if res.Done() {
				return res, nil
			}
			lastErr = nil
		} else if ctx.Err() == nil {
			lastErr = err // the agent may be briefly unreachable; retry
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				msg := fmt.Sprintf("agent command %s on node %s still running", name, node)
				if lastErr != nil {
					msg = fmt.Sprintf("agent command %s on node %s: %v", name, node, lastErr)
				}
				return CommandResult{}, &module.Error{Code: module.CodeTimeout, Operation: op, Message: msg, Err: ctx.Err()}
			}
			return CommandResult{}, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
		timer.Reset(interval) // Go ≥ 1.23 timers need no draining
	}
}
