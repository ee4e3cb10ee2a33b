package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/lightsout/lightsout/runtime/inventory"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
)

// ValidationError marks bad input (exit code 2).
type ValidationError struct{ Err error }

func (e *ValidationError) Error() string { return e.Err.Error() }
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &ValidationError{fmt.Errorf(format, args...)}
}

// ParseKV parses KEY=VALUE arguments of flag into a map. Values that look
// like integers or booleans stay strings except for known integer keys.
func ParseKV(flag string, args []string) (map[string]any, error) {
	out := map[string]any{}
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, invalid("%s %q: expected KEY=VALUE in argument %d of %s (%s; for example %s ilo_address=10.0.0.5)",
				flag, secrets.Mask, i+1, flag, NotShown, flag)
		}
		out[k] = typed(k, v)
	}
	return out, nil
}

// NotShown explains in an error why a rejected argument is not echoed.
const NotShown = "the argument is not shown: it may hold a password"

// typed keeps Ironic's integer options as numbers.
func typed(k, v string) any {
	switch k {
	case "client_port", "client_timeout", "console_port", "memory_mb", "cpus", "local_gb":
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return v
}

// NodeSpec is what `node create` takes.
type NodeSpec struct {
	Name         string
	Driver       string
	DriverInfo   map[string]any
	Properties   map[string]any
	InstanceInfo map[string]any
	Ports        []string
}

// CreateNode validates and stores a new node in the enroll state.
func (a *App) CreateNode(ctx context.Context, s NodeSpec) (*store.Node, error) {
	n := &store.Node{UUID: uuid.NewString(), Name: s.Name, Driver: s.Driver, DriverInfo: orMap(s.DriverInfo),
		Properties: orMap(s.Properties), InstanceInfo: orMap(s.InstanceInfo), DriverInternalInfo: map[string]any{},
		ProvisionState: states.Enroll}
	for _, p := range s.Ports {
		n.Ports = append(n.Ports, store.Port{Address: strings.ToLower(p)})
	}
	return n, a.insert(ctx, n)
}

func (a *App) insert(ctx context.Context, n *store.Node) error {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	}
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = map[string]any{}
	}
	if err := inventory.ValidateNode(n); err != nil {
		return &ValidationError{err}
	}
	a.Redactor.AddFromMap(n.DriverInfo)
	if err := a.Store.CreateNode(ctx, n); err != nil {
		var dup *store.DuplicateError
		var pc *store.PortConflictError
		if errors.As(err, &dup) || errors.As(err, &pc) {
			return &ValidationError{err}
		}
		return err
	}
	return nil
}

func orMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// ImportNodes creates every node of a JSON/YAML list. Validation of the
// whole file happens first: on any error nothing is created.
func (a *App) ImportNodes(ctx context.Context, path string) ([]*store.Node, error) {
	nodes, err := inventory.ReadImport(path)
	if err != nil {
		return nil, &ValidationError{err}
	}
	existing, err := a.Store.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	owner := map[string]string{} // port key → node name
	for _, n := range existing {
		for _, p := range n.Ports {
			owner[store.PortKey(p.Address)] = n.Name
		}
	}
	taken := make(map[string]bool, 2*len(existing)) // names and uuids: GetNode's refs
	for _, n := range existing {
		taken[n.Name], taken[n.UUID] = true, true
	}
	for _, n := range nodes {
		if taken[n.Name] {
			return nil, &ValidationError{fmt.Errorf("import %s: node %q already exists (delete it first or rename the entry)", path, n.Name)}
		}
	}
	for _, n := range nodes {
		mine := map[string]bool{}
		for _, p := range n.Ports {
			k := store.PortKey(p.Address)
			if o, taken := owner[k]; taken && !mine[k] {
				return nil, &ValidationError{fmt.Errorf("import %s: node %s: %w", path, n.Name,
					&store.PortConflictError{Address: p.Address, Node: n.Name, Owner: o})}
			}
			if mine[k] {
				return nil, &ValidationError{fmt.Errorf("import %s: %w", path,
					&store.PortConflictError{Address: p.Address, Node: n.Name, Owner: n.Name})}
			}
			mine[k] = true
		}
		for k := range mine {
			owner[k] = n.Name
		}
	}
	// One redactor update and one transaction for the whole file: per
	// node, each rebuilt the redactor's replacer over every secret known
	// and scanned every stored port (O(N²): ~10 CPU-minutes for 10,000).
	var values []string
	for _, n := range nodes {
		if n.UUID == "" {
			n.UUID = uuid.NewString()
		}
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = map[string]any{}
		}
		values = secretValues(values, n.DriverInfo)
	}
	a.Redactor.Add(values...)
	if err := a.Store.CreateNodes(ctx, nodes); err != nil {
		var dup *store.DuplicateError
		var pc *store.PortConflictError
		if errors.As(err, &dup) || errors.As(err, &pc) {
			err = &ValidationError{err}
		}
		return nil, fmt.Errorf("import %s: %w (nothing was imported)", path, err)
	}
	return nodes, nil
}

// secretValues appends the string values of m's secret keys (recursively),
// what Redactor.AddFromMap registers, so many maps cost one Add.
func secretValues(out []string, m map[string]any) []string {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if secrets.IsSecretKey(k) {
				out = append(out, x)
			}
		case map[string]any:
			out = secretValues(out, x)
		}
	}
	return out
}

