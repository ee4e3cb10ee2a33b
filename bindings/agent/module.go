package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

	mu         sync.Mutex
	tlsClients map[string]caClient // by node, for agents with agent_verify_ca
}

// caClient is a client trusting one agent's certificate.
type caClient struct {
	ca     string
	client *Client
}

// NewModule returns the `agent` module backed by the callback server.
func NewModule(server *agentapi.Server) *Module {
	return &Module{server: server, client: &Client{HTTP: &http.Client{}}, tlsClients: map[string]caClient{}}
}

// Name implements module.Module.
func (m *Module) Name() string { return "agent" }

// Open implements module.Module: require("agent") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r, sent: map[string]sentCall{}})
}

// api is the Lua face of agent. Every function acting on a node takes it
// as its first argument, optional: nil or absent is the run's node (a
// script may not read, rotate or revoke another node's agent token).
func api() module.API[*face] {
	return module.API[*face]{
		"callback_url":   (*face).callbackURL,
		"token":          (*face).token,
		"forget":         (*face).forget,
		"info":           (*face).info,
		"wait_heartbeat": (*face).waitHeartbeat,
		"command":        (*face).command,
		"commands":       (*face).commands,
		"wait_command":   (*face).waitCommand,
	}
}

// face is the agent module opened for one run.
type face struct {
	m *Module
	r module.Run
	// sent holds, per command name, the parameters of the run's last call
	// that ironic-python-agent does not take (see ExtensionParams), so that
	// wait_command can explain an asynchronous command IPA failed for them.
	sent map[string]sentCall
}

// sentCall is what wait_command needs of an earlier agent.command.
type sentCall struct {
	name   string
	params map[string]any
}

// fail redacts err with the run's secrets and raises it.
func (f *face) fail(a *module.Args, err error) {
	e := &module.Error{Code: module.CodeOf(err), Operation: a.Op, Message: f.r.Redact(err.Error())}
	var me *module.Error
	if errors.As(err, &me) {
		e.Message = f.r.Redact(me.Message)
	}
	a.Raise(e)
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
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		// not going away with a retry: the agent's https certificate is
		// not the agent_verify_ca it sent (or it sent none)
		return &module.Error{Code: module.CodeError, Operation: op, Err: err, Message: err.Error() +
			" (an https agent is trusted through the agent_verify_ca of its heartbeats, as IPA's automatic TLS sends)"}
	}
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

// agentFor returns the agent URL, token and the client to call it with of
// a node that heartbeated.
func (f *face) agentFor(op, node string) (string, string, *Client, error) {
	tok, ok := f.m.server.Token(node)
	if !ok {
		return "", "", nil, module.Errorf(module.CodeNotFound, op, "node %s has no agent token: call agent.token(node) before booting the ramdisk", node)
	}
	hb, ok := f.m.server.Agent(node)
	if !ok {
		return "", "", nil, module.Errorf(module.CodeNotFound, op, "node %s: no agent heartbeat yet; call agent.wait_heartbeat(node) first", node)
	}
	c, err := f.m.clientFor(node, hb.AgentVerifyCA)
	if err != nil {
		return "", "", nil, module.Errorf(module.CodeError, op, "node %s: %v", node, err)
	}
	return hb.AgentURL, tok, c, nil
}

