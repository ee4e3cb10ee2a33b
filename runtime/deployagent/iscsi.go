package deployagent

import (
	"context"

	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
)

// startISCSITarget is IPA's iscsi.start_iscsi_target(iqn=None,
// wipe_disk_metadata=False, portal_port=None) (ironic-python-agent 7.1.0,
// extensions/iscsi.py) plus chap_user/chap_secret (lightsout's extension;
// IPA has none): tgtd exports the root disk chosen by the root device hints
// (as prepare_image picks it) as LUN 1 of target iqn (as IPA, without iqn
// a new iqn.2008-10.org.openstack:<uuid>), with a CHAP account bound when
// given. The result is IPA's {"iscsi_target_iqn": iqn}. A previous target is
// stopped first; the target is stopped by standby.power_off, by any other
// command and when the agent stops.
func (a *Agent) startISCSITarget(ctx context.Context, params map[string]any) (any, *RESTError) {
	iqn, _ := params["iqn"].(string)
	if iqn == "" {
		iqn = "iqn.2008-10.org.openstack:" + newID()
	}
	port := 3260
	if p, ok := params["portal_port"].(float64); ok && p > 0 {
		port = int(p)
	}
	user, _ := params["chap_user"].(string)
	secret, _ := params["chap_secret"].(string)
	if (user == "") != (secret == "") {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters", Details: "chap_user and chap_secret go together"}
	}
	a.stopISCSITarget()
	dev, err := a.RootDevice()
	if err != nil {
		return nil, &RESTError{Type: "DeviceNotFound", Code: 404, Message: "Error finding the disk or partition device to deploy the image onto", Details: err.Error()}
	}
	if wipe, _ := params["wipe_disk_metadata"].(bool); wipe {
		if err := EraseMetadata(dev.Path, dev.Size); err != nil {
			return nil, &RESTError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: "wiping disk metadata of " + dev.Name + ": " + err.Error()}
		}
	}
	addr := a.cfg.ISCSIAddr
	if addr == "" {
		addr = "0.0.0.0"
	}
	t, err := tgt.Start(ctx, tgt.Config{Addr: addr, Port: port, IQN: iqn, Device: dev.Path, CHAPUser: user, CHAPSecret: secret})
	if err != nil {
		return nil, &RESTError{Type: "ISCSIError", Code: 500, Message: "Error starting iSCSI target", Details: a.redact(err.Error())}
	}
	a.mu.Lock()
	a.target = t
	d := dev
	a.rootDisk = &d
	a.mu.Unlock()
	a.Console("ISCSI-TARGET-READY iqn=%s port=%d device=%s chap=%t", iqn, port, dev.Name, user != "")
	return map[string]any{"iscsi_target_iqn": iqn}, nil
}

// stopISCSITarget stops the agent's iSCSI target, if any.
func (a *Agent) stopISCSITarget() {
	a.mu.Lock()
	t := a.target
	a.target = nil
	a.mu.Unlock()
	if t != nil {
		_ = t.Stop(context.Background())
		a.Console("ISCSI-TARGET-STOPPED iqn=%s", t.Config().IQN)
	}
}
