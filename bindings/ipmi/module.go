package ipmi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the `ipmi` Lua module: require("ipmi").connect([node][, opts]).
type Module struct{}

var _ module.Module = (*Module)(nil)

// NewModule returns the ipmi module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "ipmi" }

// ConfigRetryTimeout is the [ipmi] option bounding a call with its retries
// (Ironic's [ipmi] retry_timeout, seconds) where driver_info has no
// ipmi_retry_timeout.
const ConfigRetryTimeout = "retry_timeout"

// maxRetryTimeout is the longest retry timeout ParseDriverInfo accepts.
const maxRetryTimeout = 3600 * time.Second

// Recorded is a client whose every call is a recorded run event
// "ipmi.<operation>".
type Recorded struct {
	c      *Client
	run    module.Run
	fields map[string]any
}

// Connect builds a recorded client for run from driver_info (or a plain
// table's fields); nodeName ("" for credentials a script brings) goes in
// every call's record. The retry timeout is driver_info's, else [ipmi]
// retry_timeout, else the default; maxRetry (> 0) caps it, for a caller
// that can do without IPMI. The password becomes a run secret.
func (m *Module) Connect(run module.Run, info map[string]any, nodeName string, maxRetry time.Duration) (*Recorded, error) {
	if _, _, set := lookup(info, "retry_timeout"); !set && run.Config() != nil {
		if v, ok := run.Config().Get("ipmi", ConfigRetryTimeout); ok && strings.TrimSpace(v) != "" {
			info = withKey(info, "ipmi_retry_timeout", strings.TrimSpace(v))
		}
	}
	if maxRetry > 0 {
		secs := int(math.Ceil(maxRetry.Seconds()))
		v, _, set := lookup(info, "retry_timeout")
		cur, err := strconv.Atoi(strings.TrimSpace(asString(v)))
		// An unparsable value is left for ParseDriverInfo to report.
		if !set || (err == nil && secs < cur) {
			info = withKey(info, "ipmi_retry_timeout", secs)
		}
	}
	o, err := ParseDriverInfo(info)
	if o.Password != "" {
		run.AddSecret(o.Password)
	}
	if err != nil {
		return nil, module.Errorf(module.CodeInvalid, "ipmi.connect", "%s", err.Error())
	}
	c, err := New(o)
	if err != nil {
		return nil, toModuleError(err)
	}
	fields := map[string]any{"address": o.Address()}
	if nodeName != "" {
		fields["node"] = nodeName
	}
	return &Recorded{c: c, run: run, fields: fields}, nil
}

// Client returns the unrecorded client.
func (r *Recorded) Client() *Client { return r.c }

// call records fn as one call event "ipmi.<op>" with extra fields.
func (r *Recorded) call(op string, extra map[string]any, fn func(ctx context.Context) error) error {
	f := make(map[string]any, len(r.fields)+len(extra))
	for k, v := range r.fields {
		f[k] = v
	}
	for k, v := range extra {
		f[k] = v
	}
	return module.Record(r.run, "ipmi."+op, f, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return toModuleError(err)
		}
		return nil
	})
}

// toModuleError maps an *Error to the module's error codes. It names no
// operation: the Lua face raises it as the function the script called.
func toModuleError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	code := module.CodeIPMIError
	switch e.Kind {
	case KindLoginFailed:
		code = module.CodeLoginFailed
	case KindTimeout:
		code = module.CodeTimeout
	case KindInvalid:
		code = module.CodeInvalid
	case KindCancelled:
		code = module.CodeCancelled
	case KindUnsupported:
		code = module.CodeNotSupported
	}
	return &module.Error{Code: code, Message: e.Error(), Err: e}
}

// ClientType is the ipmi.client userdata ipmi.connect returns: its methods
// are the operations (luaMethods).
var ClientType = module.Type[*Recorded]{Name: "ipmi.client", Module: "ipmi", From: "ipmi.connect(node)"}

// Open implements module.Module: require("ipmi") gives {connect = fn}.
func (m *Module) Open(L *lua.LState, run module.Run) lua.LValue {
	ClientType.Register(L, luaMethods(), func(c *Recorded) string {
		return fmt.Sprintf("ipmi.client(%v)", c.fields["address"])
	})
	return module.API[module.Run]{
		// ipmi.connect([node | {address=, username=, password=, ...}][, {retry_timeout = seconds}]) -> ipmi.client
		//
		// retry_timeout: a caller that can do without IPMI (inspection)
		// caps its wait; a shorter ipmi_retry_timeout still wins.
		"connect": func(run module.Run, a *module.Args) int {
			info, name := connectArgs(run, a)
			maxRetry := a.Opts(2).Duration("retry_timeout", 0)
			if maxRetry > maxRetryTimeout {
				a.Invalid("opts.retry_timeout must be at most %d seconds, got %g", int(maxRetryTimeout.Seconds()), maxRetry.Seconds())
			}
			c, err := m.Connect(run, info, name, maxRetry)
			a.Check(err)
			a.L.Push(ClientType.New(a.L, c))
			return 1
		},
	}.Table(L, m.Name(), run)
}

// connectArgs reads connect's argument #1: nothing (the run's node), the
// run's node as a table, UUID or name (through Args.Node: any other node is
// forbidden), or a plain table of credentials. It returns the driver_info
// and the node's name ("" for credentials).
func connectArgs(run module.Run, a *module.Args) (map[string]any, string) {
	switch v := a.L.Get(1).(type) {
	case *lua.LNilType:
		if run.Node() == nil {
			a.Invalid("this run has no node: run it with --node, or pass {address=..., username=..., password=...}")
		}
	case lua.LString:
	case *lua.LTable:
		_, isNode := v.RawGetString("driver_info").(*lua.LTable)
		if !isNode && v.RawGetString("uuid") == lua.LNil && v.RawGetString("name") == lua.LNil {
			// Credentials the script brings itself: a BMC, not a node.
			out := map[string]any{}
			v.ForEach(func(k, v lua.LValue) {
				if ks, ok := k.(lua.LString); ok {
					out[string(ks)] = module.FromLua(v)
				}
			})
			return out, ""
		}
	default:
		a.Invalid("argument #1 (node) must be nil (the run's node), the node (table, UUID or name) or {address=..., username=..., password=...}, got %s", v.Type())
	}
	a.Node(run, 1) // raises forbidden for any node but the run's
	n := run.Node()
	return n.DriverInfo(), n.Name()
}
