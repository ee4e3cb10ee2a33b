package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

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

// ReadImport reads a node list from a JSON or YAML file: a list of nodes, an
// object {"nodes": [...]}, or a Bifrost inventory map {name: node}. Every
// node is validated; the error names the entry and field.
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
	if trimmed[0] == '[' || trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, fmt.Errorf("import %s: invalid JSON: %w", path, err)
		}
	} else if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("import %s: invalid YAML: %w", path, err)
	}
	var entries []any
	switch x := raw.(type) {
	case []any:
		entries = x
	case map[string]any:
		if ns, ok := x["nodes"].([]any); ok {
			entries = ns
		} else {
			for _, k := range sortedKeys(x) { // Bifrost: {name: {...}}
				if m, ok := x[k].(map[string]any); ok {
					if _, has := m["name"]; !has {
						m["name"] = k
					}
					entries = append(entries, m)
				}
			}
		}
	default:
		return nil, fmt.Errorf("import %s: expected a list of nodes", path)
	}
	var out []*store.Node
	seen := map[string]bool{}
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("import %s: entry %d: %w", path, i+1, err)
		}
		var in importNode
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, fmt.Errorf("import %s: entry %d: %w", path, i+1, err)
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
			return nil, fmt.Errorf("import %s: entry %d (%s): %w", path, i+1, in.Name, err)
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
