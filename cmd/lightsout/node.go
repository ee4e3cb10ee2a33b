package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/inventory"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// nodeJSON is the stable `node show --json` schema (secrets masked).
type nodeJSON struct {
	Name               string         `json:"name"`
	UUID               string         `json:"uuid"`
	Driver             string         `json:"driver"`
	DriverInfo         map[string]any `json:"driver_info"`
	Properties         map[string]any `json:"properties"`
	InstanceInfo       map[string]any `json:"instance_info"`
	DriverInternalInfo map[string]any `json:"driver_internal_info"`
	Ports              []store.Port   `json:"ports"`
	ProvisionState     string         `json:"provision_state"`
	PowerState         string         `json:"power_state"`
	LastError          string         `json:"last_error"`
	Maintenance        bool           `json:"maintenance"`
	MaintenanceReason  string         `json:"maintenance_reason,omitempty"`
	Reservation        int64          `json:"reservation,omitempty"`
	// Lease names the process holding the reservation (PostgreSQL store).
	Lease *store.Lease `json:"lease,omitempty"`
}

func toNodeJSON(a *app.App, n *store.Node) nodeJSON {
	ports := n.Ports
	if ports == nil {
		ports = []store.Port{}
	}
	// Secret keys are masked, and by value every known secret (the node's own
	// and the configuration's) and URL credential wherever a run copied it.
	for _, m := range []map[string]any{n.DriverInfo, n.InstanceInfo, n.DriverInternalInfo} {
		a.Redactor.AddFromMap(m)
	}
	red := func(m map[string]any) map[string]any {
		out, _ := a.Redactor.Value(secrets.MaskMap(m)).(map[string]any)
		return out
	}
	return nodeJSON{Name: n.Name, UUID: n.UUID, Driver: n.Driver,
		DriverInfo:         jsonBounded(red(n.DriverInfo)),
		Properties:         jsonBounded(red(n.Properties)),
		InstanceInfo:       jsonBounded(red(n.InstanceInfo)),
		DriverInternalInfo: jsonBounded(red(n.DriverInternalInfo)),
		Ports:              ports, ProvisionState: n.ProvisionState, PowerState: n.PowerState,
		LastError: a.Redactor.String(n.LastError), Maintenance: n.Maintenance,
		MaintenanceReason: a.Redactor.String(n.MaintenanceReason), Reservation: n.Reservation, Lease: n.Lease}
}

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Register and manage servers (Ironic-style inventory)"}
	cmd.AddCommand(nodeCreateCmd(g), nodeListCmd(g), nodeShowCmd(g), nodeSetCmd(g), nodeUnsetCmd(g),
		nodeDeleteCmd(g), nodeImportCmd(g), nodeManageCmd(g), nodeProvideCmd(g), nodeAbortCmd(g), nodeRecoverCmd(g))
	cmd.AddCommand(nodeVerbCommands(g)...)
	return cmd
}

