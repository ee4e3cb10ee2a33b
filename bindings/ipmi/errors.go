package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	gotypes "github.com/bougou/go-ipmi/pkg/types"
)

// Kind classifies an IPMI failure.
type Kind string

// Error kinds. The Lua face raises them as err.code.
const (
	KindLoginFailed Kind = "login_failed" // the BMC refused the user, password or privilege
	KindTimeout     Kind = "timeout"      // no answer before the deadline (unreachable, wrong cipher suite, ...)
	KindIPMIError   Kind = "ipmi_error"   // the BMC answered with a completion code, or garbage
	KindInvalid     Kind = "invalid_argument"
	KindCancelled   Kind = "cancelled"
	KindUnsupported Kind = "not_supported"
)

// Error is an IPMI failure. It never carries the password.
type Error struct {
	Kind    Kind
	Op      string // e.g. "power_on"
	Address string // host:port
	// CC is the completion code when the BMC answered with one (HasCC).
	CC      uint8
	HasCC   bool
	Message string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ipmi ")
	b.WriteString(e.Op)
	if e.Address != "" {
		b.WriteString(" on ")
		b.WriteString(e.Address)
	}
	b.WriteString(": ")
	if e.HasCC {
		fmt.Fprintf(&b, "completion code 0x%02x (%s)", e.CC, CompletionCodeMeaning(e.CC))
		if e.Message != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// CompletionCodeMeaning is the IPMI 2.0 spec's name of a generic completion
// code (Table 5-2).
func CompletionCodeMeaning(cc uint8) string {
	switch cc {
	case 0x00:
		return "command completed normally"
	case 0xc0:
		return "node busy"
	case 0xc1:
		return "invalid command"
	case 0xc2:
		return "command invalid for given LUN"
	case 0xc3:
		return "timeout while processing command"
	case 0xc4:
		return "out of space"
	case 0xc5:
		return "reservation canceled or invalid reservation ID"
	case 0xc6:
		return "request data truncated"
	case 0xc7:
		return "request data length invalid"
	case 0xc8:
		return "request data field length limit exceeded"
	case 0xc9:
		return "parameter out of range"
	case 0xca:
		return "cannot return number of requested data bytes"
	case 0xcb:
		return "requested sensor, data, or record not present"
	case 0xcc:
		return "invalid data field in request"
	case 0xcd:
		return "command illegal for specified sensor or record type"
	case 0xce:
		return "command response could not be provided"
	case 0xcf:
		return "cannot execute duplicated request"
	case 0xd0:
		return "SDR repository in update mode"
	case 0xd1:
		return "device in firmware update mode"
	case 0xd2:
		return "BMC initialization in progress"
	case 0xd3:
		return "destination unavailable"
	case 0xd4:
		return "insufficient privilege level"
	case 0xd5:
		return "command not supported in present state"
	case 0xd6:
		return "command sub-function disabled or unavailable"
	case 0xff:
		return "unspecified error"
	}
	if cc >= 0x01 && cc <= 0x7e {
		return "device-specific (OEM) completion code"
	}
	if cc >= 0x80 && cc <= 0xbe {
		return "command-specific completion code"
	}
	return "unknown completion code"
}

// retryable reports whether a completion code is worth another attempt.
func retryable(cc uint8) bool { return cc == 0xc0 || cc == 0xc3 || cc == 0xce || cc == 0xd2 }

// classify turns a go-ipmi error into an *Error. connecting is true while the
// session is being set up (where a refusal means bad credentials).
func classify(ctx context.Context, op string, o Options, connecting bool, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := strings.Join(strings.Fields(scrub(err.Error(), o.Password)), " ")
	out := &Error{Op: op, Address: o.Address(), Message: msg, Err: errors.New(msg)}
	var nerr net.Error
	var rerr *gotypes.ResponseError
	low := strings.ToLower(msg)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		out.Kind = KindCancelled
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
		out.Kind = KindTimeout
		out.Message = "no answer before the deadline (is the BMC reachable on UDP, IPMI over LAN enabled, the cipher suite offered?): " + msg
	case errors.As(err, &rerr):
		out.Kind, out.CC, out.HasCC = KindIPMIError, uint8(rerr.CompletionCode()), true
		out.Message = msg
		if connecting && (out.CC == 0x81 || out.CC == 0x86 || out.CC == 0xd4) {
			out.Kind = KindLoginFailed
		}
	case connecting && (strings.Contains(low, "rakp") && (strings.Contains(low, "mismatch") || strings.Contains(low, "authentication")) ||
		strings.Contains(low, "unauthorized name") || strings.Contains(low, "invalid integrity check") ||
		strings.Contains(low, "invalid role") || strings.Contains(low, "insufficient resources for role")):
		out.Kind = KindLoginFailed
		out.Message = "the BMC refused the credentials (check ipmi_username, ipmi_password and ipmi_priv_level): " + msg
	case connecting && (strings.Contains(low, "cipher") || strings.Contains(low, "no matching cipher") || strings.Contains(low, "invalid authentication algorithm")):
		out.Kind = KindIPMIError
		out.Message = fmt.Sprintf("cipher suite %d was refused (set ipmi_cipher_suite to one the BMC offers, e.g. 3): %s", o.CipherSuite, msg)
	case errors.As(err, &nerr) && nerr.Timeout(), strings.Contains(low, "i/o timeout"), strings.Contains(low, "deadline"),
		strings.Contains(low, "connection refused"), strings.Contains(low, "no datagram matched"):
		out.Kind = KindTimeout
		out.Message = "no answer from the BMC (is it reachable on UDP, IPMI over LAN enabled, the cipher suite offered?): " + msg
	default:
		out.Kind = KindIPMIError
	}
	return out
}

// scrub removes the password from a message (go-ipmi never prints it, but
// a message must not carry it whatever a library does).
func scrub(s, password string) string {
	if password == "" {
		return s
	}
	return strings.ReplaceAll(s, password, "******")
}
