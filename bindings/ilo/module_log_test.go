package ilo

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim/simtest"
)

// sessionToken matches a simulated iLO's X-Auth-Token (16 random bytes in
// hex); session URIs hold the user name and a 16-digit counter instead.
var sessionToken = regexp.MustCompile(`[0-9a-f]{32}`)

// TestSessionEventsFollowTheModuleLogger runs a Redfish call on a
// simulated Gen10 and closes the module (the App's shutdown): the
// shared session's login is an event of the run, its logout at shutdown
// goes to the module's Logger at debug level only (never slog.Default),
// and neither carries the token or the password.
func TestSessionEventsFollowTheModuleLogger(t *testing.T) {
	const pw = "log-test-Secret-9"
	tests := []struct {
		name       string
		level      slog.Level
		noLogger   bool
		wantLogout bool
	}{
		{name: "debug shows the shutdown logout", level: slog.LevelDebug, wantLogout: true},
		{name: "info hides it", level: slog.LevelInfo},
		{name: "warn hides it", level: slog.LevelWarn},
		{name: "no logger discards it", level: slog.LevelDebug, noLogger: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := simtest.ILO(t, 10, simtest.WithPassword(pw))
			var out testenv.SyncBuffer
			m := NewModule()
			if !tc.noLogger {
				m.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level}))
			}
			// What reaches slog.Default meanwhile (it must be nothing of ours).
			var dflt testenv.SyncBuffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&dflt, &slog.HandlerOptions{Level: slog.LevelDebug})))
			defer slog.SetDefault(prev)

			run, err := runLua(t, m, newNode(simtest.DriverInfo(s, 0)), `
local bmc = require("ilo").connect()
assert(bmc:get_host_power_status())`)
			if err != nil {
				t.Fatal(err)
			}
			if n := countEvents(run, "ilo.session_login"); n != 1 {
				t.Fatalf("%d ilo.session_login events in the run record, want 1", n)
			}
			if err := m.Close(); err != nil || srv.Sessions() != 0 {
				t.Fatalf("module Close: %v, %d sessions left", err, srv.Sessions())
			}

			log := out.String()
			gotLogout := strings.Contains(log, "iLO Redfish session logout") && strings.Contains(log, "reason=shutdown") &&
				strings.Contains(log, "level=DEBUG")
			if gotLogout != tc.wantLogout {
				t.Fatalf("shutdown logout logged = %v, want %v; log:\n%s", gotLogout, tc.wantLogout, log)
			}
			if !tc.wantLogout && log != "" {
				t.Fatalf("log at %v has lines:\n%s", tc.level, log)
			}
			if d := dflt.String(); d != "" {
				t.Fatalf("slog.Default received:\n%s", d)
			}
			events, _ := json.Marshal(run.Events)
			for what, text := range map[string]string{"log": log, "run events": string(events)} {
				if strings.Contains(text, pw) {
					t.Fatalf("password in the %s: %s", what, text)
				}
				if tok := sessionToken.FindString(text); tok != "" {
					t.Fatalf("session token %s in the %s: %s", tok, what, text)
				}
				if strings.Contains(strings.ToLower(text), "x-auth-token") {
					t.Fatalf("X-Auth-Token in the %s: %s", what, text)
				}
			}
		})
	}
}
