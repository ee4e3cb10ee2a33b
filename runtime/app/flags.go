package app

import (
	"fmt"
	"math"
	"time"
)

// MaxParallel bounds --parallel and [lightsout] max_parallel.
const MaxParallel = 10000

// CheckIntFlag validates a numeric command-line flag: min <= v <= max.
// hint says what leaving the flag out does ("" when nothing). The error is
// a *ValidationError (exit code 2) naming the flag and the allowed range.
func CheckIntFlag(flag string, v, min, max int64, hint string) error {
	if v >= min && v <= max {
		return nil
	}
	rng := fmt.Sprintf("an integer from %d to %d", min, max)
	if max == math.MaxInt64 {
		rng = fmt.Sprintf("an integer >= %d", min)
	}
	return invalid("--%s %d: must be %s%s", flag, v, rng, hintSuffix(hint))
}

// CheckDurationFlag validates a duration flag: min <= d <= max.
func CheckDurationFlag(flag string, d, min, max time.Duration, hint string) error {
	if d >= min && d <= max {
		return nil
	}
	rng := fmt.Sprintf("a duration from %s to %s such as 30s, 10m or 2h", min, max)
	if max == math.MaxInt64 {
		rng = fmt.Sprintf("a duration of at least %s such as 30s, 10m or 2h", min)
	}
	return invalid("--%s %s: must be %s%s", flag, d, rng, hintSuffix(hint))
}

func hintSuffix(h string) string {
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// CheckRunLimits validates --parallel and --timeout of run commands when
// they were given (a zero value means "not given": the config default).
func CheckRunLimits(parallel int, parallelSet bool, timeout time.Duration, timeoutSet bool) error {
	if parallelSet {
		if err := CheckIntFlag("parallel", int64(parallel), 1, MaxParallel, "omit it to use [lightsout] max_parallel"); err != nil {
			return err
		}
	}
	if timeoutSet {
		if err := CheckDurationFlag("timeout", timeout, time.Millisecond, math.MaxInt64, "omit it to use [lightsout] run_timeout"); err != nil {
			return err
		}
	}
	return nil
}
