package ramdisk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// Failures.UnmodifiedIPA answers as ironic-python-agent 7.1.0 does
// (ironic_python_agent/extensions/base.py and api/app.py at tag 7.1.0): a
// synchronous command given a parameter it does not take answers HTTP 500
// "Object of type TypeError is not JSON serializable", an asynchronous one
// fails with CommandExecutionError "<name>() got an unexpected keyword
// argument '<param>'"; the heartbeat reports agent_version 7.1.0 and,
// with IPA's automatic TLS, agent_verify_ca for its https API.
func TestUnmodifiedIPA(t *testing.T) {
	api := callback(t)
	tok, _ := api.NewToken(nodeUUID)
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "s", APIURLs: []string{api.URL()}, Token: tok,
		MACs: []string{nodeMAC}, DiskPath: newDisk(t, 1<<20), HeartbeatInterval: 50 * time.Millisecond,
		Failures: ramdisk.Failures{UnmodifiedIPA: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := waitAgent(t, api, 20*time.Second)
	hb, _ := api.Agent(nodeUUID)
	if hb.AgentVersion != ramdisk.IPAISCSIVersion {
		t.Fatalf("agent_version %q, want %s", hb.AgentVersion, ramdisk.IPAISCSIVersion)
	}
	// IPA's automatic TLS: https, with the certificate as agent_verify_ca.
	if !strings.HasPrefix(url, "https://") || hb.AgentVerifyCA == "" || hb.AgentVerifyCA != a.VerifyCA() {
		t.Fatalf("callback_url %s, agent_verify_ca set %t", url, hb.AgentVerifyCA != "")
	}
	if _, err := (&agent.Client{}).List(context.Background(), url, tok); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client not trusting agent_verify_ca: %v, want a certificate error", err)
	}
	c, err := agent.NewClientWithCA(hb.AgentVerifyCA)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(context.Background(), url, tok, "iscsi.start_iscsi_target",
		map[string]any{"iqn": "iqn.2008-10.org.openstack:x", "portal_port": 3260, "chap_user": "ironic", "chap_secret": "s3cr3t"}, true)
	var he *agent.HTTPError
	if !errors.As(err, &he) || he.Status != 500 || he.Message != "Object of type TypeError is not JSON serializable" {
		t.Fatalf("start_iscsi_target with CHAP: %v, want IPA's HTTP 500", err)
	}
	if a.ISCSITargetRunning() {
		t.Fatal("a refused start_iscsi_target exported the disk")
	}
	res := runWait(t, c, url, tok, "image.install_bootloader", map[string]any{"root_uuid": "0a1b", "disk_label": "gpt"})
	if res.CommandStatus != "FAILED" || errorType(res) != "CommandExecutionError" ||
		!strings.Contains(res.ErrorMessage(), "install_bootloader() got an unexpected keyword argument 'disk_label'") {
		t.Fatalf("install_bootloader with disk_label: %+v", res)
	}
}
