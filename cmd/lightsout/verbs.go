package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
)

// verbFlags are the flags every playbook verb takes.
type verbFlags struct {
	runFlags
}

func (f *verbFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "every node in a state the verb starts from")
	fl.IntVar(&f.parallel, "parallel", 0, "runs at once (default [lightsout] max_parallel)")
	fl.DurationVar(&f.timeout, "timeout", 0, "timeout of each run (default [lightsout] run_timeout)")
	fl.BoolVar(&f.wait, "wait", false, "wait for locked nodes instead of failing")
	fl.BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	fl.StringArrayVar(&f.params, "param", nil, "extra script parameter KEY=VALUE (repeatable)")
}

// verb builds a command that runs script on the named nodes (or --all),
// after prepare (when set) has validated and recorded each node's request.
func verb(g *globals, use, short, long, script string, prepare func(ctx context.Context, a *app.App, node string) error,
	extra func() map[string]string, setup func(cmd *cobra.Command)) *cobra.Command {
	return verbCmd(g, verbSpec{use: use, short: short, long: long, script: script, prepare: prepare, extra: extra, setup: setup})
}

// verbSpec describes a playbook verb.
type verbSpec struct {
	use, short, long, script string
	// prepare validates and records each node's request before any run.
	prepare func(ctx context.Context, a *app.App, node string) error
	// extra gives the script parameters (called after prepare).
	extra func() map[string]string
	// split, when set, takes the verb's own arguments (e.g. a trailing
	// device) from args: it returns the node names and script parameters.
	split func(args []string) ([]string, map[string]string, error)
	// report, when set, prints the results in place of the summary table.
	report func(g *globals, a *app.App, results []runtime.Result, asJSON bool) error
	setup  func(cmd *cobra.Command)
}

// verbCmd builds the command of a playbook verb.
func verbCmd(g *globals, v verbSpec) *cobra.Command {
	var f verbFlags
	cmd := &cobra.Command{
		Use:   v.use,
		Short: v.short,
		Long: v.long + "\nA site script of the same name (--scripts DIR) runs in place of the bundled one.\n" +
			"Progress per node (current step) is shown on a terminal, a summary otherwise.\n" +
			"Exit status: 0 when every run succeeded, 1 when any failed, 2 on bad usage.",
		ValidArgsFunction: completeNodes(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			var params map[string]string
			if v.split != nil {
				var err error
				if args, params, err = v.split(args); err != nil {
					return err
				}
			}
			if f.all == (len(args) > 0) {
				return usage("name the nodes or use --all (not both)")
			}
			if err := f.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			ctx := cmd.Context()
			nodes, err := a.NodesFor(ctx, v.script, args, f.all)
			if err != nil {
				return err
			}
			if len(nodes) == 0 {
				return usage("--all: no node is in a state %s starts from (see `lightsout node list`)", cmd.Name())
			}
			if err := recoverNodes(ctx, g, a, nodes); err != nil {
				return err
			}
			if v.prepare != nil {
				for _, n := range nodes {
					if err := v.prepare(ctx, a, n); err != nil {
						return err
					}
				}
			}
			f.nodes, f.all = nodes, false
			if v.extra != nil {
				params = v.extra()
			}
			if v.report != nil {
				f.report = func(a *app.App, results []runtime.Result) error { return v.report(g, a, results, f.asJSON) }
			}
			return f.execute(cmd, g, a, v.script, params)
		},
	}
	f.register(cmd)
	if v.setup != nil {
		v.setup(cmd)
	}
	return cmd
}

func newInspectCmd(g *globals) *cobra.Command {
	return verb(g, "inspect NODE... | --all", "Inspect nodes through their iLO (manageable → manageable)",
		`Power on when needed, read memory, CPUs, disk size and NIC MACs, merge the server's
capabilities into properties.capabilities, add a port per MAC, power back off.`,
		app.ScriptInspect, nil, nil, nil)
}

