package ramdisk

import (
	"context"
	"errors"
	"log/slog"

	"github.com/lightsout/lightsout/sim"
)

// Hook returns the sim.BootHook that runs this ramdisk on every simulated
// boot. Use it as sim.Options.BootHook, then call UseSim with the started
// simulator so standby.power_off can power servers off:
//
//	rd := ramdisk.New(ramdisk.Options{})
//	s, err := sim.New(sim.Options{Nodes: ..., BootHook: rd.Hook()})
//	rd.UseSim(s)
func (r *Ramdisk) Hook() sim.BootHook {
	return func(ctx context.Context, ev sim.BootEvent) {
		if err := r.Boot(ctx, BootEvent(ev)); err != nil && !errors.Is(err, ErrNotRamdisk) && ctx.Err() == nil {
			r.log.Error("ramdisk boot failed", "server", ev.Server, "err", err)
		}
	}
}

// UseSim makes standby.power_off power servers off through s, and the
// ramdisk's log of each server show on that server's serial console (SOL).
// Call it before the first boot.
func (r *Ramdisk) UseSim(s *sim.Sim) {
	r.SetPowerOff(func(_ context.Context, server string) error { return s.PowerOff(server) })
	r.mu.Lock()
	r.console = func(server, line string) {
		if srv, ok := s.ServerByName(server); ok {
			srv.ConsoleWrite([]byte(line + "\r\n"))
		}
	}
	r.mu.Unlock()
	r.log = slog.New(&consoleHandler{next: r.log.Handler(), s: s})
}
