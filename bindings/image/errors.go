package image

import (
	"errors"
	"fmt"
)

// ErrInvalid matches (errors.Is) every error caused by bad input: a bad
// parameter, option, file name or size. The message names the field and
// the fix.
var ErrInvalid = errors.New("invalid argument")

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns an error matching ErrInvalid.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