func newDeployCmd(g *globals) *cobra.Command {
	var o app.DeployOptions
	var bootMode string
	var secureBoot bool
	return verb(g, "deploy NODE... | --all [--image-source REF --image-checksum SUM]",
		"Deploy an image with the agent ramdisk over virtual media (available → active)",
		`Boot the node's ilo_deploy_iso with a parameters floppy, let the agent write the image
(checksum verified), configure boot from disk (boot mode, secure boot) and boot it.
--image-source and --image-checksum are stored in instance_info; without them the
node's current instance_info is used.`,
		app.ScriptDeploy,
		func(ctx context.Context, a *app.App, node string) error {
			oo := o
			oo.Capabilities = map[string]string{}
			if bootMode != "" {
				oo.Capabilities["boot_mode"] = bootMode
			}
			if secureBoot {
				oo.Capabilities["secure_boot"] = "true"
			}
			_, err := a.PrepareDeploy(ctx, node, oo)
			return err
		}, nil,
		func(cmd *cobra.Command) {
			fl := cmd.Flags()
			fl.StringVar(&o.ImageSource, "image-source", "", "image: a path, http(s) URL, swift:container/object or glance://UUID")
			fl.StringVar(&o.ImageChecksum, "image-checksum", "", "image checksum: md5 hex, or sha256:HEX / sha512:HEX")
			fl.StringVar(&o.ImageDiskFormat, "image-disk-format", "", "raw (default) or qcow2")
			fl.StringVar(&bootMode, "boot-mode", "", "instance boot mode: bios or uefi (default: node capability, else current)")
			fl.BoolVar(&secureBoot, "secure-boot", false, "enable UEFI secure boot for the instance")
		})
}

func newUndeployCmd(g *globals) *cobra.Command {
	return verb(g, "undeploy NODE... | --all", "Tear an instance down, then clean the node (active → available)",
		`Power off, secure boot off, remove published media, clear instance_info, then run
automated cleaning (clean.lua).`,
		app.ScriptTeardown, nil, nil, nil)
}

func newCleanCmd(g *globals) *cobra.Command {
	var stepsJSON string
	var steps []app.CleanStep
	return verb(g, `clean NODE... | --all --steps '[{"interface": "deploy", "step": "erase_devices"}]'`,
		"Manual cleaning: run the given clean steps (manageable → manageable)",
		`Run exactly the given steps, in order: iLO steps (reset_ilo_credential,
reset_secure_boot_keys_to_default, reset_bios_to_default, reset_ilo,
clear_secure_boot_keys; interface management), agent steps (erase_devices,
erase_devices_metadata; interface deploy) and site steps. A step the iLO does not
support is skipped with a warning; any other failure ends in clean failed.`,
		app.ScriptClean,
		func(ctx context.Context, a *app.App, node string) error {
			if steps == nil {
				var err error
				if steps, err = app.ParseCleanSteps(stepsJSON); err != nil {
					return err
				}
			}
			_, err := a.PrepareClean(ctx, node, steps)
			return err
		},
		func() map[string]string { return map[string]string{"mode": "manual"} },
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&stepsJSON, "steps", "", `clean steps as JSON: [{"interface": "deploy", "step": "erase_devices", "args": {}}]`)
			_ = cmd.MarkFlagRequired("steps")
			_ = cmd.RegisterFlagCompletionFunc("steps", completeCleanSteps(g))
		})
}

func newBootISOCmd(g *globals) *cobra.Command {
	var iso string
	return verb(g, "boot-iso NODE... | --all --iso REF", "Boot nodes from an ISO over virtual media (manageable or maintenance)",
		`Attach the ISO (a path, http(s) URL, swift: or glance:// reference) as virtual CD,
set a one-time CD boot and reboot. The provision state does not change.`,
		app.ScriptBootISO,
		func(context.Context, *app.App, string) error {
			if iso == "" {
				return usage("--iso is required: the ISO to boot")
			}
			return nil
		},
		func() map[string]string { return map[string]string{"iso": iso} },
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&iso, "iso", "", "ISO to boot: a path, http(s) URL, swift:container/object or glance://UUID")
			_ = cmd.MarkFlagRequired("iso")
		})
}

// verbCommands are the playbook verbs.
func verbCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newInspectCmd(g), newDeployCmd(g), newUndeployCmd(g), newCleanCmd(g), newBootISOCmd(g)}
}

// recoverNodes recovers each node an interrupted run left uncleaned, as its
// own recorded run, before anything else acts on it.
func recoverNodes(ctx context.Context, g *globals, a *app.App, nodes []string) error {
	for _, n := range nodes {
		if res, err := a.RecoverIfNeeded(ctx, n); err != nil {
			return err
		} else if res != nil {
			fmt.Fprintf(g.stderr, "lightsout: %s: recovered from an interrupted run (run %d)\n", n, res.RunID)
		}
	}
	return nil
}
