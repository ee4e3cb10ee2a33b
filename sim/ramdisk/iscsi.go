package ramdisk

import (
	"context"

	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
)

// startISCSITarget is IPA's iscsi.start_iscsi_target(iqn, portal_port=3260,
// wipe_disk_metadata=False), plus chap_user/chap_secret (lightsout's
// extension): a real tgtd on 127.0.0.1 exports the server's disk file as
// LUN 1. A previous target of this agent is stopped first; the target is
// stopped when the agent stops (power off) or another command starts.
func (a *Agent) startISCSITarget(ctx context.Context, params map[string]any) (any, *restError) {
	iqn, _ := params["iqn"].(string)
	if iqn == "" {
		return nil, execError("iscsi: iqn is required")
	}
	port := 3260
	if p, ok := params["portal_port"].(float64); ok && p > 0 {
		port = int(p)
	}
	user, _ := params["chap_user"].(string)
	secret, _ := params["chap_secret"].(string)
	if a.cfg.Failures.WrongCHAPSecret && user != "" {
		secret = "not-" + secret
	}
	a.stopISCSITarget()
	if wipe, _ := params["wipe_disk_metadata"].(bool); wipe {
		if err := eraseMetadata(a.cfg.DiskPath); err != nil {
			return nil, execError("iscsi: wiping disk metadata of %s: %v", a.cfg.DiskPath, err)
		}
	}
	t, err := tgt.Start(ctx, tgt.Config{Addr: "127.0.0.1", Port: port, IQN: iqn, Device: a.cfg.DiskPath, CHAPUser: user, CHAPSecret: secret})
	if err != nil {
		return nil, &restError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: err.Error()}
	}
	a.mu.Lock()
	a.target = t
	a.mu.Unlock()
	a.log.Info("iSCSI target started", "iqn", iqn, "port", port, "chap", user != "")
	return map[string]any{"iscsi_target_iqn": iqn, "portal_port": port}, nil
}

// stopISCSITarget stops the agent's iSCSI target, if any.
func (a *Agent) stopISCSITarget() {
	a.mu.Lock()
	t := a.target
	a.target = nil
	a.mu.Unlock()
	if t != nil {
		_ = t.Stop(context.Background())
		a.log.Info("iSCSI target stopped", "iqn", t.Config().IQN)
	}
}

// ISCSITargetRunning reports whether the agent exports its disk now.
func (a *Agent) ISCSITargetRunning() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.target != nil
}
