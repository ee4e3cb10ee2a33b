package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
)

func newScriptsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "scripts", Short: "List, show and export the Lua scripts in effect"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List every script in effect and where it comes from",
		Args:  cobra.NoArgs,
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			scripts, err := a.Engine.Scripts().List()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, scripts)
			}
			t := newTable(g.stdout, "NAME", "KIND", "ORIGIN", "PATH")
			for _, s := range scripts {
				origin := s.Origin
				if s.Overrides {
					origin = "site (overrides bundled)"
				}
				t.row(s.Name, s.Kind, origin, s.Path)
			}
			return t.flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print the source of the script in effect",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			s, err := a.Engine.Scripts().Find(args[0])
			if err != nil {
				return usage("%v", err)
			}
			fmt.Fprintf(g.stderr, "-- %s (%s: %s)\n", s.Name, s.Origin, s.Path)
			_, err = g.stdout.Write(s.Source)
			return err
		}),
	}
	export := &cobra.Command{
		Use:   "export DIR",
		Short: "Copy the bundled scripts, libraries and LuaLS types into DIR for editing",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			files, err := a.Engine.Scripts().Export(args[0])
			for _, f := range files {
				fmt.Fprintln(g.stdout, f)
			}
			if err == nil {
				fmt.Fprintf(g.stderr, "exported %d files; use them with --scripts %s or [lightsout] scripts_path\n", len(files), args[0])
			}
			return err
		}),
	}
	cmd.AddCommand(list, show, export)
	return cmd
}
