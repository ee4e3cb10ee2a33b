package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/app"
)

// nodeIPMIClient builds the IPMI client of a node from its driver_info
// (ipmi_* keys, else its iLO account) and [ipmi] retry_timeout.
func nodeIPMIClient(ctx context.Context, a *app.App, ref string) (*ipmi.Client, string, error) {
	n, err := a.Store.GetNode(ctx, ref)
	if err != nil {
		return nil, "", err
	}
	info := n.DriverInfo
	if _, set := info["ipmi_retry_timeout"]; !set {
		if v, ok := a.Config.Get("ipmi", ipmi.ConfigRetryTimeout); ok && strings.TrimSpace(v) != "" {
			info["ipmi_retry_timeout"] = strings.TrimSpace(v)
		}
	}
	o, err := ipmi.ParseDriverInfo(info)
	if err != nil {
		return nil, "", &app.ValidationError{Err: fmt.Errorf("node %s: %w", n.Name, err)}
	}
	a.Redactor.Add(o.Password)
	c, err := ipmi.New(o)
	return c, n.Name, err
}

// newConsoleCmd builds `lightsout console NODE [--log FILE]`: the node's
// serial console over IPMI Serial-over-LAN; ~. at the start of a line leaves.
func newConsoleCmd(g *globals) *cobra.Command {
	var logFile string
	cmd := &cobra.Command{
		Use:   "console NODE",
		Short: "Attach the terminal to the node's serial console (IPMI SOL); ~. leaves",
		Args:  cobra.ExactArgs(1),
		RunE: g.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			c, name, err := nodeIPMIClient(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			out := g.stdout
			if logFile != "" {
				f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &app.ValidationError{Err: fmt.Errorf("--log: %w", err)}
				}
				defer f.Close()
				out = io.MultiWriter(out, f)
			}
			in := cmd.InOrStdin()
			if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				st, err := term.MakeRaw(int(f.Fd()))
				if err == nil {
					defer term.Restore(int(f.Fd()), st)
				}
			}
			fmt.Fprintf(g.stderr, "[console of %s: type %s at the start of a line to leave]\r\n", name, ipmi.EscapeSequence)
			err = c.Console(cmd.Context(), in, out)
			fmt.Fprintf(g.stderr, "\r\n[console of %s closed]\r\n", name)
			if err != nil {
				return fmt.Errorf("node %s: %w", name, err)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&logFile, "log", "", "also append the console output to FILE")
	return cmd
}
