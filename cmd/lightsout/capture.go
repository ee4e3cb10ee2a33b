package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/bindings/ilo/capture"
	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/redfish"
	"github.com/lightsout/lightsout/runtime/app"
)

func newCaptureCmd(g *globals) *cobra.Command {
	var o capture.Options
	cmd := &cobra.Command{
		Use:   "capture NODE DIR",
		Short: "Save a node's iLO Redfish tree (read-only GETs, secrets and serial numbers redacted) for replay with `sim --capture`",
		Args:  cobra.ExactArgs(2),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			n, err := a.Store.GetNode(cmd.Context(), args[0])
			if err != nil {
				return &app.ValidationError{Err: err}
			}
			opts, err := iloapi.ParseDriverInfo(n.DriverInfo)
			if err != nil {
				return &app.ValidationError{Err: fmt.Errorf("node %s driver_info: %w", n.Name, err)}
			}
			if pin, ok := n.DriverInternalInfo[ilo.InternalCertPin].(string); ok && opts.TOFU && opts.CertPin == "" {
				opts.CertPin = pin
			}
			t, err := iloapi.NewTransport(opts, nil)
			if err != nil {
				return &app.ValidationError{Err: err}
			}
			c := redfish.New(t)
			defer c.Close(cmd.Context())
			res, err := capture.Run(cmd.Context(), c, args[1], o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "captured %d resources of %s into %s (%d links not followed, %d failed)\n",
				res.Resources, n.Name, args[1], len(res.Skipped), len(res.Failed))
			for _, f := range res.Failed {
				fmt.Fprintln(cmd.ErrOrStderr(), "failed:", f)
			}
			return nil
		}),
	}
	cmd.Flags().IntVar(&o.MaxDepth, "max-depth", 10, "link hops from the service root")
	cmd.Flags().IntVar(&o.MaxResources, "max-resources", 3000, "resources fetched at most")
	cmd.Flags().DurationVar(&o.Interval, "interval", 50*time.Millisecond, "pause between two requests")
	return cmd
}
