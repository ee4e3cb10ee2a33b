package iloapi

import (
	"context"
	"errors"
	"fmt"
)

// StatusError carries the iLO's own status and message: a RIBCL STATUS
// code ("0x0035") or a Redfish HTTP status with its MessageId.
type StatusError struct {
	Protocol   string // "ribcl" or "redfish"
	Status     string // RIBCL "0x0035", Redfish MessageId such as "iLO.2.15.InvalidOperationForSystemState"
	HTTPStatus int    // Redfish HTTP status (0 for RIBCL)
	Message    string
}

func (e *StatusError) Error() string {
	switch {
	case e.HTTPStatus != 0 && e.Status != "":
		return fmt.Sprintf("%s HTTP %d %s: %s", e.Protocol, e.HTTPStatus, e.Status, e.Message)
	case e.HTTPStatus != 0:
		return fmt.Sprintf("%s HTTP %d: %s", e.Protocol, e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("%s status %s: %s", e.Protocol, e.Status, e.Message)
}

// UnavailableError says a protocol is not offered by this iLO (RIBCL
// disabled on iLO 5, absent on iLO 7; Redfish absent on old iLO 4). The
// router falls back to the other protocol on it.
type UnavailableError struct {
	Protocol string
	Reason   string
}

func (e *UnavailableError) Error() string {
	return e.Protocol + " is not available on this iLO: " + e.Reason
}

// PinMismatchError is returned when the iLO's certificate does not match
// the pinned SHA-256 fingerprint. It names both fingerprints.
type PinMismatchError struct {
	Address  string
	Expected string
	Got      string
}

func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("TLS certificate of iLO %s does not match the pinned fingerprint: pinned sha256 %s, presented sha256 %s "+
		"(if the iLO certificate was replaced on purpose, clear driver_internal_info ilo_cert_pin or set driver_info ilo_cert_pin to the new fingerprint)",
		e.Address, e.Expected, e.Got)
}

// Kind says what went wrong, independently of how a caller reports it
// (the ilo binding's Lua face maps each kind to a Lua error code).
// A Kind is itself an error so that errors.Is(err, KindTransient) works.
type Kind int

// The kinds of iLO client errors.
const (
	KindOther        Kind = iota // anything else (TLS set-up, decoding, ...)
	KindNotSupported             // the operation or protocol is not offered by this iLO
	KindLoginFailed              // the iLO refused the credentials
	KindTransient                // retried and still failing (5xx, reset, busy)
	KindILO                      // the iLO answered with an error status (see *StatusError)
	KindTimeout                  // the call's or the caller's deadline passed
	KindCancelled                // the caller cancelled
	KindInvalid                  // a bad argument from the caller
)

var kindNames = [...]string{"error", "not supported", "login failed", "transient", "iLO error", "timeout", "cancelled", "invalid argument"}

// String names the kind.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Error lets a Kind be the target of errors.Is.
func (k Kind) Error() string { return k.String() }

// Error is an iLO client error: its Kind, the operation ("set_host_power"),
// a message without secrets and the underlying error (a *StatusError for
// KindILO, an *UnavailableError for a missing protocol, ...).
type Error struct {
	Kind    Kind
	Op      string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Op != "" {
		return e.Op + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's Kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// KindOf returns the kind of err: an *Error's kind, KindTimeout and
// KindCancelled for context errors, else KindOther.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCancelled
	}
	return KindOther
}

// LoginFailed returns a KindLoginFailed error.
func LoginFailed(op, msg string, err error) error {
	return &Error{Kind: KindLoginFailed, Op: op, Message: msg, Err: err}
}

// NotSupported returns a KindNotSupported error.
func NotSupported(op, msg string, err error) error {
	return &Error{Kind: KindNotSupported, Op: op, Message: msg, Err: err}
}

// Unavailable returns a KindNotSupported error wrapping *UnavailableError.
func Unavailable(op, protocol, reason string) error {
	u := &UnavailableError{Protocol: protocol, Reason: reason}
	return &Error{Kind: KindNotSupported, Op: op, Message: u.Error(), Err: u}
}

// Transient returns a KindTransient error (retried by Retry).
func Transient(op, msg string, err error) error {
	return &Error{Kind: KindTransient, Op: op, Message: msg, Err: err}
}

// ILOError returns a KindILO error wrapping the iLO's status and message.
func ILOError(op string, se *StatusError) error {
	return &Error{Kind: KindILO, Op: op, Message: se.Error(), Err: se}
}

// Timeout returns a KindTimeout error.
func Timeout(op, msg string, err error) error {
	return &Error{Kind: KindTimeout, Op: op, Message: msg, Err: err}
}

// Invalid returns a KindInvalid error.
func Invalid(op, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Errorf returns a KindOther error.
func Errorf(op string, err error, format string, args ...any) error {
	return &Error{Kind: KindOther, Op: op, Message: fmt.Sprintf(format, args...), Err: err}
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// IsUnavailable reports whether err says the protocol is not offered.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// IsNotSupported reports whether err is of KindNotSupported.
func IsNotSupported(err error) bool { return KindOf(err) == KindNotSupported }

// WithOperation returns err with its operation set to op when it is an
// *Error without one; other errors become an *Error of their KindOf
// (context errors: KindTimeout, KindCancelled) so the kind survives.
func WithOperation(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "" {
			c := *e
			c.Op = op
			return &c
		}
		return err
	}
	return &Error{Kind: KindOf(err), Op: op, Message: err.Error(), Err: err}
}
