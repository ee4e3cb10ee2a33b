package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

func TestCleanStepsKnownAndRefused(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "site_steps.lua"), []byte(`return {
  { step = "license", priority = 0, fn = function(ctx, args) end },
  { step = "wipe_raid", interface = "raid", priority = 0, fn = function(ctx, args) end },
}`), 0o644)
	os.WriteFile(filepath.Join(site, "clean.lua"), []byte(`local clean = require("bundled.clean")
clean.steps.register({ step = "site_audit", priority = 5, fn = function(ctx) end })
if ... == nil then clean.run() end
return clean
`), 0o644)
	t.Setenv("LIGHTSOUT_CONFIG", "")
	a, err := app.Open(context.Background(), app.Options{StateDir: dir, ConfigPath: writeConf(t, dir), ScriptDirs: []string{site},
		Stdout: os.Stdout, Stderr: os.Stderr, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	known, err := a.Engine.CleanSteps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"management.reset_ilo", "management.reset_bios_to_default", "deploy.erase_devices",
		"deploy.erase_devices_metadata", "management.license", "raid.wipe_raid", "management.site_audit"} {
		if !slices.Contains(known, want) {
			t.Errorf("known steps %v lack %s", known, want)
		}
	}
	runs, _ := a.Store.ListRuns(ctx, store.RunFilter{})
	if len(runs) != 0 {
		t.Errorf("listing the steps recorded runs: %v", runs)
	}

	if err := a.Store.CreateNode(ctx, &store.Node{Name: "n1", Driver: "ilo"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		steps []app.CleanStep
		want  string // "" = known
	}{
		{[]app.CleanStep{{Interface: "deploy", Step: "erase_devices"}, {Interface: "management", Step: "license"}}, ""},
		{[]app.CleanStep{{Interface: "deploy", Step: "erase_everything"}}, "clean step #1 deploy.erase_everything is not known; known steps: "},
		{[]app.CleanStep{{Interface: "management", Step: "reset_ilo"}, {Interface: "bios", Step: "reset_ilo"}}, "clean step #2 bios.reset_ilo"},
	}
	for _, tt := range tests {
		err := a.CheckCleanSteps(ctx, tt.steps)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckCleanSteps(%v) = %v", tt.steps, err)
			}
			continue
		}
		var ve *app.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "management.reset_ilo") {
			t.Errorf("CheckCleanSteps(%v) = %v, want a ValidationError with %q and the known steps", tt.steps, err, tt.want)
		}
		// PrepareClean refuses before touching the node.
		if _, err := a.PrepareClean(ctx, "n1", tt.steps); !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PrepareClean = %v", err)
		}
		n, _ := a.Store.GetNode(ctx, "n1")
		if _, set := n.DriverInternalInfo["manual_clean_steps"]; set {
			t.Error("PrepareClean recorded unknown steps")
		}
	}
}
