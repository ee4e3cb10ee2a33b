package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// The everyday node verbs (issue 16): power, boot device, boot mode, secure
// boot, maintenance and validate. Each iLO action is a bundled playbook
// (scripts/node_*.lua), so it is recorded, overridable and bounded.

func nodeVerbCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{nodePowerCmd(g), nodeBootDeviceCmd(g), nodeBootModeCmd(g), nodeSecureBootCmd(g),
		nodeMaintenanceCmd(g), nodeValidateCmd(g)}
}

func nodePowerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "power", Short: "Power nodes on or off, reboot them or read their power state"}
	for _, a := range []struct{ name, action, short string }{
		{"on", "on", "Power on and wait until on"},
		{"off", "off", "Hard power off (hold the power button) and wait until off"},
		{"reboot", "reboot", "Reset when on, power on when off"},
		{"soft-off", "soft_off", "Press the power button; hard off after [conductor] soft_power_off_timeout"},
		{"nmi", "nmi", "Inject an NMI (not supported by lightsout's iLO operations: fails not_supported)"},
	} {
		action := a.action
		cmd.AddCommand(verbCmd(g, verbSpec{use: a.name + " NODE... | --all", short: a.short,
			long:   a.short + ". Runs the node_power playbook (params.action=" + action + ") on each node.",
			script: app.ScriptNodePower, extra: func() map[string]string { return map[string]string{"action": action} },
			report: fieldReport([]string{"POWER STATE"}, "power_state")}))
	}
	cmd.AddCommand(verbCmd(g, verbSpec{use: "state NODE... | --all", short: "Read the power state from the iLO and record it",
		long:   "Read each node's power state from its iLO and store it in power_state (node_power, action=state).",
		script: app.ScriptNodePower, extra: func() map[string]string { return map[string]string{"action": "state"} },
		report: fieldReport([]string{"POWER STATE"}, "power_state")}))
	return cmd
}

// valueLast takes the verb's value (the last argument, one of allowed)
// from args and returns the nodes before it.
func valueLast(what string, allowed []string, param string, extra map[string]string) func([]string) ([]string, map[string]string, error) {
	return func(args []string) ([]string, map[string]string, error) {
		if len(args) == 0 {
			return nil, nil, usage("name the %s (%s) after the nodes", what, strings.Join(allowed, ", "))
		}
		v := strings.ToLower(args[len(args)-1])
		ok := false
		for _, a := range allowed {
			ok = ok || a == v
		}
		if !ok {
			return nil, nil, usage("unknown %s %q: use %s", what, args[len(args)-1], strings.Join(allowed, ", "))
		}
		p := map[string]string{param: v}
		for k, val := range extra {
			p[k] = val
		}
		return args[:len(args)-1], p, nil
	}
}

func nodeBootDeviceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "boot-device", Short: "Set or show the boot device of nodes"}
	var persistent bool
	devices := []string{"pxe", "disk", "cdrom", "bios"}
	set := verbCmd(g, verbSpec{use: "set NODE... | --all  pxe|disk|cdrom|bios [--persistent]",
		short: "Set the boot device (one-time unless --persistent)",
		long: `Set the boot device as Ironic's iLO management interface: pxe (NETWORK), disk (HDD),
cdrom (CDROM); one-time unless --persistent. bios (BIOS setup) is no iLO boot device:
the run fails with not_supported.`,
		script: app.ScriptNodeBootDevice,
		split: func(args []string) ([]string, map[string]string, error) {
			return valueLast("boot device", devices, "device",
				map[string]string{"action": "set", "persistent": fmt.Sprint(persistent)})(args)
		},
		report: fieldReport([]string{"BOOT DEVICE", "PERSISTENT"}, "boot_device", "persistent"),
		setup: func(c *cobra.Command) {
			c.Flags().BoolVar(&persistent, "persistent", false, "set the persistent boot device (default: one-time)")
			c.ValidArgsFunction = completeNodesThen(g, devices)
		}})
	show := verbCmd(g, verbSpec{use: "show NODE... | --all", short: "Show the boot device (one-time when set, else persistent)",
		long:   "Read each node's boot device from its iLO (node_boot_device, action=show).",
		script: app.ScriptNodeBootDevice, extra: func() map[string]string { return map[string]string{"action": "show"} },
		report: fieldReport([]string{"BOOT DEVICE", "PERSISTENT"}, "boot_device", "persistent")})
	cmd.AddCommand(set, show)
	return cmd
}

func nodeBootModeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "boot-mode", Short: "Set the boot mode of nodes (uefi or bios)"}
	modes := []string{"uefi", "bios"}
	cmd.AddCommand(verbCmd(g, verbSpec{use: "set NODE... | --all  uefi|bios", short: "Set the pending boot mode (from the next boot)",
		long:   "Set the iLO's pending boot mode; a mode the server does not support fails with not_supported.",
		script: app.ScriptNodeBootMode, split: valueLast("boot mode", modes, "mode", nil),
		report: fieldReport([]string{"BOOT MODE"}, "boot_mode"),
		setup:  func(c *cobra.Command) { c.ValidArgsFunction = completeNodesThen(g, modes) }}))
	return cmd
}

func nodeSecureBootCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secure-boot", Short: "Turn UEFI secure boot on or off"}
	for _, a := range []struct{ name, enable string }{{"on", "true"}, {"off", "false"}} {
		enable := a.enable
		cmd.AddCommand(verbCmd(g, verbSpec{use: a.name + " NODE... | --all", short: "Turn secure boot " + a.name + " (from the next boot)",
			long:   "Set the iLO's secure boot mode; servers without secure boot (Gen8, legacy mode) fail with not_supported.",
			script: app.ScriptNodeSecureBoot, extra: func() map[string]string { return map[string]string{"enable": enable} },
			report: fieldReport([]string{"SECURE BOOT"}, "secure_boot")}))
	}
	return cmd
}

// fieldReport prints, per run, the fields its playbook logged (the last log
// event carrying the first key), or the run's error.
func fieldReport(headers []string, keys ...string) func(g *globals, a *app.App, results []runtime.Result, asJSON bool) error {
	return func(g *globals, a *app.App, results []runtime.Result, asJSON bool) error {
		type row struct {
			Node   string         `json:"node"`
			RunID  int64          `json:"run"`
			Status string         `json:"status"`
			Fields map[string]any `json:"result"`
			Error  string         `json:"error,omitempty"`
		}
		rows := make([]row, len(results))
		for i, r := range results {
			rows[i] = row{Node: r.Node, RunID: r.RunID, Status: r.Status, Fields: map[string]any{}, Error: a.Redactor.String(r.Error)}
			if r.RunID == 0 {
				continue
			}
			evs, err := a.Store.Events(context.Background(), r.RunID)
			if err != nil {
				return err
			}
			for _, f := range loggedFields(evs, keys[0]) {
				for _, k := range keys {
					if v, ok := f[k]; ok {
						rows[i].Fields[k] = v
					}
				}
			}
		}
		if asJSON {
			if err := printJSON(g.stdout, rows); err != nil {
				return err
			}
		} else {
			t := newTable(g.stdout, append(append([]string{"NODE", "RUN", "STATUS"}, headers...), "ERROR")...)
			for _, r := range rows {
				cells := []any{r.Node, r.RunID, r.Status}
				for _, k := range keys {
					v, ok := r.Fields[k]
					if !ok {
						v = "-"
					}
					cells = append(cells, v)
				}
				t.row(append(cells, firstLine(r.Error))...)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		return failedRuns(results)
	}
}

// loggedFields returns the fields of the run's log events that carry key.
func loggedFields(evs []store.Event, key string) []map[string]any {
	var out []map[string]any
	for _, e := range evs {
		if e.Kind != store.EventLog {
			continue
		}
		if f, ok := e.Data["fields"].(map[string]any); ok {
			if _, ok := f[key]; ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// failedRuns returns a runFailedError when any run did not succeed.
func failedRuns(results []runtime.Result) error {
	failed := 0
	for _, r := range results {
		if !r.Succeeded() {
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(results) == 1:
		return &runFailedError{msg: fmt.Sprintf("run %d %s: %s", results[0].RunID, results[0].Status, firstLine(results[0].Error))}
	}
	return &runFailedError{msg: fmt.Sprintf("%d of %d runs did not succeed (see `lightsout runs show ID`)", failed, len(results))}
}

func nodeMaintenanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "maintenance", Short: "Put nodes in or take them out of maintenance",
		Long: `A node in maintenance is refused by inspect, deploy, undeploy and clean (and --all
skips it); boot-iso, node manage, the power and boot verbs and validate still act on it,
as in Ironic. A change is refused while a run holds the node.`}
	var reason string
	set := &cobra.Command{
		Use:               "set NODE... --reason TEXT",
		Short:             "Put nodes in maintenance with a reason",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeNodes(g),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			return setMaintenance(cmd, g, a, args, true, reason)
		}),
	}
	set.Flags().StringVar(&reason, "reason", "", "why the node is in maintenance (shown by node list)")
	unset := &cobra.Command{
		Use:               "unset NODE...",
		Short:             "Take nodes out of maintenance",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeNodes(g),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			return setMaintenance(cmd, g, a, args, false, "")
		}),
	}
	cmd.AddCommand(set, unset)
	return cmd
}

func setMaintenance(cmd *cobra.Command, g *globals, a *app.App, names []string, on bool, reason string) error {
	for _, name := range names {
		n, err := a.UpdateNode(cmd.Context(), name, app.NodeChange{Maintenance: &on, MaintenanceReason: reason})
		if errors.Is(err, store.ErrNotFound) {
			return &app.ValidationError{Err: err} // exit 2, as the verbs
		} else if err != nil {
			return err // a run holds the node: exit 1
		}
		if on {
			fmt.Fprintf(g.stdout, "%s: maintenance (%s)\n", n.Name, orNoReason(n.MaintenanceReason))
		} else {
			fmt.Fprintf(g.stdout, "%s: not in maintenance\n", n.Name)
		}
	}
	return nil
}

func orNoReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// validateRow is one interface of `node validate` (Ironic's table).
type validateRow struct {
	Interface string `json:"interface"`
	Result    bool   `json:"result"`
	Reason    string `json:"reason"`
}

// validateJSON is the `node validate --json` schema, one per node.
type validateJSON struct {
	Node       string        `json:"node"`
	RunID      int64         `json:"run"`
	Interfaces []validateRow `json:"interfaces"`
	Error      string        `json:"error,omitempty"`
}

func nodeValidateCmd(g *globals) *cobra.Command {
	return verbCmd(g, verbSpec{use: "validate NODE... | --all",
		short: "Check that nodes are ready (Ironic's per-interface validate), changing nothing",
		long: `Check, per interface (power, management, boot, deploy, console, inspect): the
credentials work and the iLO answers, the licence allows virtual media, the deploy
ramdisk and image references resolve, ports exist for the agent. Nothing changes
on the node. Exit status: 0 when every interface of every node is valid, 1 otherwise.`,
		script: app.ScriptNodeValidate,
		report: reportValidate})
}

// reportValidate prints the interface table of each validate run, adding
// whether the deploy ramdisk and image references resolve.
func reportValidate(g *globals, a *app.App, results []runtime.Result, asJSON bool) error {
	var out []validateJSON
	invalid := 0
	for _, r := range results {
		v := validateJSON{Node: r.Node, RunID: r.RunID, Interfaces: []validateRow{}}
		if !r.Succeeded() {
			v.Error = a.Redactor.String(firstLine(r.Error))
			invalid++
			out = append(out, v)
			continue
		}
		evs, err := a.Store.Events(context.Background(), r.RunID)
		if err != nil {
			return err
		}
		n, err := a.Store.GetNode(context.Background(), r.Node)
		if err != nil {
			return err
		}
		for _, f := range loggedFields(evs, "interface") {
			row := validateRow{Interface: fmt.Sprint(f["interface"]), Result: f["result"] == true, Reason: fmt.Sprint(f["reason"])}
			var refs []string
			switch row.Interface {
			case "boot":
				refs = deployRamdiskRefs(a, n)
			case "deploy":
				refs = []string{firstSet(n.InstanceInfo, "image_source")}
			}
			for _, ref := range refs {
				if !row.Result || ref == "" {
					break
				}
				if err := checkReference(ref); err != nil {
					row.Result, row.Reason = false, a.Redactor.String(err.Error())
				}
			}
			if !row.Result && row.Interface != "console" {
				invalid++
			}
			v.Interfaces = append(v.Interfaces, row)
		}
		out = append(out, v)
	}
	if asJSON {
		if err := printJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		for i, v := range out {
			if i > 0 {
				fmt.Fprintln(g.stdout)
			}
			fmt.Fprintf(g.stdout, "%s (run %d)\n", v.Node, v.RunID)
			if v.Error != "" {
				fmt.Fprintf(g.stdout, "  validate failed: %s\n", v.Error)
				continue
			}
			t := newTable(g.stdout, "  INTERFACE", "RESULT", "REASON")
			for _, r := range v.Interfaces {
				t.row("  "+r.Interface, r.Result, orDash(r.Reason))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	if invalid > 0 {
		return &runFailedError{msg: fmt.Sprintf("%d interface check(s) failed (console is optional)", invalid)}
	}
	return nil
}

// deployRamdiskRefs are the references a node boots its deploy ramdisk
// from: the deploy ISO (agent_ilo, iscsi_ilo), else, and always for
// pxe_ilo (which boots over PXE), deploy_kernel and deploy_ramdisk from
// driver_info, else from [conductor].
func deployRamdiskRefs(a *app.App, n *store.Node) []string {
	if iso := firstSet(n.DriverInfo, "ilo_deploy_iso", "deploy_iso"); iso != "" && n.Driver != "pxe_ilo" {
		return []string{iso}
	}
	k, r := firstSet(n.DriverInfo, "deploy_kernel"), firstSet(n.DriverInfo, "deploy_ramdisk")
	if k == "" || r == "" {
		k, r = a.Config.String("conductor", "deploy_kernel"), a.Config.String("conductor", "deploy_ramdisk")
	}
	return []string{k, r}
}

func firstSet(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// checkReference tells whether an image reference resolves: a local file
// exists, an http(s) URL answers a HEAD request with 2xx; swift: and
// glance:// references are resolved by the run that uses them.
func checkReference(ref string) error {
	switch {
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, ref, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s does not resolve: %w", ref, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s does not resolve: HTTP %s", ref, resp.Status)
		}
		return nil
	case strings.HasPrefix(ref, "swift:") || strings.HasPrefix(ref, "glance://"):
		return nil
	default:
		p := strings.TrimPrefix(ref, "file://")
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s does not resolve: %w", ref, err)
		}
		return nil
	}
}
