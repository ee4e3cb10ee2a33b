package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime"
)

// TestPlaybookFailurePathAfterCaughtError: a phase before the start phase
// that catches an error with pcall (a validation reading the iLO, a site
// check) must not disarm the failure path of the phases after the start.
// gopher-lua closes the upvalues of outer frames when a pcall inside a
// step catches an error; playbook.run keeps its armed flag in a table so
// that it survives (with a plain local, "handle failure" never ran).
func TestPlaybookFailurePathAfterCaughtError(t *testing.T) {
	a := openApp(t)
	if _, err := a.CreateNode(context.Background(), nodeSpec("n1")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "pb.lua")
	os.WriteFile(script, []byte(`
local playbook = require("playbook")
local ctx = { node = node, bmc = nil }
local failed = false
playbook.run(ctx, {
  { "validate", function() local ok = pcall(error, { code = "x" }); assert(not ok) end },
  { "start", function() end },
  { "boom", function() error("boom") end },
}, { what = "test", start = "start", states = {}, on_fail = function() print("FAILURE-PATH-RAN") end })
`), 0o644)
	out := &strings.Builder{}
	res, err := a.Engine.Run(context.Background(), runtime.RunRequest{Script: script, Node: "n1", Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded() {
		t.Fatal("the playbook succeeded; its last phase raises")
	}
	if !strings.Contains(out.String(), "FAILURE-PATH-RAN") {
		t.Fatalf("the failure path did not run after a phase caught an error before the start phase:\n%s", out)
	}
}
