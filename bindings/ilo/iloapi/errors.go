package iloapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/lightsout/lightsout/runtime/module"
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

// LoginFailed returns a login_failed error.
func LoginFailed(op, msg string, err error) error {
	return &module.Error{Code: module.CodeLoginFailed, Operation: op, Message: msg, Err: err}
}

// NotSupported returns a not_supported error.
func NotSupported(op, msg string, err error) error {
	return &module.Error{Code: module.CodeNotSupported, Operation: op, Message: msg, Err: err}
}

// Unavailable returns a not_supported error wrapping *UnavailableError.
func Unavailable(op, protocol, reason string) error {
	u := &UnavailableError{Protocol: protocol, Reason: reason}
	return &module.Error{Code: module.CodeNotSupported, Operation: op, Message: u.Error(), Err: u}
}

// Transient returns a transient error (retried by Retry).
func Transient(op, msg string, err error) error {
	return &module.Error{Code: module.CodeTransient, Operation: op, Message: msg, Err: err}
}

// ILOError returns an ilo_error wrapping the iLO's status and message.
func ILOError(op string, se *StatusError) error {
	return &module.Error{Code: module.CodeILOError, Operation: op, Message: se.Error(), Err: se}
}

// Invalid returns an invalid_argument error.
func Invalid(op, format string, args ...any) error {
	return &module.Error{Code: module.CodeInvalid, Operation: op, Message: fmt.Sprintf(format, args...)}
}

// Errorf returns a generic error with code "error".
func Errorf(op string, err error, format string, args ...any) error {
	return &module.Error{Code: module.CodeError, Operation: op, Message: fmt.Sprintf(format, args...), Err: err}
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return module.CodeOf(err) == module.CodeTransient }

// IsUnavailable reports whether err says the protocol is not offered.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// IsNotSupported reports whether err has the not_supported code.
func IsNotSupported(err error) bool { return module.CodeOf(err) == module.CodeNotSupported }

// WithOperation returns err with its operation set to op when it is an
// *module.Error without one; context errors become timeout/cancelled
// *module.Error values so the code survives.
func WithOperation(op string, err error) error {
	if err == nil {
		return nil
	}
	var me *module.Error
	if errors.As(err, &me) {
		if me.Operation == "" {
			c := *me
			c.Operation = op
			return &c
		}
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &module.Error{Code: module.CodeTimeout, Operation: op, Message: err.Error(), Err: err}
	case errors.Is(err, context.Canceled):
		return &module.Error{Code: module.CodeCancelled, Operation: op, Message: err.Error(), Err: err}
	}
	return &module.Error{Code: module.CodeError, Operation: op, Message: err.Error(), Err: err}
}
