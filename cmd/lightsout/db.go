package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

func newDBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Manage the lightsout database"}
	var from, to string
	var force, asJSON bool
	migrate := &cobra.Command{
		Use:   "migrate --from URL --to URL",
		Short: "Copy every table of one lightsout database into another, verified by row counts and checksums",
		Long: `Copy every row of every table (nodes, runs, events, artifacts, watch-folder jobs, …) from
--from into --to, in one transaction, then compare each table's row count and checksum on both
sides. URLs are sqlite:///path/to/lightsout.db or postgresql://user:password@host:5432/lightsout.
A destination holding rows is refused unless --force (its rows are then replaced).

Stop every lightsout process using --from first. Secrets stay encrypted as they are: every
process using --to needs the same state dir key (secret.key). Then set
[database] connection = <the --to URL>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sums, err := store.Migrate(cmd.Context(), from, to, force)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, sums)
			}
			t := newTable(g.stdout, "TABLE", "ROWS", "CHECKSUM")
			var rows int64
			for _, s := range sums {
				t.row(s.Table, s.Rows, s.Sum[:16])
				rows += s.Rows
			}
			if err := t.flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "copied %d rows in %d tables to %s: counts and checksums match\n",
				rows, len(sums), store.RedactConnection(to))
			return err
		},
	}
	f := migrate.Flags()
	f.StringVar(&from, "from", "", "source database URL (sqlite:///… or postgresql://…)")
	f.StringVar(&to, "to", "", "destination database URL (sqlite:///… or postgresql://…)")
	f.BoolVar(&force, "force", false, "replace the rows of a non-empty destination")
	f.BoolVar(&asJSON, "json", false, "print the per-table counts and checksums as JSON")
	_ = migrate.MarkFlagRequired("from")
	_ = migrate.MarkFlagRequired("to")
	cmd.AddCommand(migrate)
	return cmd
}

func runsPruneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Delete the events of runs older than [lightsout] run_retention (run_retention_failed for runs that did not succeed)",
		Args:  cobra.NoArgs,
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			r := a.Retention()
			if r.Succeeded <= 0 && r.Failed <= 0 {
				return &app.ConfigError{Err: fmt.Errorf("no retention: set [lightsout] run_retention (e.g. 30d) and optionally run_retention_failed")}
			}
			n, err := a.PruneEvents(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "deleted the events of %d runs (succeeded runs older than %v, others older than %v)\n", n, r.Succeeded, r.Failed)
			return err
		}),
	}
}
