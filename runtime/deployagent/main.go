package deployagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// MainOptions configures Main (the `lightsout agent` command and the
// ramdisk's init).
type MainOptions struct {
	// Root is where /proc, /sys and /dev are read ("" is "/").
	Root string
	// Network configures the NICs (DHCP or ip=) before starting; off when
	// the network is already up (running the agent on a booted system).
	Network bool
	// FloppyWait bounds the wait for the virtual floppy (default 30 s).
	FloppyWait time.Duration
	// Console receives the LIGHTSOUT-AGENT-* lines and the log.
	Console io.Writer
	// ListenAddr overrides ":<ipa-listen-port>".
	ListenAddr string
}

// Main reads the parameters, configures the network and runs the agent
// until ctx ends. A fatal error is printed as a LIGHTSOUT-AGENT-FATAL
// line and returned.
func Main(ctx context.Context, o MainOptions) (err error) {
	if o.FloppyWait <= 0 {
		o.FloppyWait = 30 * time.Second
	}
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(o.Console, &slog.HandlerOptions{Level: level}))
	fatal := func(e error) error {
		fmt.Fprintf(o.Console, "%s %v\n", ConsoleFatal, e)
		return e
	}
	fmt.Fprintf(o.Console, "%s uptime=%s\n", ConsoleStart, Uptime(o.Root))
	p, floppy, err := LoadParams(ctx, o.Root, o.FloppyWait)
	if err != nil {
		return fatal(err)
	}
	if p.Debug {
		level.Set(slog.LevelDebug)
	}
	log.Info("parameters read", "floppy", floppy, "keys", FormatParamsForLog(p.Raw))
	if o.Network {
		if err := ConfigureNetwork(ctx, p, NetworkOptions{Logger: log}); err != nil {
			return fatal(err)
		}
	}
	a, err := New(Config{Params: p, Root: o.Root, ListenAddr: o.ListenAddr, Console: o.Console, Logger: log, StartLinePrinted: true})
	if err != nil {
		return fatal(err)
	}
	if err := a.Run(ctx); err != nil {
		return fatal(err)
	}
	return nil
}
