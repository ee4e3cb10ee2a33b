package app

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckRunLimits(t *testing.T) {
	tests := []struct {
		name        string
		parallel    int
		parallelSet bool
		timeout     time.Duration
		timeoutSet  bool
		want        string // "" = valid
	}{
		{"defaults", 0, false, 0, false, ""},
		{"valid", 4, true, 90 * time.Second, true, ""},
		{"parallel 0", 0, true, 0, false, "--parallel 0: must be an integer from 1 to 10000"},
		{"parallel -1", -1, true, 0, false, "--parallel -1: must be an integer from 1 to 10000 (omit it to use [lightsout] max_parallel)"},
		{"parallel huge", MaxParallel + 1, true, 0, false, "--parallel 10001"},
		{"timeout -5s", 0, false, -5 * time.Second, true, "--timeout -5s: must be a duration of at least 1ms"},
		{"timeout 0", 0, false, 0, true, "--timeout 0s: must be a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRunLimits(tt.parallel, tt.parallelSet, tt.timeout, tt.timeoutSet)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ValidationError containing %q", err, tt.want)
			}
		})
	}
}
