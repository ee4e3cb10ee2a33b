package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
)

// ScriptRecover finishes the cleanup of an interrupted run (scripts/recover.lua).
const ScriptRecover = "recover"

// RecoveryPending returns the id of the interrupted run whose cleanup is
// still to do on node n (0 when none).
func RecoveryPending(n *store.Node) int64 {
	v, ok := n.DriverInternalInfo[store.RecoveryKey]
	if !ok || v == nil {
		return 0
	}
	if f, ok := v.(float64); ok && f > 0 {
		return int64(f)
	}
	if i, ok := v.(int64); ok && i > 0 {
		return i
	}
	return -1 // pending, run unknown
}

// RecoverIfNeeded runs the recover playbook on a node an interrupted run
// left uncleaned (driver_internal_info.recovery_pending), as its own
// recorded run. It returns nil, nil when there is nothing to recover, and a
// *RunFailedError when the recovery failed (the node then keeps
// recovery_pending and the caller must not go on).
func (a *App) RecoverIfNeeded(ctx context.Context, ref string) (*runtime.Result, error) {
	if ref == "" {
		return nil, nil // a node-less run
	}
	n, err := a.Store.GetNode(ctx, ref)
	if err != nil {
		return nil, &ValidationError{err}
	}
	if RecoveryPending(n) == 0 {
		return nil, nil
	}
	res, err := a.RunPlaybook(ctx, ScriptRecover, n.UUID, nil)
	return &res, err
}

// AbortOutcome is what `node abort` did.
type AbortOutcome struct {
	Node string `json:"node"`
	// Run is the run stopped (0 when none was in progress).
	Run int64 `json:"run,omitempty"`
	// How: "requested" (the live process ran the failure path),
	// "process dead" (the run was marked interrupted here), "" when no
	// run was in progress.
	How string `json:"how,omitempty"`
	// Recovery is the recover run, when one was needed.
	Recovery       int64  `json:"recovery_run,omitempty"`
	ProvisionState string `json:"provision_state"`
	LastError      string `json:"last_error"`
}

// Abort stops the run in progress on a node (Ironic's abort): a live
// process is asked to cancel it (it polls the request within a second, runs
// its playbook's failure path and ends the run) and Abort waits for the run
// to end; a run whose process is gone is marked interrupted here. Either
// way the node ends in its failure state, and a cleanup left undone is
// finished by the recover playbook. A node with nothing in progress and
// nothing to recover is a *ValidationError.
func (a *App) Abort(ctx context.Context, ref string) (*AbortOutcome, error) {
	n, err := a.Store.GetNode(ctx, ref)
	if err != nil {
		return nil, &ValidationError{err}
	}
	out := &AbortOutcome{Node: n.Name}
	if n.Reservation != 0 {
		r, err := a.Store.GetRun(ctx, n.Reservation)
		if err != nil {
			return nil, err
		}
		out.Run = r.ID
		if r.Status == store.StatusRunning && runtime.RunAlive(r) {
			out.How = "requested"
			if err := a.Store.RequestAbort(ctx, r.ID, "aborted by operator"); err != nil {
				return nil, err
			}
			if err := a.waitRunEnd(ctx, r.ID); err != nil {
				return nil, err
			}
		} else {
			out.How = "process dead"
			if err := a.Store.InterruptRun(ctx, r.ID, "aborted by operator (its process had died)"); err != nil {
				return nil, err
			}
		}
	} else if to, ok := states.FailureOf(n.ProvisionState); ok {
		// transient without a run (e.g. a process on another host died):
		// fail it, leaving the cleanup to the recovery below.
		if _, err := a.Store.UpdateNode(ctx, n.UUID, func(sn *store.Node) error {
			sn.ProvisionState = to
			sn.LastError = fmt.Sprintf("aborted by operator in %s (no run in progress)", n.ProvisionState)
			sn.DriverInternalInfo[store.RecoveryKey] = 0.0
			return nil
		}); err != nil {
			return nil, err
		}
		out.How = "no run"
	}
	res, err := a.RecoverIfNeeded(ctx, n.UUID)
	if res != nil {
		out.Recovery = res.RunID
	}
	if err != nil {
		return out, err
	}
	if out.Run == 0 && out.How == "" && res == nil {
		return nil, invalid("node %s has no run in progress and nothing to recover (provision state %s)", n.Name, n.ProvisionState)
	}
	if n, err = a.Store.GetNode(ctx, n.UUID); err != nil {
		return out, err
	}
	out.ProvisionState, out.LastError = n.ProvisionState, n.LastError
	return out, nil
}

// waitRunEnd polls a run until it is no longer running; past the failure
// path's grace (plus a margin) the run is left to its process and an error
// says so.
func (a *App) waitRunEnd(ctx context.Context, id int64) error {
	limit := a.Config.Duration("lightsout", "abort_grace", 60*time.Second) + 30*time.Second
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := a.Store.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if r.Status != store.StatusRunning {
			return nil
		}
		if !runtime.RunAlive(r) {
			return a.Store.InterruptRun(ctx, id, "aborted by operator (its process died during the abort)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for run %d to stop: %w", id, ctx.Err())
		case <-deadline.C:
			return errors.New("run " + fmt.Sprint(id) + " was asked to abort but is still running after " + limit.String() +
				": see `lightsout runs show " + fmt.Sprint(id) + "`")
		case <-tick.C:
		}
	}
}
