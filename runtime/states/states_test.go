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
