package sim_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The simulator and its test helpers import no iLO client package: the
// client packages' own tests use them, and an import would be a cycle (and
// a simulator that shares code with the client it checks proves little).
func TestSimImportsNoClient(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".", "./simtest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/lightsout/lightsout/bindings/") || strings.HasPrefix(p, "github.com/lightsout/lightsout/runtime/") {
			t.Errorf("sim depends on %s", p)
		}
	}
}