// clientFor returns the client for a node's agent: the shared one, or,
// when the agent sent agent_verify_ca (IPA's automatic TLS), one trusting
// only that certificate, kept while the node's agent keeps it.
func (m *Module) clientFor(node, caPEM string) (*Client, error) {
	if caPEM == "" {
		return m.client, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.tlsClients[node]; ok && c.ca == caPEM {
		return c.client, nil
	}
	c, err := NewClientWithCA(caPEM)
	if err != nil {
		return nil, err
	}
	if old, ok := m.tlsClients[node]; ok {
		old.client.HTTP.CloseIdleConnections()
	}
	m.tlsClients[node] = caClient{ca: caPEM, client: c}
	return c, nil
}

func (f *face) callbackURL(a *module.Args) int {
	a.L.Push(lua.LString(agentapi.CallbackURL(f.r.Config(), f.m.server.URL())))
	return 1
}

func (f *face) token(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	var tok string
	err := module.Record(f.r, op, map[string]any{"node": node}, func(context.Context) error {
		var err error
		tok, err = f.m.server.NewToken(node)
		if err == nil {
			f.r.AddSecret(tok)
		}
		return err
	})
	if err != nil {
		f.fail(a, err)
	}
	a.L.Push(lua.LString(tok))
	return 1
}

func (f *face) forget(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	_ = module.Record(f.r, op, map[string]any{"node": node}, func(context.Context) error {
		f.m.server.Forget(node)
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

func (f *face) info(a *module.Args) int {
	node := a.Node(f.r, 1)
	hb, ok := f.m.server.Agent(node)
	if !ok {
		a.L.Push(lua.LNil)
		return 1
	}
	a.L.Push(heartbeatTable(a.L, hb))
	return 1
}

// defaultHeartbeatTimeout reads [conductor] deploy_callback_timeout.
func (f *face) defaultHeartbeatTimeout() time.Duration {
	if v, ok := f.r.Config().Get("conductor", "deploy_callback_timeout"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return DefaultHeartbeatTimeout
}

// DefaultCommandTimeout bounds one request to the agent that does not
// wait for a command to finish (Ironic's [agent] command_timeout).
const DefaultCommandTimeout = 60 * time.Second

// commandTimeout reads [agent] command_timeout (seconds). A request needs
// a bound of its own: an agent whose machine powers off (or dies) before
// its answer leaves the wire never answers and, on a real network, never
// resets the connection either, so without it the call would wait for the
// whole run's timeout.
func (f *face) commandTimeout() time.Duration {
	if v, ok := f.r.Config().Get("agent", "command_timeout"); ok {
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && n > 0 {
			return time.Duration(n * float64(time.Second))
		}
	}
	return DefaultCommandTimeout
}

func (f *face) waitHeartbeat(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	opts := a.Opts(2)
	timeout := opts.Duration("timeout", 0)
	if timeout == 0 {
		timeout = f.defaultHeartbeatTimeout()
	}
	var after time.Time
	if v := opts.Number("after", 0); v > 0 {
		after = time.Unix(0, int64(v*1e9))
	}
	var hb agentapi.Heartbeat
	err := module.Record(f.r, op, map[string]any{"node": node, "timeout_s": timeout.Seconds()}, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		hb, err = f.m.server.WaitHeartbeat(ctx, node, after)
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
		f.fail(a, err)
	}
	a.L.Push(heartbeatTable(a.L, hb))
	return 1
}

// resultTable converts a command result to Lua, raising on failure when
// check is set.
func (f *face) finish(a *module.Args, res CommandResult, check bool) int {
	op := a.Op
	if check && (res.CommandStatus == StatusFailed || res.CommandStatus == StatusCleanVersionMismatch) {
		f.fail(a, module.Errorf(module.CodeError, op, "agent command %s %s: %s", res.CommandName, strings.ToLower(res.CommandStatus), res.ErrorMessage()))
	}
	a.L.Push(module.ToLua(a.L, res.Map()))
	return 1
}

func (f *face) command(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	name := a.NonEmpty(2, "command")
	if !strings.Contains(name, ".") {
		f.fail(a, module.Errorf(module.CodeInvalid, op, "command name %q must be <extension>.<command>, e.g. standby.prepare_image", name))
	}
	params := map[string]any{}
	switch v := a.L.Get(3).(type) {
	case *lua.LNilType:
	case *lua.LTable:
		m, ok := module.FromLua(v).(map[string]any)
		if !ok {
			f.fail(a, module.Errorf(module.CodeInvalid, op, "argument #3 (params) must be a table with string keys, not a list"))
		}
		params = m
	default:
		f.fail(a, module.Errorf(module.CodeInvalid, op, "argument #3 (params) must be a table, got %s", v.Type()))
	}
	opts := a.Opts(4)
	wait := opts.Bool("wait", true)
	check := opts.Bool("check", true)
	timeout := opts.Duration("timeout", 0)
	if timeout == 0 && !wait {
		timeout = f.commandTimeout() // the agent answers at once; a silent one is gone
	}
	var res CommandResult
	fields := map[string]any{"node": node, "command": name, "wait": wait, "params": module.SortedKeys(params)}
	err := module.Record(f.r, op, fields, func(ctx context.Context) error {
		agentURL, tok, client, err := f.agentFor(op, node)
		if err != nil {
			return err
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if hb, ok := f.m.server.Agent(node); ok {
			if err := preflightExtensions(op, node, hb.AgentVersion, name, params); err != nil {
				return err
			}
		}
		f.sent[shortName(name)] = sentCall{name: name, params: params}
		res, err = client.Run(ctx, agentURL, tok, name, params, wait)
		if err == nil {
			fields["status"] = res.CommandStatus
		}
		if e := extensionError(op, name, params, err, res); e != nil {
			return e
		}
		if e := missingExtension(op, name, err); e != nil {
			return e
		}
		return classify(op, err)
	})
	if err != nil {
		f.fail(a, err)
	}
	return f.finish(a, res, check && wait)
}

func (f *face) commands(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	var list []CommandResult
	err := module.Record(f.r, op, map[string]any{"node": node}, func(ctx context.Context) error {
		agentURL, tok, client, err := f.agentFor(op, node)
		if err != nil {
			return err
		}
		list, err = client.List(ctx, agentURL, tok)
		return classify(op, err)
	})
	if err != nil {
		f.fail(a, err)
	}
	t := a.L.CreateTable(len(list), 0)
	for _, c := range list {
		t.Append(module.ToLua(a.L, c.Map()))
	}
	a.L.Push(t)
	return 1
}

// shortName is a command name without its extension ("prepare_image" for
// "standby.prepare_image"), as IPA reports it in command_name.
func shortName(name string) string {
	if _, short, ok := strings.Cut(name, "."); ok {
		return short
	}
	return name
}

// lastNamed returns the last command called name. IPA reports the short
// command name ("prepare_image" for "standby.prepare_image"), so both
// forms match.
func lastNamed(list []CommandResult, name string) (CommandResult, bool) {
	short := shortName(name)
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].CommandName == name || list[i].CommandName == short {
			return list[i], true
		}
	}
	return CommandResult{}, false
}

func (f *face) waitCommand(a *module.Args) int {
	op := a.Op
	node := a.Node(f.r, 1)
	name := a.NonEmpty(2, "command")
	opts := a.Opts(3)
	timeout := opts.Duration("timeout", 0)
	interval := opts.Duration("interval", DefaultPollInterval)
	check := opts.Bool("check", true)
	var res CommandResult
	fields := map[string]any{"node": node, "command": name}
	err := module.Record(f.r, op, fields, func(ctx context.Context) error {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		var err error
		res, err = f.pollCommand(ctx, op, node, name, interval)
		if err == nil {
			fields["status"] = res.CommandStatus
			if c, ok := f.sent[shortName(name)]; ok && check {
				if e := extensionError(op, c.name, c.params, nil, res); e != nil {
					return e
				}
			}
		}
		return err
	})
	if err != nil {
		f.fail(a, err)
	}
	return f.finish(a, res, check)
}

// ProgressLogInterval is the least time between two "writing image" log
// lines of a run (the agent's heartbeats may come more often).
const ProgressLogInterval = 5 * time.Second

// progressLog turns the deploy_progress of heartbeats into run log lines,
// at most one per ProgressLogInterval (and one for the last heartbeat
// showing the whole image written).
type progressLog struct {
	last    time.Time
	lastHB  time.Time
	printed bool
}

func (p *progressLog) report(r module.Run, hb agentapi.Heartbeat, now time.Time) {
	if hb.Progress == nil || hb.Progress.Written == 0 || !hb.At.After(p.lastHB) {
		return // nothing written yet: the first line shows the write moving
	}
	pr := *hb.Progress
	done := pr.Total > 0 && pr.Written >= pr.Total
	if p.printed && now.Sub(p.last) < ProgressLogInterval && !done {
		return
	}
	p.lastHB, p.last, p.printed = hb.At, now, true
	msg := fmt.Sprintf("writing image: %.0f MB at %.1f MB/s", float64(pr.Written)/1e6, float64(pr.Rate)/1e6)
	if pc := pr.Percent(); pc >= 0 {
		msg = fmt.Sprintf("writing image: %d%% of %.0f MB at %.1f MB/s", pc, float64(pr.Total)/1e6, float64(pr.Rate)/1e6)
	}
	r.Log(slog.LevelInfo, msg, map[string]any{"written": pr.Written, "total": pr.Total, "rate": pr.Rate, "percent": pr.Percent()})
}

// pollCommand re-reads the command list until the last command called
// name is done. It wakes at every heartbeat (IPA heartbeats when an
// asynchronous command ends) or after interval, and stops with ctx.
func (f *face) pollCommand(ctx context.Context, op, node, name string, interval time.Duration) (CommandResult, error) {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	var lastErr error
	var prog progressLog
	for {
		if hb, ok := f.m.server.Agent(node); ok {
			prog.report(f.r, hb, time.Now())
		}
		changed, _ := f.m.server.Changed(node)
		agentURL, tok, client, err := f.agentFor(op, node)
		if err != nil {
			return CommandResult{}, err
		}
		lctx, cancel := context.WithTimeout(ctx, f.commandTimeout()) // one silent poll must not take the whole wait
		list, err := client.List(lctx, agentURL, tok)
		cancel()
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
