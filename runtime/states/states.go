// Package states is the node provision state machine, as Ironic's (see
// ironic-ilo-behaviour §9). The store enforces it on every change.
package states

import (
	"fmt"
	"sort"
	"strings"
)

// Provision states (API values, as Ironic's).
const (
	Enroll        = "enroll"
	Verifying     = "verifying"
	Manageable    = "manageable"
	Available     = "available"
	Deploying     = "deploying"
	WaitCallBack  = "wait call-back"
	DeployFailed  = "deploy failed"
	Active        = "active"
	Deleting      = "deleting"
	Cleaning      = "cleaning"
	CleanWait     = "clean wait"
	CleanFailed   = "clean failed"
	Inspecting    = "inspecting"
	InspectWait   = "inspect wait"
	InspectFailed = "inspect failed"
	Error         = "error"
)

// transitions maps state -> event -> next state.
var transitions = map[string]map[string]string{
	Enroll:        {"manage": Verifying},
	Verifying:     {"done": Manageable, "fail": Enroll},
	Manageable:    {"provide": Cleaning, "clean": Cleaning, "inspect": Inspecting, "manage": Manageable},
	Inspecting:    {"done": Manageable, "fail": InspectFailed, "wait": InspectWait},
	InspectWait:   {"done": Manageable, "fail": InspectFailed, "resume": Inspecting, "abort": InspectFailed},
	InspectFailed: {"manage": Manageable, "inspect": Inspecting},
	Available:     {"deploy": Deploying, "manage": Manageable},
	Deploying:     {"wait": WaitCallBack, "done": Active, "fail": DeployFailed},
	WaitCallBack:  {"resume": Deploying, "fail": DeployFailed, "delete": Deleting, "abort": DeployFailed},
	DeployFailed:  {"deploy": Deploying, "rebuild": Deploying, "delete": Deleting},
	Active:        {"rebuild": Deploying, "delete": Deleting},
	Error:         {"rebuild": Deploying, "delete": Deleting},
	Deleting:      {"clean": Cleaning, "fail": Error},
	Cleaning:      {"wait": CleanWait, "done": Available, "fail": CleanFailed, "manual_done": Manageable},
	CleanWait:     {"resume": Cleaning, "fail": CleanFailed, "abort": CleanFailed},
	CleanFailed:   {"manage": Manageable},
}

// Stable reports whether s is a stable state (no run acts on it).
func Stable(s string) bool {
	switch s {
	case Enroll, Manageable, Available, Active, Error:
		return true
	}
	return false
}

// failureOf maps each transient state to the failure state an
// interrupted run leaves it in (Ironic's conductor on restart, and abort).
var failureOf = map[string]string{
	Verifying:    Enroll,
	Deploying:    DeployFailed,
	WaitCallBack: DeployFailed,
	Cleaning:     CleanFailed,
	CleanWait:    CleanFailed,
	Inspecting:   InspectFailed,
	InspectWait:  InspectFailed,
	Deleting:     Error,
}

// FailureOf returns the failure state a node in the transient state s
// moves to when the run acting on it is interrupted (every such move is
// the state's "fail" event); ok is false for states no run acts on.
func FailureOf(s string) (to string, ok bool) {
	to, ok = failureOf[s]
	return to, ok
}

// Failed reports whether s is one of the failed states.
func Failed(s string) bool {
	return s == DeployFailed || s == CleanFailed || s == InspectFailed || s == Error
}

// Known reports whether s is a provision state.
func Known(s string) bool {
	_, ok := transitions[s]
	return ok
}

// TransitionError is returned for an event not allowed in a state.
type TransitionError struct {
	State, Event string
	Allowed      []string
}

func (e *TransitionError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("event %q is not allowed in provision state %q", e.Event, e.State)
	}
	return fmt.Sprintf("event %q is not allowed in provision state %q; allowed events: %s",
		e.Event, e.State, strings.Join(e.Allowed, ", "))
}

// Next returns the state reached from state by event.
func Next(state, event string) (string, error) {
	if to, ok := transitions[state][event]; ok {
		return to, nil
	}
	return "", &TransitionError{State: state, Event: event, Allowed: Events(state)}
}

// Events lists the events allowed in state, sorted.
func Events(state string) []string {
	out := make([]string, 0, len(transitions[state]))
	for ev := range transitions[state] {
		out = append(out, ev)
	}
	sort.Strings(out)
	return out
}