func nodeCreateCmd(g *globals) *cobra.Command {
	var driver string
	var info, props, inst, ports []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create NAME --driver agent_ilo|iscsi_ilo|pxe_ilo -i KEY=VALUE...",
		Short: "Register a node (enroll state)",
		Example: `  lightsout node create gen10-1 --driver agent_ilo -i ilo_address=10.0.0.5 \
    -i ilo_username=admin -i ilo_password=secret -i ilo_deploy_iso=http://10.0.0.1/ipa.iso \
    -p capabilities=boot_mode:uefi --port 52:54:00:12:34:56`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := app.NodeSpec{Name: args[0], Driver: driver, Ports: ports}
			var err error
			if spec.DriverInfo, err = app.ParseKV("-i/--driver-info", info); err != nil {
				return err
			}
			if spec.Properties, err = app.ParseKV("-p/--property", props); err != nil {
				return err
			}
			if spec.InstanceInfo, err = app.ParseKV("--instance-info", inst); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := a.CreateNode(cmd.Context(), spec)
			if err != nil {
				return err
			}
			return showNode(g, a, n, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&driver, "driver", "", "driver: "+strings.Join(inventory.Drivers(), ", "))
	_ = cmd.MarkFlagRequired("driver")
	f.StringArrayVarP(&info, "driver-info", "i", nil, "driver_info KEY=VALUE (repeatable)")
	f.StringArrayVarP(&props, "property", "p", nil, "properties KEY=VALUE (repeatable)")
	f.StringArrayVar(&inst, "instance-info", nil, "instance_info KEY=VALUE (repeatable)")
	f.StringArrayVar(&ports, "port", nil, "MAC address of a NIC (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the node as JSON")
	_ = cmd.RegisterFlagCompletionFunc("driver", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return inventory.Drivers(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func nodeListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes",
		Args:  cobra.NoArgs,
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			nodes, err := a.Store.ListNodes(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]nodeJSON, len(nodes))
				for i, n := range nodes {
					out[i] = toNodeJSON(a, n)
				}
				return printJSON(g.stdout, out)
			}
			t := newTable(g.stdout, "NAME", "UUID", "DRIVER", "PROVISION STATE", "POWER", "MAINT", "LOCKED BY", "MAINTENANCE REASON")
			for _, n := range nodes {
				lock := "-"
				if n.Reservation != 0 {
					lock = fmt.Sprintf("run %d", n.Reservation)
				}
				reason := "-"
				if n.Maintenance {
					reason = cutLine(a.Redactor.String(orNoReason(n.MaintenanceReason)))
				}
				t.row(n.Name, n.UUID, n.Driver, n.ProvisionState, orDash(n.PowerState), n.Maintenance, lock, reason)
			}
			return t.flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showNode(g *globals, a *app.App, n *store.Node, asJSON bool) error {
	j := toNodeJSON(a, n)
	if asJSON {
		return printJSON(g.stdout, j)
	}
	t := newTable(g.stdout, "FIELD", "VALUE")
	t.row("name", j.Name)
	t.row("uuid", j.UUID)
	t.row("driver", j.Driver)
	t.row("driver_info", fmtMap(j.DriverInfo))
	t.row("properties", fmtMap(j.Properties))
	t.row("instance_info", fmtMap(j.InstanceInfo))
	t.row("driver_internal_info", fmtMap(j.DriverInternalInfo))
	ports := make([]string, len(j.Ports))
	for i, p := range j.Ports {
		ports[i] = p.Address
	}
	t.row("ports", strings.Join(ports, ", "))
	t.row("provision_state", j.ProvisionState)
	t.row("power_state", orDash(j.PowerState))
	t.row("last_error", orDash(j.LastError))
	t.row("maintenance", j.Maintenance)
	if n.Maintenance {
		t.row("maintenance_reason", a.Redactor.String(orNoReason(n.MaintenanceReason)))
	}
	if j.Reservation != 0 {
		by := fmt.Sprintf("run %d", j.Reservation)
		if j.Lease != nil {
			by += fmt.Sprintf(" of process (conductor) %d, lease until %s", j.Lease.Conductor, fmtTime(j.Lease.Expires))
		}
		t.row("locked_by", by)
	}
	if err := t.flush(); err != nil {
		return err
	}
	// The node's last runs: what was done to it, and where to look.
	runs, err := a.Store.ListRuns(context.Background(), store.RunFilter{Node: n.UUID, Limit: 5})
	if err != nil || len(runs) == 0 {
		return err
	}
	fmt.Fprintln(g.stdout, "\nLast runs (lightsout runs show ID):")
	rt := newTable(g.stdout, "  ID", "SCRIPT", "STATUS", "STARTED", "ERROR")
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		rt.row(fmt.Sprintf("  %d", r.ID), r.Script, r.Status, fmtTime(r.StartedAt), firstLine(a.Redactor.String(r.Error)))
	}
	return rt.flush()
}

func nodeShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a node (secrets masked)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNodes(g),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			n, err := a.Store.GetNode(cmd.Context(), args[0])
			if err != nil {
				return &app.ValidationError{Err: err}
			}
			return showNode(g, a, n, asJSON)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func nodeSetCmd(g *globals) *cobra.Command {
	var info, props, inst, ports []string
	var name, driver string
	var maint bool
	var reason string
	cmd := &cobra.Command{
		Use:   "set NAME [-i KEY=VALUE]... [-p KEY=VALUE]... [--instance-info KEY=VALUE]... [--port MAC]...",
		Short: "Change a node",
		Long: `Change a node. A change is refused while a run holds the node ("node N is locked by
run R (deploy)"): a run reads its node once, when it starts, and nothing changes it
under the run. Exit status: 0 changed, 1 refused because a run holds the node,
2 bad usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := app.NodeChange{Name: name, Driver: driver, AddPorts: ports}
			var err error
			if c.DriverInfo, err = app.ParseKV("-i/--driver-info", info); err != nil {
				return err
			}
			if c.Properties, err = app.ParseKV("-p/--property", props); err != nil {
				return err
			}
			if c.InstanceInfo, err = app.ParseKV("--instance-info", inst); err != nil {
				return err
			}
			if cmd.Flags().Changed("maintenance") {
				c.Maintenance, c.MaintenanceReason = &maint, reason
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := a.UpdateNode(cmd.Context(), args[0], c)
			if err != nil {
				return err
			}
			return showNode(g, a, n, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "rename the node")
	f.StringVar(&driver, "driver", "", "change the driver")
	f.StringArrayVarP(&info, "driver-info", "i", nil, "driver_info KEY=VALUE (repeatable)")
	f.StringArrayVarP(&props, "property", "p", nil, "properties KEY=VALUE (repeatable)")
	f.StringArrayVar(&inst, "instance-info", nil, "instance_info KEY=VALUE (repeatable)")
	f.StringArrayVar(&ports, "port", nil, "add a port by MAC (repeatable)")
	f.BoolVar(&maint, "maintenance", false, "put the node in (or, with =false, out of) maintenance")
	f.StringVar(&reason, "maintenance-reason", "", "reason for maintenance")
	return cmd
}

func nodeUnsetCmd(g *globals) *cobra.Command {
	var info, props, inst, ports []string
	cmd := &cobra.Command{
		Use:   "unset NAME [-i KEY]... [-p KEY]... [--instance-info KEY]... [--port MAC]...",
		Short: "Remove keys or ports from a node",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			n, err := a.UpdateNode(cmd.Context(), args[0], app.NodeChange{UnsetDriverInfo: info, UnsetProperties: props,
				UnsetInstanceInfo: inst, RemovePorts: ports})
			if err != nil {
				return err
			}
			return showNode(g, a, n, false)
		}),
	}
	f := cmd.Flags()
	f.StringArrayVarP(&info, "driver-info", "i", nil, "driver_info key to remove (repeatable)")
	f.StringArrayVarP(&props, "property", "p", nil, "property to remove (repeatable)")
	f.StringArrayVar(&inst, "instance-info", nil, "instance_info key to remove (repeatable)")
	f.StringArrayVar(&ports, "port", nil, "port MAC to remove (repeatable)")
	return cmd
}

func nodeDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete nodes (refused while a run holds the node)",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			for _, name := range args {
				if err := a.Store.DeleteNode(cmd.Context(), name); err != nil {
					var le *store.LockedError
					if errors.As(err, &le) {
						return err // exit 1: retry once the run ends, or `node abort`
					}
					return &app.ValidationError{Err: err}
				}
				fmt.Fprintf(g.stdout, "deleted %s\n", name)
			}
			return nil
		}),
	}
}

func nodeImportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Import nodes from JSON or YAML (node show --json shape, Ironic or Bifrost lists)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			nodes, err := a.ImportNodes(cmd.Context(), args[0])
			for _, n := range nodes {
				fmt.Fprintf(g.stdout, "imported %s (%s)\n", n.Name, n.UUID)
			}
			return err
		}),
	}
}

func stateCmd(g *globals, use, short string, fn func(a *app.App, cmd *cobra.Command, name string) (*store.Node, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			for _, name := range args {
				n, err := fn(a, cmd, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s: %s\n", n.Name, n.ProvisionState)
			}
			return nil
		}),
	}
}

func nodeManageCmd(g *globals) *cobra.Command {
	return stateCmd(g, "manage", "Validate a node and move it to manageable", func(a *app.App, cmd *cobra.Command, name string) (*store.Node, error) {
		return a.Manage(cmd.Context(), name)
	})
}

func nodeProvideCmd(g *globals) *cobra.Command {
	return stateCmd(g, "provide", "Make a manageable node available (automated cleaning)", func(a *app.App, cmd *cobra.Command, name string) (*store.Node, error) {
		return a.Provide(cmd.Context(), name)
	})
}

func nodeAbortCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "abort NAME",
		Short: "Stop the run in progress on a node (Ironic's abort); the node ends in its failure state",
		Long: `Stop the run holding a node. A run of a live process is asked to stop: within a
second it cancels, runs its playbook's failure path (power off, eject and unpublish
the virtual media, withdraw the agent token, secure boot back) and ends; abort waits
for it. A run whose process died is marked interrupted here and its cleanup is done
by the recover playbook. The node ends in deploy failed, clean failed, inspect failed
or error, with last_error saying it was aborted.
Exit status: 0 aborted, 1 the abort or recovery failed, 2 nothing to abort.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			out, err := a.Abort(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, out)
			}
			if out.Run != 0 {
				fmt.Fprintf(g.stdout, "run %d aborted (%s)\n", out.Run, out.How)
			}
			if out.Recovery != 0 {
				fmt.Fprintf(g.stdout, "cleanup finished by run %d\n", out.Recovery)
			}
			fmt.Fprintf(g.stdout, "%s: %s\n", out.Node, out.ProvisionState)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func nodeRecoverCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "recover NAME",
		Short: "Finish the cleanup an interrupted run left on a node (the verbs do it first too)",
		Long: `Run the recover playbook on a node whose run was interrupted (process killed):
withdraw the agent token, power off, eject and unpublish the virtual media, put
secure boot back as it was before a deploy. The node stays in its failure state,
from which the verbs work again (deploy from deploy failed, undeploy from deploy
failed or error, node manage from clean failed or inspect failed).
Exit status: 0 recovered or nothing to do, 1 the recovery failed.`,
		Args: cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			res, err := a.RecoverIfNeeded(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			n, err := a.Store.GetNode(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if res == nil {
				fmt.Fprintf(g.stdout, "%s: nothing to recover (%s)\n", n.Name, n.ProvisionState)
				return nil
			}
			fmt.Fprintf(g.stdout, "%s: recovered by run %d (%s)\n", n.Name, res.RunID, n.ProvisionState)
			return nil
		}),
	}
}
