package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestDemo runs `make demo`'s script with a freshly built binary: the main
// job on embedded defaults must keep working (a sandbox or validation
// change that breaks it fails here, not in a user's first minute).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout and runs the demo")
	}
	testenv.RequireTools(t, "bash", "sha256sum", "head")
	bin := buildBinary(t)
	cmd := exec.Command("bash", "../../testdata/tools/demo.sh", bin)
	cmd.Env = append(cmd.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil { // demo.sh runs with set -e: any failed command ends it
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	// every driver's deploy shows its own phases; iscsi_ilo only when
	// tgtd and qemu-img with libiscsi are there (the demo says it skips)
	iscsi := "call iscsi.write ok"
	if !testenv.Integration() && strings.Contains(string(out), "demo: skipping the iscsi_ilo deploy:") {
		iscsi = "skipping the iscsi_ilo deploy"
	}
	for _, want := range []string{"lightsout deploy", "succeeded", "call ilo.insert_virtual_media ok",
		"call pxe.prepare ok", `"device":"NETWORK"`, iscsi} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
}
