package main

import "github.com/spf13/cobra"

// extraCommands are the commands of the bindings (sim, image, ...). Each
// binding's command lives in its own file of this package.
func extraCommands(g *globals) []*cobra.Command {
	_ = g
	return []*cobra.Command{
		newImageCmd(),
		newWatchCmd(g),
		newServeCmd(g),
		newSimCmd(),
		newSwiftCmd(g),
		newSensorsCmd(g),
		newConsoleCmd(g),
		newCaptureCmd(g),
		newDBCmd(g),
		newAgentCmd(g),
	}
}
