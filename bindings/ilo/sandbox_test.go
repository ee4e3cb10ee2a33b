package ilo

import (
	"context"
	"testing"

	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

// TestConnectOtherNode: ilo.connect takes the run's node only; a node
// table of another node (by uuid or name), or any node table in a
// node-less run, is refused before any BMC is contacted.
func TestConnectOtherNode(t *testing.T) {
	const own, other = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "2c37d1a0-5b1e-4f7e-9d2c-0e1f2a3b4c5d"
	info := map[string]any{"ilo_address": "127.0.0.1", "ilo_username": "u", "ilo_password": "p"}
	for _, tt := range []struct {
		name string
		node *moduletest.Node
		arg  string
	}{
		{"other uuid", &moduletest.Node{ID: own, NodeName: "n1", Info: info}, `{ uuid = "` + other + `", driver_info = { address = "127.0.0.1:1" } }`},
		{"other name", &moduletest.Node{ID: own, NodeName: "n1", Info: info}, `{ name = "n2", driver_info = { address = "127.0.0.1:1" } }`},
		{"other uuid, own name", &moduletest.Node{ID: own, NodeName: "n1", Info: info}, `{ uuid = "` + other + `", name = "n1" }`},
		{"node-less run", nil, `{ uuid = "` + own + `", driver_info = { address = "127.0.0.1:1" } }`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := moduletest.NewRun(context.Background(), tt.node)
			L := moduletest.Open(r, NewModule())
			defer L.Close()
			if err := L.DoString(`
				local ok, err = pcall(require("ilo").connect, ` + tt.arg + `)
				assert(not ok, "accepted")
				assert(err.code == "forbidden", tostring(err))
			`); err != nil {
				t.Fatal(err)
			}
			if calls := r.Calls(); len(calls) != 0 {
				t.Fatalf("BMC calls made: %v", calls)
			}
		})
	}
}
