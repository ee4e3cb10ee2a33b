package module

import (
	"context"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Error codes raised to Lua. Scripts branch on err.code after pcall.
const (
	CodeNotSupported = "not_supported"    // operation not supported on this platform
	CodeLoginFailed  = "login_failed"     // BMC refused the credentials
	CodeTransient    = "transient"        // retried and still failing (5xx, reset, busy)
	CodeILOError     = "ilo_error"        // the iLO answered with an error status
	CodeIPMIError    = "ipmi_error"       // the BMC answered IPMI with a completion code (or garbage)
	CodeInvalid      = "invalid_argument" // bad argument from the script
	CodeTimeout      = "timeout"          // the run's or the call's deadline passed
	CodeCancelled    = "cancelled"        // the run was cancelled
	CodeNotFound     = "not_found"        // object, node, or file does not exist
	CodeForbidden    = "forbidden"        // outside the sandbox: another node, a path not allowed, a protected file
	CodeError        = "error"            // anything else

	CodeResourceLimit = "resource_limit" // the run went over a resource limit (memory, coroutines)
)

// Error is an error with a machine-readable code, raised to Lua as a table
// {code=..., message=..., operation=...}.
type Error struct {
	Code      string
	Message   string
	Operation string
	Err       error
}

func (e *Error) Error() string {
	if e.Operation != "" {
		return e.Operation + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code, operation, format string, args ...any) *Error {
	return &Error{Code: code, Operation: operation, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: an *Error's code, timeout/cancelled for
// context errors, else CodeError.
func CodeOf(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, context.Canceled):
		return CodeCancelled
	}
	return CodeError
}

// Raise raises err in L as an error table {code, message, operation} with a
// __tostring metamethod, so pcall users can branch on err.code and an
// uncaught error still prints a readable message. It does not return.
func Raise(L *lua.LState, operation string, err error) {
	var e *Error
	msg := err.Error()
	if errors.As(err, &e) && e.Operation != "" {
		operation = e.Operation
		msg = e.Message
	}
	L.Error(ErrorValue(L, CodeOf(err), operation, msg), 1)
}

// ErrorValue builds the Lua error table used by Raise.
func ErrorValue(L *lua.LState, code, operation, msg string) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("code", lua.LString(code))
	t.RawSetString("message", lua.LString(msg))
	if operation != "" {
		t.RawSetString("operation", lua.LString(operation))
	}
	mt := L.NewTable()
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		tb := L.CheckTable(1)
		s := lua.LVAsString(tb.RawGetString("message"))
		if op := lua.LVAsString(tb.RawGetString("operation")); op != "" {
			s = op + ": " + s
		}
		L.Push(lua.LString(s + " (" + lua.LVAsString(tb.RawGetString("code")) + ")"))
		return 1
	}))
	L.SetMetatable(t, mt)
	return t
}

// Record runs fn as one recorded call: it bounds fn by the run's context,
// measures it and records a "call" event named op with fields plus
// duration_ms, outcome ("ok" or the error code) and the error message.
func Record(r Run, op string, fields map[string]any, fn func(ctx context.Context) error) error {
	start := time.Now()
	err := fn(r.Context())
	data := make(map[string]any, len(fields)+3)
	for k, v := range fields {
		data[k] = v
	}
	data["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		data["outcome"] = CodeOf(err)
		data["error"] = err.Error()
	} else {
		data["outcome"] = "ok"
	}
	r.Event("call", op, data)
	return err
}

// Do is Record for a Lua-facing function: it records fn as one call and
// raises its error in L (with its code), so a binding's function body is
// just the call.
func Do(L *lua.LState, r Run, op string, fields map[string]any, fn func(ctx context.Context) error) {
	if err := Record(r, op, fields, fn); err != nil {
		Raise(L, op, err)
	}
}
