package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/sim"
)

// TestVirtualMediaNeedsAdvancedOnILO4: an agent_ilo deploy on an iLO 4
// that has only iLO Standard (the simulator's Hardware.License) fails in
// validation, before the node or the server changes, with a message naming
// the licence and pxe_ilo; inspection records the tier as a capability.
func TestVirtualMediaNeedsAdvancedOnILO4(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: []sim.NodeSpec{{Generation: sim.Gen9, Count: 1}},
		hardware: func(name string, g sim.Generation, idx int, hw *sim.Hardware) { hw.License = "iLO Standard" }})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	const node = "gen9-0"

	if res := e.runs(app.ScriptInspect, []string{node}, nil)[node]; !res.Succeeded() {
		t.Fatalf("inspect: %s\n%s", res.Error, e.timeline(res.RunID))
	}
	if caps := e.node(node).Properties["capabilities"]; !strings.Contains(caps.(string), "ilo_license_type:standard") {
		t.Errorf("capabilities %q lack ilo_license_type:standard", caps)
	}

	img, data := testImage(t, t.TempDir(), 1<<20)
	e.makeAvailable(node)
	if _, err := e.app.PrepareDeploy(ctx, node, app.DeployOptions{ImageSource: img, ImageChecksum: "sha256:" + sha256hex(data)}); err != nil {
		t.Fatal(err)
	}
	boots := f.server(t, node).State().BootCount
	res := e.runs(app.ScriptDeploy, []string{node}, nil)[node]
	if res.Succeeded() {
		t.Fatal("deploy over virtual media succeeded on an iLO 4 with iLO Standard")
	}
	for _, want := range []string{`iLO 4 licence "iLO Standard" does not allow virtual media`, "agent_ilo", "use the pxe_ilo driver"} {
		if !strings.Contains(res.Error, want) {
			t.Errorf("run error %q lacks %q", res.Error, want)
		}
	}
	n := e.node(node)
	if n.ProvisionState != states.Available {
		t.Errorf("state %s after a validation failure, want available (unchanged)", n.ProvisionState)
	}
	st := f.server(t, node).State()
	if st.BootCount != boots || st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
		t.Errorf("the server changed: boots %d→%d, media %+v", boots, st.BootCount, st.Media)
	}

	// With iLO Advanced installed the same deploy passes validation.
	f.server(t, node).Update(func(st *sim.State) { st.Licenses = []sim.License{{Type: "iLO Advanced", Class: "FQL"}} })
	res = e.runs(app.ScriptDeploy, []string{node}, nil)[node]
	e.mustSucceed(res)
}
