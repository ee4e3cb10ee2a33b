package app

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// TestConsoleRing: the ring keeps the last max bytes and counts them all.
func TestConsoleRing(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
		total  int64
	}{
		{"fits", []string{"ab", "cd"}, "abcd", 4},
		{"exactly full", []string{"abc", "def"}, "abcdef", 6},
		{"overflows", []string{"abcd", "efgh"}, "cdefgh", 8},
		{"one big write", []string{"0123456789"}, "456789", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ring{max: 6}
			for _, w := range tt.writes {
				if n, err := r.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			got, total := r.snapshot()
			if string(got) != tt.want || total != tt.total {
				t.Errorf("ring %q total %d, want %q %d", got, total, tt.want, tt.total)
			}
		})
	}
}

// TestConsoleWatchWithoutConsole: other playbooks capture nothing; a node
// without IPMI access is a warning; a BMC that never answers is left at the
// run's end at once, recording nothing.
func TestConsoleWatchWithoutConsole(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	port := silent.LocalAddr().(*net.UDPAddr).Port
	tests := []struct {
		name, script string
		info         map[string]any
		watching     bool
		warn         string
	}{
		{"not a provisioning playbook", ScriptNodePower, map[string]any{"ipmi_address": "127.0.0.1"}, false, ""},
		{"no BMC address", ScriptDeploy, map[string]any{}, false, "no console capture: no IPMI access"},
		{"silent BMC", ScriptClean, map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": port,
			"ipmi_password": "Pw-Sekret-1", "ipmi_retry_timeout": 1}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			w := consoleWatch(cfg, secrets.NewRedactor(), slog.New(slog.NewTextHandler(&logs, nil)), 1024)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := w(ctx, 1, tt.script, &store.Node{Name: "n1", DriverInfo: tt.info})
			if (stop != nil) != tt.watching {
				t.Fatalf("watching %v, want %v (log %s)", stop != nil, tt.watching, logs.String())
			}
			if !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("log %q lacks %q", logs.String(), tt.warn)
			}
			if stop == nil {
				return
			}
			start := time.Now()
			if kind, _, data := stop(); kind != "" {
				t.Errorf("recorded %s %v from a silent BMC", kind, data)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("stopping took %s", d)
			}
			if strings.Contains(logs.String(), "Pw-Sekret-1") {
				t.Errorf("the password is in the log: %s", logs.String())
			}
		})
	}
}
