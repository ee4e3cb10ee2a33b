package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
)

// PortConflictError is returned when a node would get a port address that
// another node owns (Ironic refuses duplicate port addresses: the agent's
// lookup by MAC must find exactly one node).
type PortConflictError struct {
	Address string // as given
	Node    string // the node being changed
	Owner   string // the node owning the address
}

func (e *PortConflictError) Error() string {
	if e.Owner == e.Node {
		return fmt.Sprintf("port %s is listed twice on node %s: give each MAC once", e.Address, e.Node)
	}
	return fmt.Sprintf("port %s already belongs to node %s: remove it from %s first (`lightsout node unset %s --port %s`) before adding it to %s",
		e.Address, e.Owner, e.Owner, e.Owner, e.Address, e.Node)
}

// PortKey is the canonical form of a port address for comparisons: a MAC
// in lower case with ':' separators, anything else lower-cased.
func PortKey(addr string) string {
	addr = strings.TrimSpace(addr)
	if hw, err := net.ParseMAC(addr); err == nil {
		return hw.String()
	}
	return strings.ToLower(addr)
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// checkPorts refuses ports of n that are new (not in before) and either
// repeated on n or owned by another node. Ports a node already had are not
// checked again, so a database holding duplicates from older versions
// keeps working (see DuplicatePorts).
func checkPorts(ctx context.Context, q rowsQuerier, n *Node, before []Port) error {
	had := map[string]bool{}
	for _, p := range before {
		had[PortKey(p.Address)] = true
	}
	seen := map[string]bool{}
	fresh := map[string]string{} // key → address as given
	for _, p := range n.Ports {
		k := PortKey(p.Address)
		if seen[k] && !had[k] {
			return &PortConflictError{Address: p.Address, Node: n.Name, Owner: n.Name}
		}
		seen[k] = true
		if !had[k] {
			fresh[k] = p.Address
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	owners, err := portOwners(ctx, q, n.UUID)
	if err != nil {
		return err
	}
	return freshPortConflict(n, fresh, owners)
}

// newPortConflict is checkPorts for a node being created when the owners
// of every port already stored (and of the nodes created before it in
// the same batch) are known: CreateNodes reads them once, not per node.
func newPortConflict(n *Node, owners map[string]string) error {
	fresh := map[string]string{}
	for _, p := range n.Ports {
		k := PortKey(p.Address)
		if _, dup := fresh[k]; dup {
			return &PortConflictError{Address: p.Address, Node: n.Name, Owner: n.Name}
		}
		fresh[k] = p.Address
	}
	return freshPortConflict(n, fresh, owners)
}

// freshPortConflict refuses the first (in key order) of n's fresh ports
// that owners maps to another node.
func freshPortConflict(n *Node, fresh, owners map[string]string) error {
	keys := make([]string, 0, len(fresh))
	for k := range fresh {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if o, taken := owners[k]; taken {
			return &PortConflictError{Address: fresh[k], Node: n.Name, Owner: o}
		}
	}
	return nil
}

// portOwners maps every port key of nodes other than except to its node's
// name.
func portOwners(ctx context.Context, q rowsQuerier, except string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, ports FROM nodes WHERE uuid != ? AND ports != '[]'`, except)
	if err != nil {
		return nil, fmt.Errorf("read port addresses: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, js string
		if err := rows.Scan(&name, &js); err != nil {
			return nil, fmt.Errorf("read port addresses: %w", err)
		}
		var ps []Port
		if err := json.Unmarshal([]byte(js), &ps); err != nil {
			return nil, fmt.Errorf("node %s: decode ports: %w", name, err)
		}
		for _, p := range ps {
			out[PortKey(p.Address)] = name
		}
	}
	return out, rows.Err()
}

// PortDuplicate is a port address held by more than one node.
type PortDuplicate struct {
	Address string
	Nodes   []string
}

// DuplicatePorts lists port addresses held by more than one node (left by
// versions that did not refuse them), so they can be reported; the agent
// lookup cannot tell those nodes apart.
func (s *DB) DuplicatePorts(ctx context.Context) ([]PortDuplicate, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, ports FROM nodes WHERE ports != '[]' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read port addresses: %w", err)
	}
	defer rows.Close()
	by := map[string][]string{}
	for rows.Next() {
		var name, js string
		if err := rows.Scan(&name, &js); err != nil {
			return nil, fmt.Errorf("read port addresses: %w", err)
		}
		var ps []Port
		if err := json.Unmarshal([]byte(js), &ps); err != nil {
			return nil, fmt.Errorf("node %s: decode ports: %w", name, err)
		}
		mine := map[string]bool{}
		for _, p := range ps {
			k := PortKey(p.Address)
			if !mine[k] {
				mine[k] = true
				by[k] = append(by[k], name)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []PortDuplicate
	for k, ns := range by {
		if len(ns) > 1 {
			out = append(out, PortDuplicate{Address: k, Nodes: ns})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}
