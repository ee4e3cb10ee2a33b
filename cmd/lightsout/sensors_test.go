package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

// TestSensorsFollowPower: `lightsout sensors NODE` reads the simulated
// server's IPMI sensors, and the fans and power meter follow its power.
func TestSensorsFollowPower(t *testing.T) {
	c := newCLI(t)
	s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inv := filepath.Join(t.TempDir(), "fleet.json")
	if err := s.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	c.must("node", "import", inv)
	name := s.Server(0).Name()
	read := func() map[string]float64 {
		var out struct {
			Node    string
			Sensors []struct {
				Name      string
				Reading   float64
				Available bool
				Unit      string
			}
		}
		if err := json.Unmarshal([]byte(c.must("sensors", name, "--json")), &out); err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, s := range out.Sensors {
			if s.Available {
				m[s.Name+" "+s.Unit] = s.Reading
			}
		}
		return m
	}
	s.Server(0).PowerOn()
	on := read()
	s.Server(0).PowerOff()
	off := read()
	if on["Fan 1 RPM"] <= 0 || off["Fan 1 RPM"] != 0 || on["Power Meter Watts"] <= off["Power Meter Watts"] {
		t.Fatalf("on %v\noff %v", on, off)
	}
	table := c.must("sensors", name)
	if !strings.Contains(table, "SENSOR") || !strings.Contains(table, "Fan 1") {
		t.Fatalf("table:\n%s", table)
	}
	if strings.Contains(c.allOut.String(), s.Server(0).Password()) {
		t.Fatal("the password reached the output")
	}
	if code, _, errOut := c.run("sensors", "no-such-node"); code == 0 || !strings.Contains(errOut, "no-such-node") {
		t.Fatalf("unknown node: %d %s", code, errOut)
	}
}