// NodeChange is what `node set` / `node unset` apply.
type NodeChange struct {
	Name         string // rename
	Driver       string
	DriverInfo   map[string]any
	Properties   map[string]any
	InstanceInfo map[string]any
	AddPorts     []string
	// Unset lists: keys to remove.
	UnsetDriverInfo, UnsetProperties, UnsetInstanceInfo, RemovePorts []string
	Maintenance                                                      *bool
	MaintenanceReason                                                string
}

// UpdateNode applies a change after validating the result.
func (a *App) UpdateNode(ctx context.Context, ref string, c NodeChange) (*store.Node, error) {
	n, err := a.Store.UpdateNode(ctx, ref, func(n *store.Node) error {
		if c.Name != "" {
			n.Name = c.Name
		}
		if c.Driver != "" {
			n.Driver = c.Driver
		}
		for k, v := range c.DriverInfo {
			n.DriverInfo[k] = v
		}
		for k, v := range c.Properties {
			n.Properties[k] = v
		}
		for k, v := range c.InstanceInfo {
			n.InstanceInfo[k] = v
		}
		for _, k := range c.UnsetDriverInfo {
			delete(n.DriverInfo, k)
		}
		for _, k := range c.UnsetProperties {
			delete(n.Properties, k)
		}
		for _, k := range c.UnsetInstanceInfo {
			delete(n.InstanceInfo, k)
		}
		for _, p := range c.AddPorts {
			n.Ports = append(n.Ports, store.Port{Address: strings.ToLower(p)})
		}
		if len(c.RemovePorts) > 0 {
			keep := n.Ports[:0]
			for _, p := range n.Ports {
				drop := false
				for _, r := range c.RemovePorts {
					drop = drop || strings.EqualFold(p.Address, r)
				}
				if !drop {
					keep = append(keep, p)
				}
			}
			n.Ports = keep
		}
		if c.Maintenance != nil {
			n.Maintenance = *c.Maintenance
			n.MaintenanceReason = c.MaintenanceReason
		}
		if err := inventory.ValidateNode(n); err != nil {
			return &ValidationError{err}
		}
		return nil
	})
	if err != nil {
		var dup *store.DuplicateError
		var pc *store.PortConflictError
		if errors.As(err, &dup) || errors.As(err, &pc) {
			return nil, &ValidationError{err}
		}
		return nil, err
	}
	a.Redactor.AddFromMap(n.DriverInfo)
	return n, nil
}

// Manage moves a node to manageable: from enroll after full validation
// (verifying), or from available/clean failed/inspect failed.
func (a *App) Manage(ctx context.Context, ref string) (*store.Node, error) {
	if _, err := a.RecoverIfNeeded(ctx, ref); err != nil {
		return nil, err
	}
	n, err := a.Store.GetNode(ctx, ref)
	if err != nil {
		return nil, &ValidationError{err}
	}
	if n.ProvisionState != states.Enroll {
		n, err := a.Store.Transition(ctx, ref, "manage")
		return n, asValidation(err)
	}
	if _, err := a.Store.Transition(ctx, ref, "manage"); err != nil {
		return nil, asValidation(err)
	}
	if verr := inventory.ValidateDriverInfo(n.Driver, n.DriverInfo, true); verr != nil {
		if _, err := a.Store.UpdateNode(ctx, ref, func(n *store.Node) error {
			n.ProvisionState = states.Enroll
			n.LastError = verr.Error()
			return nil
		}); err != nil {
			return nil, err
		}
		return nil, &ValidationError{fmt.Errorf("node %s stays in enroll: %w", n.Name, verr)}
	}
	n, err = a.Store.UpdateNode(ctx, ref, func(n *store.Node) error {
		n.ProvisionState, n.LastError = states.Manageable, ""
		return nil
	})
	return n, err
}

func asValidation(err error) error {
	var te *states.TransitionError
	if errors.As(err, &te) {
		return &ValidationError{err}
	}
	var pc *store.PortConflictError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &pc) {
		return &ValidationError{err}
	}
	return err
}

// ResolveNodes expands --node names and --all into node names.
func (a *App) ResolveNodes(ctx context.Context, names []string, all bool) ([]string, error) {
	if all {
		ns, err := a.Store.ListNodes(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = n.Name
		}
		return out, nil
	}
	for _, n := range names {
		if _, err := a.Store.GetNode(ctx, n); err != nil {
			return nil, &ValidationError{err}
		}
	}
	return names, nil
}

// Provide moves a manageable node to available through automated
// cleaning: the clean playbook in effect (bundled clean.lua, or a site
// one) runs with mode=automated and transitions the node itself. With
// [conductor] clean_nodes = false the node passes through cleaning
// directly. A failed cleaning returns a *RunFailedError (the node is then
// in clean failed, in maintenance).
func (a *App) Provide(ctx context.Context, ref string) (*store.Node, error) {
	if _, err := a.RecoverIfNeeded(ctx, ref); err != nil {
		return nil, err
	}
	n, err := a.Store.GetNode(ctx, ref)
	if err != nil {
		return nil, &ValidationError{err}
	}
	if _, err := states.Next(n.ProvisionState, "provide"); err != nil {
		return nil, &ValidationError{fmt.Errorf("node %s: %w", n.Name, err)}
	}
	if !a.Config.Bool("conductor", "clean_nodes", true) {
		if _, err := a.Store.Transition(ctx, ref, "provide"); err != nil {
			return nil, asValidation(err)
		}
		return a.Store.Transition(ctx, ref, "done")
	}
	if _, err := a.RunPlaybook(ctx, ScriptClean, n.UUID, map[string]string{"mode": "automated"}); err != nil {
		return nil, err
	}
	return a.Store.GetNode(ctx, n.UUID)
}
