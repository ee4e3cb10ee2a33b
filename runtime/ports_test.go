package runtime_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/store"
)

// TestAddPortCannotStealAnotherNodesPort: node:add_port of a MAC owned by
// another node raises an error naming the MAC and the owner; the port
// stays with its owner.
func TestAddPortCannotStealAnotherNodesPort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := &store.Node{UUID: "uuid-other", Name: "other", Driver: "agent_ilo", Ports: []store.Port{{Address: "aa:bb:cc:dd:ee:01"}}}
	if err := e.st.CreateNode(ctx, other); err != nil {
		t.Fatal(err)
	}
	res := e.run(t, `
		local ok, err = pcall(node.add_port, node, "AA:BB:CC:DD:EE:01")
		assert(not ok, "add_port stole the port")
		error(err.message, 0)
	`)
	if res.Status != store.StatusFailed || !strings.Contains(res.Error, "AA:BB:CC:DD:EE:01") && !strings.Contains(res.Error, "aa:bb:cc:dd:ee:01") ||
		!strings.Contains(res.Error, "already belongs to node other") {
		t.Fatalf("%s: %q", res.Status, res.Error)
	}
	n, _ := e.st.GetNode(ctx, "n1")
	if len(n.Ports) != 0 {
		t.Errorf("n1 ports = %v", n.Ports)
	}
}
