package ilo

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// Recorded wraps a Client so that every call becomes a "call" event of
// the run (operation, duration, outcome, protocol; never a secret) and
// every error carries its Lua code. Go callers that get it from a Lua
// userdata (agent) are recorded too; a binding that records each BMC step
// itself takes [Recorded.Unrecorded] so that each call is one event. Each
// call is bounded by both its own ctx and the run's context.
type Recorded struct {
	ops
	inner  Client
	run    module.Run
	fields map[string]any
}

var _ Client = (*Recorded)(nil)

// NewRecorded wraps c for run; fields (e.g. node, address) go into every event.
func NewRecorded(c Client, run module.Run, fields map[string]any) *Recorded {
	r := &Recorded{inner: c, run: run, fields: fields}
	r.ops = ops{recordLayer{r}}
	return r
}

// Inner returns the wrapped client.
func (r *Recorded) Inner() Client { return r.inner }

// Unrecorded returns the wrapped client with the Recorded's error codes
// but no events, for callers that record the call themselves.
func (r *Recorded) Unrecorded() iloapi.Client { return ops{unrecordedLayer{r.inner}} }

// recordLayer records each call as an event named "ilo."+op.
type recordLayer struct{ r *Recorded }

func (l recordLayer) do(ctx context.Context, c call, fn func(inner Client, ctx context.Context) (any, error)) (any, error) {
	r := l.r
	if c.secret != "" {
		r.run.AddSecret(c.secret)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.run.Context(), cancel)
	defer stop()
	ci := &callInfo{}
	ctx = context.WithValue(ctx, callInfoKey{}, ci)
	start := time.Now()
	v, err := fn(r.inner, ctx)
	err = luaError(c.op, err)
	if err != nil && r.run.Context().Err() != nil && ctx.Err() != nil {
		// The run itself ended: report that, not the transport's view of it.
		err = withRunErr(c.op, r.run.Context().Err(), err)
	}
	data := make(map[string]any, len(r.fields)+len(c.args)+6)
	for k, v := range r.fields {
		data[k] = v
	}
	for k, a := range c.args {
		if s, ok := a.(string); ok {
			a = r.run.Redact(s)
		}
		data[k] = a
	}
	ci.mu.Lock()
	if ci.protocol != "" {
		data["protocol"] = ci.protocol
	}
	if ci.model != "" {
		data["model"] = ci.model
	}
	ci.mu.Unlock()
	if err == nil {
		if res := c.recordedResult(v); res != nil {
			data["result"] = res
		}
	}
	data["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		data["outcome"] = luaCode(err)
		data["error"] = r.run.Redact(err.Error())
	} else {
		data["outcome"] = "ok"
	}
	r.run.Event("call", "ilo."+c.op, data)
	return v, err
}

// luaCodes maps the iLO client's error kinds to the Lua error codes.
var luaCodes = map[iloapi.Kind]string{
	iloapi.KindOther:        module.CodeError,
	iloapi.KindNotSupported: module.CodeNotSupported,
	iloapi.KindLoginFailed:  module.CodeLoginFailed,
	iloapi.KindTransient:    module.CodeTransient,
	iloapi.KindILO:          module.CodeILOError,
	iloapi.KindTimeout:      module.CodeTimeout,
	iloapi.KindCancelled:    module.CodeCancelled,
	iloapi.KindInvalid:      module.CodeInvalid,
}

// luaCode is the Lua error code of err: a *module.Error's own code, else
// the code of its iLO client kind.
func luaCode(err error) string {
	var me *module.Error
	if err == nil {
		return ""
	}
	if errors.As(err, &me) {
		return me.Code
	}
	if c, ok := luaCodes[iloapi.KindOf(err)]; ok {
		return c
	}
	return module.CodeError
}

// luaError turns an iLO client error of operation op into the
// *module.Error the Lua face raises and records (code, operation
// "ilo.<op>", message; the original wrapped).
func luaError(op string, err error) error {
	var me *module.Error
	if err == nil || errors.As(err, &me) {
		return err
	}
	// err.operation is "<module>.<function>", as the event name
	out := &module.Error{Code: luaCode(err), Operation: "ilo." + op, Message: err.Error(), Err: err}
	var ie *iloapi.Error
	if errors.As(err, &ie) && ie.Op != "" {
		out.Message = ie.Message
		if ie.Op != op { // a step of the call (the probe): say which
			out.Message = ie.Op + ": " + ie.Message
		}
	}
	return out
}

func withRunErr(op string, runErr, err error) error {
	code := module.CodeCancelled
	if runErr == context.DeadlineExceeded {
		code = module.CodeTimeout
	}
	return &module.Error{Code: code, Operation: "ilo." + op, Message: "run ended: " + err.Error(), Err: err}
}

// stripQuery drops the query of a URL for recording: temp URLs carry their
// signature (a bearer credential) there.
func stripQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
