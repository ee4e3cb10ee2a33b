package app

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/secrets"
)

// TestLogFormats: the compact format's layout (time, level, node, run,
// message, then key=value), colours only in compact-color, and a secret
// masked in every format.
func TestLogFormats(t *testing.T) {
	const secret = "Hunter2-Secret-93"
	tests := []struct {
		format string
		want   *regexp.Regexp
	}{
		{"compact", regexp.MustCompile(`^\d\d:\d\d:\d\d INFO  gen10-0    run 6   agent is up  agent_url=http://10\.0\.0\.9:9999 token=\*\*\*\*\*\*\n$`)},
		{"compact-color", regexp.MustCompile(`^\d\d:\d\d:\d\d \x1b\[36mINFO \x1b\[0m gen10-0    run 6   agent is up  \x1b\[2magent_url=\x1b\[0mhttp://10\.0\.0\.9:9999 \x1b\[2mtoken=\x1b\[0m\*\*\*\*\*\*\n$`)},
		{"text", regexp.MustCompile(`^time=\S+ level=INFO msg="agent is up" run=6 node=gen10-0 agent_url=http://10\.0\.0\.9:9999 token=\*\*\*\*\*\*\n$`)},
		{"json", regexp.MustCompile(`^\{"time":"[^"]+","level":"INFO","msg":"agent is up","run":6,"node":"gen10-0","agent_url":"http://10\.0\.0\.9:9999","token":"\*\*\*\*\*\*"\}\n$`)},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			red := secrets.NewRedactor()
			red.Add(secret)
			var b bytes.Buffer
			log, err := NewLogger(&b, "info", tt.format, red)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("agent is up", "run", 6, "node", "gen10-0", "agent_url", "http://10.0.0.9:9999", "token", secret)
			log.Debug("not shown at info")
			if !tt.want.MatchString(b.String()) {
				t.Fatalf("got %q\nwant %s", b.String(), tt.want)
			}
			if strings.Contains(b.String(), secret) {
				t.Fatal("the secret was logged")
			}
		})
	}
	if _, err := NewLogger(&bytes.Buffer{}, "info", "fancy", secrets.NewRedactor()); err == nil || !strings.Contains(err.Error(), "use text, json or compact") {
		t.Fatalf("unknown format: %v", err)
	}
	// groups and pre-set attributes keep their keys
	var b bytes.Buffer
	log := slog.New(NewCompactHandler(&b, slog.LevelInfo, false)).With("node", "n1").WithGroup("req")
	log.Warn("slow", "ms", 900)
	if !regexp.MustCompile(`WARN  n1\s+slow  req\.ms=900\n$`).MatchString(b.String()) {
		t.Fatalf("got %q", b.String())
	}
}
