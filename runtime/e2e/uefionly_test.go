package e2e_test

import (
	"context"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/sim"
)

// TestSecureBootDeployUEFIOnly deploys with secure boot to a Gen11 (iLO 6)
// and a Gen12 (iLO 7, no RIBCL): UEFI-only machines whose BIOS has no
// BootMode attribute. The deploy must boot the image in UEFI with secure
// boot on, and the undeploy must turn secure boot off again.
func TestSecureBootDeployUEFIOnly(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen11, Count: 1}, {Generation: sim.Gen12, Count: 1}}})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	nodes := []string{"gen11-0", "gen12-0"}
	for _, name := range nodes {
		e.makeAvailable(name)
	}
	img, data := testImage(t, t.TempDir(), 1<<20)
	for _, name := range nodes {
		if _, err := e.app.PrepareDeploy(ctx, name, app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data),
			Capabilities: map[string]string{"secure_boot": "true"}}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	res := e.runs(app.ScriptDeploy, nodes, nil)
	for _, name := range nodes {
		e.mustSucceed(res[name])
		srv := f.server(t, name)
		boot, _ := srv.LastBoot()
		if n := e.node(name); n.ProvisionState != states.Active || n.LastError != "" {
			t.Errorf("%s: state %q last_error %q", name, n.ProvisionState, n.LastError)
		}
		if boot.BootDevice != "HDD" || boot.BootMode != "UEFI" || !boot.SecureBoot {
			t.Errorf("%s: booted %s in %s secure boot %v; want HDD in UEFI with secure boot", name, boot.BootDevice, boot.BootMode, boot.SecureBoot)
		}
		if got := diskPrefixHash(t, srv.DiskPath(), len(data)); got != sha256hex(data) {
			t.Errorf("%s: the disk does not hold the image", name)
		}
		e.noMediaLeft(name)
	}
	res = e.runs(app.ScriptTeardown, nodes, nil)
	for _, name := range nodes {
		e.mustSucceed(res[name])
		if st := f.server(t, name).State(); st.Power != "OFF" || st.SecureBootEnable {
			t.Errorf("%s: power %s secure boot %v after undeploy", name, st.Power, st.SecureBootEnable)
		}
	}
}
