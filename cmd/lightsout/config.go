package main

import (
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show the effective configuration"}
	var asJSON, all bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print every effective option (secrets masked) and where it came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(g.configPath)
			if err != nil {
				return &configErr{err}
			}
			if g.stateDir != "" {
				cfg.Set("lightsout", "state_dir", g.stateDir)
			}
			for _, w := range cfg.Warnings {
				g.stderr.Write([]byte("warning: " + w + "\n"))
			}
			vals := cfg.Values()
			if !all {
				kept := vals[:0]
				for _, v := range vals {
					if v.Value != "" || v.Source != "default" {
						kept = append(kept, v)
					}
				}
				vals = kept
			}
			if asJSON {
				return printJSON(g.stdout, vals)
			}
			t := newTable(g.stdout, "SECTION", "OPTION", "VALUE", "SOURCE")
			for _, v := range vals {
				t.row(v.Section, v.Key, v.Value, v.Source)
			}
			return t.flush()
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show.Flags().BoolVar(&all, "all", false, "include unset options")
	cmd.AddCommand(show)
	return cmd
}

// configErr marks a bad configuration (exit code 2).
type configErr struct{ err error }

func (e *configErr) Error() string { return e.err.Error() }
func (e *configErr) Unwrap() error { return e.err }
