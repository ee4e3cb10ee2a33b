package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

// newAgentCmd is `lightsout agent`: the deploy agent of lightsout's
// ramdisk (runtime/deployagent). In the ramdisk the binary is /init and
// runs the agent as PID 1 whatever its arguments (see main); this command
// runs it on an already booted system, e.g. for tests.
func newAgentCmd(g *globals) *cobra.Command {
	var (
		root       string
		network    bool
		listen     string
		floppyWait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the deploy agent (the ironic-python-agent replacement of lightsout's ramdisk)",
		Long: `Run the deploy agent: read the parameters (kernel command line, virtual floppy
labelled ir-vfd-dev with parameters.txt), optionally configure the network (DHCP on
every NIC with link, or ip=), look the node up at ipa-api-url, heartbeat with the
agent token and serve the agent API on ipa-listen-port (9999), as ironic-python-agent
does. Progress lines (LIGHTSOUT-AGENT-*) go to standard output.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return deployagent.Main(cmd.Context(), deployagent.MainOptions{
				Root: root, Network: network, ListenAddr: listen, FloppyWait: floppyWait, Console: g.stdout,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "root of the /proc, /sys and /dev trees to read")
	f.BoolVar(&network, "network", false, "configure the network first (DHCP on every NIC with link, or the ip= parameter)")
	f.StringVar(&listen, "listen", "", "agent API address (default :<ipa-listen-port>, port 9999)")
	f.DurationVar(&floppyWait, "floppy-wait", 30*time.Second, "how long to wait for the virtual floppy to appear")
	return cmd
}
