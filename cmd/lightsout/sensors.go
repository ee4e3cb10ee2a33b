package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/app"
)

// newSensorsCmd builds `lightsout sensors NODE [--json]`: the node's IPMI
// sensors (SDR walk) with their readings, from its ipmi_* driver_info (or
// its iLO account).
func newSensorsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sensors NODE",
		Short: "Read the node's hardware sensors over IPMI (temperatures, fans, power)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			if err := app.CheckDurationFlag("timeout", timeout, time.Second, time.Hour, "omit it for 60 s"); err != nil {
				return err
			}
			c, name, err := nodeIPMIClient(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ss, err := c.Sensors(ctx)
			if err != nil {
				return fmt.Errorf("node %s: %w", name, err)
			}
			if asJSON {
				if ss == nil {
					ss = []ipmi.Sensor{}
				}
				return printJSON(g.stdout, map[string]any{"node": name, "sensors": ss})
			}
			t := newTable(g.stdout, "SENSOR", "TYPE", "READING", "UNIT", "STATUS")
			for _, s := range ss {
				reading := "na"
				if s.Available {
					reading = strconv.FormatFloat(s.Reading, 'f', -1, 64)
				}
				t.row(s.Name, s.Type, reading, s.Unit, s.Status)
			}
			return t.flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}
