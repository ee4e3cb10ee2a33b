package states

import (
	"errors"
	"strings"
	"testing"
)

func TestNext(t *testing.T) {
	tests := []struct{ from, event, to string }{
		{Enroll, "manage", Verifying},
		{Verifying, "done", Manageable},
		{Manageable, "provide", Cleaning},
		{Manageable, "inspect", Inspecting},
		{Inspecting, "fail", InspectFailed},
		{InspectFailed, "manage", Manageable},
		{Available, "deploy", Deploying},
		{Deploying, "wait", WaitCallBack},
		{WaitCallBack, "resume", Deploying},
		{Deploying, "done", Active},
		{Deploying, "fail", DeployFailed},
		{Active, "delete", Deleting},
		{Deleting, "clean", Cleaning},
		{Cleaning, "wait", CleanWait},
		{CleanWait, "fail", CleanFailed},
		{Cleaning, "done", Available},
		{Cleaning, "manual_done", Manageable},
		{CleanFailed, "manage", Manageable},
	}
	for _, tt := range tests {
		got, err := Next(tt.from, tt.event)
		if err != nil || got != tt.to {
			t.Errorf("Next(%q, %q) = %q, %v; want %q", tt.from, tt.event, got, err, tt.to)
		}
	}
}

func TestInvalidTransitionNamesStateAndAllowed(t *testing.T) {
	_, err := Next(Active, "deploy")
	var te *TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`"active"`, `"deploy"`, "delete, rebuild"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// TestFailureOfIsTheFailEvent: every transient state has a failure state,
// reached by its "fail" event; stable and failed states have none; abort
// leaves the wait states as Ironic's abort does.
func TestFailureOfIsTheFailEvent(t *testing.T) {
	tests := []struct {
		state, want string
		transient   bool
	}{
		{Deploying, DeployFailed, true},
		{WaitCallBack, DeployFailed, true},
		{Cleaning, CleanFailed, true},
		{CleanWait, CleanFailed, true},
		{Inspecting, InspectFailed, true},
		{InspectWait, InspectFailed, true},
		{Deleting, Error, true},
		{Verifying, Enroll, true},
		{Active, "", false},
		{Available, "", false},
		{DeployFailed, "", false},
		{Manageable, "", false},
	}
	for _, tt := range tests {
		to, ok := FailureOf(tt.state)
		if ok != tt.transient || to != tt.want {
			t.Errorf("FailureOf(%q) = %q, %v; want %q, %v", tt.state, to, ok, tt.want, tt.transient)
		}
		if !ok {
			continue
		}
		if next, err := Next(tt.state, "fail"); err != nil || next != to {
			t.Errorf("%q fail -> %q, %v; want %q", tt.state, next, err, to)
		}
	}
	for from, to := range map[string]string{WaitCallBack: DeployFailed, CleanWait: CleanFailed, InspectWait: InspectFailed} {
		if next, err := Next(from, "abort"); err != nil || next != to {
			t.Errorf("%q abort -> %q, %v; want %q", from, next, err, to)
		}
	}
	// From the failure states the verbs work again, as in Ironic.
	for _, tt := range []struct{ from, event string }{
		{DeployFailed, "deploy"}, {DeployFailed, "delete"}, {Error, "delete"},
		{CleanFailed, "manage"}, {InspectFailed, "manage"}, {Manageable, "provide"},
	} {
		if _, err := Next(tt.from, tt.event); err != nil {
			t.Errorf("%s from %s: %v", tt.event, tt.from, err)
		}
	}
}
