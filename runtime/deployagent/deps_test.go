package deployagent_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// The agent is a leaf: nothing of the simulator, the engine, the bindings
// or the store among its dependencies (it runs alone in the ramdisk).
func TestAgentImportsNoEngineNorSim(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-json=ImportPath", ".", "./qcow2").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/lightsout/lightsout/"
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		ip := p.ImportPath
		if (strings.HasPrefix(ip, mod) && !strings.HasPrefix(ip, mod+"runtime/deployagent")) ||
			strings.HasPrefix(ip, "github.com/yuin/gopher-lua") || strings.HasPrefix(ip, "modernc.org/sqlite") {
			t.Errorf("runtime/deployagent depends on %s", ip)
		}
	}
	if seen < 10 {
		t.Fatalf("go list returned %d packages", seen)
	}
}
