package app

import (
	"context"
	"log/slog"
	"testing"

	"github.com/lightsout/lightsout/bindings/ilo"
	"github.com/lightsout/lightsout/runtime/config"
)

// TestDefaultModulesLogThroughTheApp: the ilo module (its shared Redfish
// session logouts) logs through the App's logger, so --log-level,
// --log-format and redaction apply, never through slog.Default.
func TestDefaultModulesLogThroughTheApp(t *testing.T) {
	t.Setenv(config.EnvConfig, "")
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	a := &App{Config: cfg, Log: lg}
	defer a.Close()
	mods, err := a.defaultModules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range mods {
		if im, ok := m.(*ilo.Module); ok {
			found = true
			if im.Logger != lg {
				t.Fatalf("the ilo module logs through %p, want the App's logger %p", im.Logger, lg)
			}
		}
	}
	if !found {
		t.Fatal("no ilo module among the default modules")
	}
}
