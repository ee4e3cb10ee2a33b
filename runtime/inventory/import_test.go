package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lightsout/lightsout/runtime/store"
)

const goodNode = `{"name": "n1", "driver": "agent_ilo", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}, "ports": [{"address": "52:54:00:00:00:01"}]}`

func TestReadImportShapes(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string // error part; "" = valid
		nodes     int
	}{
		{"list", "[" + goodNode + "]", "", 1},
		{"nodes object", `{"nodes": [` + goodNode + `]}`, "", 1},
		{"bifrost map", `{"n1": {"driver": "agent_ilo", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}, "nics": [{"mac": "52:54:00:00:00:01"}], "ipv4_address": "192.0.2.10"}}`, "", 1},
		{"node show --json output", `[{"name": "n1", "uuid": "8f5a9a4e-6e5c-4d8e-9a58-0b4bb7c5e111", "driver": "agent_ilo", "driver_info": {"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}, "provision_state": "active", "power_state": "power on", "last_error": "", "maintenance": false, "driver_internal_info": {}, "ports": []}]`, "", 1},
		{"yaml list", "- name: n1\n  driver_info: {ilo_address: 192.0.2.1, ilo_username: u, ilo_password: p}\n", "", 1},
		{"a single node object", goodNode, `key "driver" holds a string, not a node object`, 0},
		{"object of scalars", `{"foo": 1}`, `key "foo" holds a number`, 0},
		{"empty object", `{}`, "lists no nodes", 0},
		{"empty list", `[]`, "lists no nodes", 0},
		{"nodes not a list", `{"nodes": {"n1": {}}}`, `must hold only "nodes", a list`, 0},
		{"a string", `"n1"`, "holds a string", 0},
		{"yaml scalar", "just text\n", "holds a string", 0},
		{"entry not an object", `["n1"]`, "entry 1 is a string", 0},
		{"unknown field", `[{"name": "n1", "drvier": "agent_ilo", "colour": "red"}]`, `entry 1 (n1): unknown field(s) "colour", "drvier": known fields are`, 0},
		{"unknown port field", `[{"name": "n1", "ports": [{"adress": "52:54:00:00:00:01"}]}]`, `entry 1 (n1): ports[0]: unknown field(s) "adress"`, 0},
		{"bifrost key and name differ", `{"n1": {"name": "n2"}}`, "the key and the name must match", 0},
		{"invalid UTF-8 name", "[{\"name\": \"n\xff1\"}]", "invalid UTF-8", 0},
		{"invalid UTF-8 yaml", "- name: n\xff1\n", "invalid UTF-8", 0},
		{"duplicate key", `[{"name": "n1", "name": "n2"}]`, `duplicate key "name"`, 0},
		{"duplicate key deep", `[{"name": "n1", "driver_info": {"ilo_password": "a", "ilo_password": "b"}}]`, `$[0].driver_info): duplicate key "ilo_password"`, 0},
		{"duplicate key yaml", "- name: n1\n  name: n2\n", "already defined", 0},
		{"duplicate node", "[" + goodNode + "," + goodNode + "]", `node name "n1" appears twice`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "nodes.json")
			if err := os.WriteFile(p, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			nodes, err := ReadImport(p)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(nodes) != tt.nodes {
					t.Fatalf("nodes = %d, want %d", len(nodes), tt.nodes)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadImport = %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\xff") {
				t.Errorf("error echoes invalid UTF-8: %q", err)
			}
		})
	}
}

// TestValidateNodeRefusesInvalidUTF8: names, keys and values that are not
// UTF-8 are refused (never stored mangled), naming the field only.
func TestValidateNodeRefusesInvalidUTF8(t *testing.T) {
	di := func() map[string]any {
		return map[string]any{"ilo_address": "192.0.2.1", "ilo_username": "u", "ilo_password": "p"}
	}
	tests := []struct {
		name string
		mod  func(n *store.Node)
		want string
	}{
		{"name", func(n *store.Node) { n.Name = "n\xff1" }, "not valid UTF-8"},
		{"control character in name", func(n *store.Node) { n.Name = "n\x071" }, "control characters"},
		{"driver_info value", func(n *store.Node) { n.DriverInfo["ilo_password"] = "se\xffcret" }, "driver_info/ilo_password"},
		{"nested instance_info", func(n *store.Node) { n.InstanceInfo["x"] = map[string]any{"y": []any{"ok", "b\xfe"}} }, "instance_info/x/y[1]"},
		{"properties key", func(n *store.Node) { n.Properties["k\xff"] = "v" }, "properties/k?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &store.Node{Name: "n1", Driver: "agent_ilo", DriverInfo: di(), Properties: map[string]any{}, InstanceInfo: map[string]any{}}
			if err := ValidateNode(n); err != nil {
				t.Fatalf("valid node refused: %v", err)
			}
			tt.mod(n)
			err := ValidateNode(n)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateNode = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "se\xffcret") || !utf8.ValidString(err.Error()) {
				t.Errorf("error echoes the raw value: %q", err)
			}
		})
	}
}
