package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// iscsi_ilo with an unmodified ironic-python-agent 7.1.0 ramdisk (the
// emulated ramdisk with Failures.UnmodifiedIPA: IPA's agent_version and its
// refusal of parameters its commands do not take). With CHAP on, the
// deploy fails before anything is exported, naming the options to turn
// off; with CHAP off, the image is written through IPA's
// start_iscsi_target(iqn, wipe_disk_metadata, portal_port), the commands
// going over IPA's automatic TLS (https, trusting agent_verify_ca).
func TestISCSIDeployUnmodifiedIPA(t *testing.T) {
	requireISCSI(t)
	tests := []struct {
		name string
		chap bool
	}{{"chap on", true}, {"chap off", false}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
			f.rd.SetFailures("gen10-0", ramdisk.Failures{UnmodifiedIPA: true})
			e := open(t, f, "")
			e.importFleet()
			img, data := testImage(t, t.TempDir(), 1<<20+512)
			port := freeTCPPort(t)
			ctx := context.Background()
			e.makeAvailable("gen10-0")
			if _, err := e.app.UpdateNode(ctx, "gen10-0", app.NodeChange{Driver: "iscsi_ilo",
				DriverInfo: map[string]any{"iscsi_chap": tc.chap, "iscsi_port": port}}); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if _, err := e.app.PrepareDeploy(ctx, "gen10-0", app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + hex.EncodeToString(sum[:])}); err != nil {
				t.Fatal(err)
			}
			res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
			n := e.node("gen10-0")
			if tc.chap {
				if res.Status != "failed" || n.ProvisionState != states.DeployFailed || n.PowerState != "power off" {
					t.Fatalf("run %s, state %q, power %q; want failed, deploy failed, power off", res.Status, n.ProvisionState, n.PowerState)
				}
				t.Logf("last_error: %s", n.LastError)
				for _, want := range []string{"ironic-python-agent 7.1.0", "chap_secret, chap_user", "driver_info.iscsi_chap=false", "[iscsi] chap=false", "not_supported"} {
					if !strings.Contains(n.LastError, want) {
						t.Errorf("last_error %q lacks %q", n.LastError, want)
					}
				}
			} else {
				e.mustSucceed(res)
				wantIPADeployed(t, f, n, data)
			}
			if !portalClosed(port) {
				t.Error("the iSCSI target still answers after the deploy")
			}
			e.noMediaLeft("gen10-0")
		})
	}
}

// agent_ilo with an unmodified ironic-python-agent 7.1.0 ramdisk:
// automated cleaning (clean.get_clean_steps, clean.execute_clean_step)
// and a whole-disk deploy (standby.prepare_image) over IPA's automatic TLS.
func TestDeployUnmodifiedIPA(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	f.rd.SetFailures("gen10-0", ramdisk.Failures{UnmodifiedIPA: true})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	writeJunk(t, f.server(t, "gen10-0").DiskPath())
	n, err := e.app.Provide(ctx, "gen10-0")
	if err != nil {
		t.Fatalf("provide: %v", err)
	}
	if n.ProvisionState != states.Available || !diskIsZero(t, f.server(t, "gen10-0").DiskPath()) {
		t.Fatalf("provide: state %s, disk erased %t, last_error %q", n.ProvisionState, diskIsZero(t, f.server(t, "gen10-0").DiskPath()), n.LastError)
	}
	img, data := testImage(t, t.TempDir(), 2<<20+512)
	if _, err := e.app.PrepareDeploy(ctx, "gen10-0", app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
		t.Fatal(err)
	}
	res := e.runs(app.ScriptDeploy, []string{"gen10-0"}, nil)["gen10-0"]
	e.mustSucceed(res)
	wantIPADeployed(t, f, e.node("gen10-0"), data)
	e.noMediaLeft("gen10-0")
}

// wantIPADeployed fails t unless node n is active with data at the start
// of its disk, deployed over IPA's automatic TLS: the commands went over
// https (the agent_url IPA called back with), trusting agent_verify_ca.
func wantIPADeployed(t *testing.T, f *fleet, n *store.Node, data []byte) {
	t.Helper()
	if n.ProvisionState != states.Active {
		t.Fatalf("state %q last_error %q", n.ProvisionState, n.LastError)
	}
	disk, err := os.ReadFile(f.server(t, n.Name).DiskPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk[:len(data)], data) {
		t.Fatal("the node's disk does not hold the image")
	}
	if u, _ := n.DriverInternalInfo["agent_url"].(string); !strings.HasPrefix(u, "https://") {
		t.Errorf("driver_internal_info.agent_url %q, want IPA's https callback URL", u)
	}
}
