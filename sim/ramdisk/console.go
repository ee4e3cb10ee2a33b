package ramdisk

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lightsout/lightsout/sim"
)

// consoleHandler copies the ramdisk's log records that name a server onto
// that server's serial console (what IPMI SOL shows), the way a real IPA
// ramdisk's log reaches the console; every record also goes on to next.
type consoleHandler struct {
	next   slog.Handler
	s      *sim.Sim
	server string
	attrs  []slog.Attr
}

func (h *consoleHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *consoleHandler) Handle(ctx context.Context, r slog.Record) error {
	server := h.server
	var b strings.Builder
	fmt.Fprintf(&b, "ironic-python-agent[%s]: %s", r.Level, r.Message)
	add := func(a slog.Attr) bool {
		if a.Key == "server" {
			server = a.Value.String()
			return true
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if server != "" && r.Level >= slog.LevelInfo {
		if srv, ok := h.s.ServerByName(server); ok {
			srv.ConsoleWrite([]byte(b.String() + "\r\n"))
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	for _, a := range as {
		if a.Key == "server" {
			c.server = a.Value.String()
		}
	}
	return &c
}

func (h *consoleHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
