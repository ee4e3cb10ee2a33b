package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// compactHandler is the log format for people at a terminal:
//
//	12:03:04 INFO  gen10-0    run 6    agent is up  agent_url=http://…
//
// time of day, level, node and run in aligned columns, the message, then
// the other attributes as key=value; with color, the level is coloured and
// the keys dimmed. Output goes through the same redaction as the machine
// formats.
type compactHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	color bool
	attrs []slog.Attr
	group string
}

// NewCompactHandler returns the compact, aligned log handler (color: ANSI
// colours, for terminals that support them and when NO_COLOR is unset).
func NewCompactHandler(w io.Writer, level slog.Leveler, color bool) slog.Handler {
	return &compactHandler{mu: &sync.Mutex{}, w: w, level: level, color: color}
}

func (h *compactHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *compactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), h.prefixed(as)...)
	return &c
}

func (h *compactHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

func (h *compactHandler) prefixed(as []slog.Attr) []slog.Attr {
	if h.group == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: h.group + "." + a.Key, Value: a.Value}
	}
	return out
}

var levelColors = map[slog.Level]string{slog.LevelDebug: "\033[90m", slog.LevelInfo: "\033[36m",
	slog.LevelWarn: "\033[33m", slog.LevelError: "\033[31m"}

func (h *compactHandler) Handle(_ context.Context, r slog.Record) error {
	all := append([]slog.Attr{}, h.attrs...)
	var rec []slog.Attr
	r.Attrs(func(a slog.Attr) bool { rec = append(rec, a); return true })
	all = append(all, h.prefixed(rec)...)
	var node, run string
	var rest []slog.Attr
	for _, a := range all {
		switch a.Key {
		case "node":
			node = a.Value.String()
		case "run":
			run = "run " + a.Value.String()
		default:
			rest = append(rest, a)
		}
	}
	var b strings.Builder
	if !r.Time.IsZero() {
		b.WriteString(r.Time.Local().Format("15:04:05") + " ")
	}
	lvl := fmt.Sprintf("%-5s", r.Level.String())
	if h.color {
		lvl = levelColors[r.Level] + lvl + "\033[0m"
	}
	b.WriteString(lvl + " ")
	if node != "" || run != "" {
		fmt.Fprintf(&b, "%-10s %-7s ", node, run)
	}
	b.WriteString(r.Message)
	if len(rest) > 0 {
		b.WriteString(" ")
	}
	for _, a := range rest {
		b.WriteString(" ")
		appendAttr(&b, "", a, h.color)
	}
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func appendAttr(b *strings.Builder, prefix string, a slog.Attr, color bool) {
	v := a.Value.Resolve()
	key := prefix + a.Key
	if v.Kind() == slog.KindGroup {
		for i, g := range v.Group() {
			if i > 0 {
				b.WriteString(" ")
			}
			appendAttr(b, key+".", g, color)
		}
		return
	}
	s := v.String()
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		s = fmt.Sprintf("%q", s)
	}
	if color {
		fmt.Fprintf(b, "\033[2m%s=\033[0m%s", key, s)
		return
	}
	fmt.Fprintf(b, "%s=%s", key, s)
}
