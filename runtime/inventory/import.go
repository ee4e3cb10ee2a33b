package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/lightsout/lightsout/runtime/jsonstrict"
	"github.com/lightsout/lightsout/runtime/store"
)

// importNode accepts lightsout's `node show --json` shape and Ironic/Bifrost
// node entries (ports[].address, or Bifrost's nics[].mac).
type importNode struct {
	Name         string         `json:"name" yaml:"name"`
	UUID         string         `json:"uuid" yaml:"uuid"`
	Driver       string         `json:"driver" yaml:"driver"`
	DriverInfo   map[string]any `json:"driver_info" yaml:"driver_info"`
	Properties   map[string]any `json:"properties" yaml:"properties"`
	InstanceInfo map[string]any `json:"instance_info" yaml:"instance_info"`
	Ports        []struct {
		Address string `json:"address" yaml:"address"`
	} `json:"ports" yaml:"ports"`
	NICs []struct {
		MAC string `json:"mac" yaml:"mac"`
	} `json:"nics" yaml:"nics"`
}

// nodeFields are the fields of a node entry: importNode's, then the
// output-only fields of `node show --json` (ignored, so an export imports
// back), then Bifrost inventory fields lightsout does not use (ignored).
var nodeFields = map[string]bool{
	"name": true, "uuid": true, "driver": true, "driver_info": true, "properties": true, "instance_info": true,
	"ports": true, "nics": true,

	"driver_internal_info": true, "provision_state": true, "power_state": true, "last_error": true,
	"maintenance": true, "maintenance_reason": true, "reservation": true, "created_at": true, "updated_at": true,

	"ipv4_address": true, "ipv4_subnet_mask": true, "ipv4_gateway": true, "ipv4_nameserver": true,
	"ipv4_interface_mac": true, "network_interface": true, "host_groups": true, "provisioning_ipv4_address": true,
	"addressing_mode": true, "ansible_ssh_host": true, "node_network_data": true,
}

// portFields are the fields of a ports[] entry (Ironic's port; only
// address is used) and nicFields those of Bifrost's nics[].
var (
	portFields = map[string]bool{"address": true, "uuid": true, "pxe_enabled": true, "local_link_connection": true,
		"physical_network": true, "extra": true, "is_smartnic": true, "name": true, "node_uuid": true, "portgroup_uuid": true}
	nicFields = map[string]bool{"mac": true}
)

// unknownFields lists the keys of m not in known, sorted.
func unknownFields(m map[string]any, known map[string]bool) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		if !known[k] {
			out = append(out, strconv.Quote(k))
		}
	}
	return out
}

func fieldList(known map[string]bool) string {
	return strings.Join(sortedKeys(known), ", ")
}

// kindOf names a decoded JSON/YAML value's kind for errors.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// ReadImport reads a node list from a JSON or YAML file: a list of nodes, an
// object {"nodes": [...]}, or a Bifrost inventory map {name: node}. The
// file must be valid UTF-8 without duplicate keys; unknown fields are
// refused by name. Every node is validated; the error names the entry and
// field.
func ReadImport(path string) ([]*store.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	var raw any
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("import %s: the file is empty: expected a JSON or YAML list of nodes", path)
	}
	if !utf8.Valid(data) || trimmed[0] == '[' || trimmed[0] == '{' {
		if err := jsonstrict.Check(data); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, fmt.Errorf("import %s: invalid JSON: %w", path, err)
		}
	} else if err := yaml.Unmarshal(data, &raw); err != nil { // yaml.v3 refuses duplicate keys
		return nil, fmt.Errorf("import %s: invalid YAML: %w", path, err)
	}
	const shapes = `a list of nodes [{"name": ..., "driver_info": {...}}, ...], {"nodes": [...]} or Bifrost's map {"NAME": {...}, ...}`
	var entries []any
	switch x := raw.(type) {
	case []any:
		entries = x
	case map[string]any:
		if ns, ok := x["nodes"]; ok {
			list, isList := ns.([]any)
			if !isList || len(x) != 1 {
				return nil, fmt.Errorf("import %s: an object with \"nodes\" must hold only \"nodes\", a list (expected %s)", path, shapes)
			}
			entries = list
			break
		}
		for _, k := range sortedKeys(x) { // Bifrost: {name: {...}}
			m, ok := x[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("import %s: the top-level object is not a Bifrost map of name → node: key %q holds %s, not a node object (expected %s)",
					path, k, kindOf(x[k]), shapes)
			}
			if name, has := m["name"]; !has {
				m["name"] = k
			} else if name != k {
				return nil, fmt.Errorf("import %s: Bifrost entry %q has name %v: the key and the name must match", path, k, name)
			}
			entries = append(entries, m)
		}
	default:
		return nil, fmt.Errorf("import %s: the file holds %s: expected %s", path, kindOf(raw), shapes)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("import %s: the file lists no nodes: expected %s", path, shapes)
	}
	var out []*store.Node
	seen := map[string]bool{}
	for i, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("import %s: entry %d is %s: expected a node object", path, i+1, kindOf(e))
		}
		label := fmt.Sprintf("entry %d", i+1)
		if name, ok := m["name"].(string); ok && name != "" {
			label = fmt.Sprintf("entry %d (%s)", i+1, name)
		}
		if bad := unknownFields(m, nodeFields); len(bad) > 0 {
			return nil, fmt.Errorf("import %s: %s: unknown field(s) %s: known fields are %s", path, label, strings.Join(bad, ", "), fieldList(nodeFields))
		}
		for _, list := range []struct {
			key   string
			known map[string]bool
		}{{"ports", portFields}, {"nics", nicFields}} {
			items, _ := m[list.key].([]any)
			for j, it := range items {
				pm, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("import %s: %s: %s[%d] is %s: expected an object", path, label, list.key, j, kindOf(it))
				}
				if bad := unknownFields(pm, list.known); len(bad) > 0 {
					return nil, fmt.Errorf("import %s: %s: %s[%d]: unknown field(s) %s: known fields are %s", path, label, list.key, j, strings.Join(bad, ", "), fieldList(list.known))
				}
			}
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("import %s: %s: %w", path, label, err)
		}
		var in importNode
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("import %s: %s: %w", path, label, err)
		}
		n := &store.Node{Name: in.Name, UUID: in.UUID, Driver: in.Driver, DriverInfo: orMap(in.DriverInfo),
			Properties: orMap(in.Properties), InstanceInfo: orMap(in.InstanceInfo)}
		if n.Driver == "" {
			n.Driver = "agent_ilo"
		}
		if n.Driver == "ilo" || n.Driver == "ilo5" { // Ironic hardware types
			n.Driver = "agent_ilo"
		}
		for _, p := range in.Ports {
			n.Ports = append(n.Ports, store.Port{Address: strings.ToLower(p.Address)})
		}
		for _, p := range in.NICs {
			n.Ports = append(n.Ports, store.Port{Address: strings.ToLower(p.MAC)})
		}
		normalizeInfo(n.DriverInfo)
		if err := ValidateNode(n); err != nil {
			return nil, fmt.Errorf("import %s: %s: %w", path, label, err)
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("import %s: entry %d: node name %q appears twice", path, i+1, n.Name)
		}
		seen[n.Name] = true
		out = append(out, n)
	}
	return out, nil
}

func orMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// normalizeInfo turns JSON numbers that are integers into int64 so they
// print as 443, not 443.0.
func normalizeInfo(m map[string]any) {
	for k, v := range m {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			m[k] = int64(f)
		}
	}
}
