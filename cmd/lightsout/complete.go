package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// Dynamic shell completion (cobra's __complete): node names, script names,
// clean step names and run ids come from the store and the scripts the
// configuration sees. A completion never fails loudly: on any error it
// offers nothing.

// completeFrom opens the app and returns fn's candidates.
func completeFrom(g *globals, cmd *cobra.Command, fn func(a *app.App) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	a, err := g.open(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	defer a.Close()
	out, err := fn(a)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// nodeNames lists the nodes' names not already in args.
func nodeNames(g *globals, cmd *cobra.Command, args []string) ([]string, cobra.ShellCompDirective) {
	return completeFrom(g, cmd, func(a *app.App) ([]string, error) {
		ns, err := a.Store.ListNodes(cmd.Context())
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, x := range args {
			seen[x] = true
		}
		var out []string
		for _, n := range ns {
			if !seen[n.Name] {
				out = append(out, n.Name+"\t"+n.ProvisionState)
			}
		}
		return out, nil
	})
}

// completeNodes completes node names.
func completeNodes(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nodeNames(g, cmd, args)
	}
}

// completeNodesThen completes node names, and after the first the values
// of the verb's trailing argument too.
func completeNodesThen(g *globals, values []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		out, dir := nodeNames(g, cmd, args)
		if len(args) > 0 || cmd.Flags().Changed("all") {
			out = append(append([]string{}, values...), out...)
		}
		return out, dir
	}
}

// completeRunIDs completes run ids, newest first, described by script,
// node and status.
func completeRunIDs(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeFrom(g, cmd, func(a *app.App) ([]string, error) {
			runs, err := a.Store.ListRuns(cmd.Context(), store.RunFilter{Limit: 50})
			if err != nil {
				return nil, err
			}
			out := make([]string, 0, len(runs))
			for i := len(runs) - 1; i >= 0; i-- {
				r := runs[i]
				out = append(out, fmt.Sprintf("%d\t%s %s %s", r.ID, r.Script, orDash(r.NodeName), r.Status))
			}
			return out, nil
		})
	}
}

// completeScripts completes playbook names.
func completeScripts(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return completeFrom(g, cmd, func(a *app.App) ([]string, error) {
			list, err := a.Engine.Scripts().List()
			if err != nil {
				return nil, err
			}
			var out []string
			for _, s := range list {
				if s.Kind == "playbook" {
					out = append(out, s.Name)
				}
			}
			return out, nil
		})
	}
}

// completeCleanSteps completes `clean --steps` with a one-step JSON list
// per known clean step (runtime.Engine.CleanSteps).
func completeCleanSteps(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return completeFrom(g, cmd, func(a *app.App) ([]string, error) {
			steps, err := a.Engine.CleanSteps(cmd.Context())
			if err != nil {
				return nil, err
			}
			out := make([]string, 0, len(steps))
			for _, s := range steps {
				iface, step, _ := strings.Cut(s, ".")
				b, _ := json.Marshal([]map[string]string{{"interface": iface, "step": step}})
				out = append(out, string(b))
			}
			return out, nil
		})
	}
}
