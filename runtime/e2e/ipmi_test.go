package e2e_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
)

// TestInspectNICCapacityOverIPMI: inspection adds nic_capacity from the
// simulated server's IPMI FRU data; a node whose IPMI does not answer is
// still inspected, with a warning and without nic_capacity.
func TestInspectNICCapacityOverIPMI(t *testing.T) {
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 2)})
	e := open(t, f, "")
	e.importFleet()
	// gen10-1's IPMI port: a UDP socket nobody answers on.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := e.app.UpdateNode(context.Background(), "gen10-1", app.NodeChange{DriverInfo: map[string]any{
		"ipmi_port": silent.LocalAddr().(*net.UDPAddr).Port, "ipmi_retry_timeout": 1}}); err != nil {
		t.Fatal(err)
	}
	res := e.runs("inspect", []string{"gen10-0", "gen10-1"}, nil)
	e.mustSucceed(res["gen10-0"])
	e.mustSucceed(res["gen10-1"])
	if caps := fmt.Sprint(e.node("gen10-0").Properties["capabilities"]); !strings.Contains(caps, "nic_capacity:1Gb") {
		t.Errorf("gen10-0 capabilities %q lack nic_capacity:1Gb", caps)
	}
	if caps := fmt.Sprint(e.node("gen10-1").Properties["capabilities"]); strings.Contains(caps, "nic_capacity") {
		t.Errorf("gen10-1 capabilities %q: nic_capacity without IPMI", caps)
	}
	warned := false
	for _, m := range e.logs(res["gen10-1"].RunID, "warn") {
		warned = warned || strings.Contains(m, "no nic_capacity: IPMI did not answer")
	}
	if !warned {
		t.Errorf("no warning for the silent IPMI: %v", e.logs(res["gen10-1"].RunID, "warn"))
	}
}
