package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime"
)

// A site deploy.lua can add steps before and after "validate" (and
// "start"): they are phases like the others, and a failure up to "start"
// leaves the node as it was (no failure path: no last_error, no power off).
func TestDeployStepsAroundValidate(t *testing.T) {
	tests := []struct {
		name, site string
		want       []string // lines printed
	}{
		{"before and after validate", `
			deploy.add_step_before("validate", "before validate", function(ctx) seen[#seen + 1] = "before validate" end)
			deploy.add_step("validate", "after validate", function(ctx)
				seen[#seen + 1] = "after validate " .. tostring(ctx.boot_mode)
				error({ code = "invalid_argument", message = "site says no" })
			end)
			deploy.add_step_before("prepare node", "after start", function() seen[#seen + 1] = "after start" end)`,
			[]string{
				"phases: before validate, validate, after validate, start, after start, prepare node",
				"seen: before validate, after validate uefi",
				"error: site says no", "state: available", "last_error: []",
			}},
		{"no such phase", `deploy.add_step("validat", "x", function() end)`,
			[]string{`error: deploy.add_step: no phase "validat" (phases: validate, start, prepare node`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := openApp(t)
			ctx := context.Background()
			spec := nodeSpec("n1")
			spec.DriverInfo["ilo_deploy_iso"] = "http://127.0.0.1:1/deploy.iso"
			spec.InstanceInfo = map[string]any{"image_source": "http://127.0.0.1:1/image.raw", "image_checksum": "sha256:" + strings.Repeat("0", 64),
				"capabilities": `{"boot_mode": "uefi"}`}
			if _, err := a.CreateNode(ctx, spec); err != nil {
				t.Fatal(err)
			}
			for _, ev := range []string{"manage", "done", "provide", "done"} { // enroll → verifying → manageable → cleaning → available
				if _, err := a.Store.Transition(ctx, "n1", ev); err != nil {
					t.Fatal(ev, err)
				}
			}
			script := filepath.Join(t.TempDir(), "site.lua")
			if err := os.WriteFile(script, []byte(`
				local deploy = require("bundled.deploy")
				seen = {}
				local ok, err = pcall(function()
					`+tt.site+`
					local names = {}
					for i = 1, 6 do names[#names + 1] = deploy.phases[i][1] end
					print("phases: " .. table.concat(names, ", "))
					deploy.run()
				end)
				assert(not ok, "the site step should fail")
				if #seen > 0 then print("seen: " .. table.concat(seen, ", ")) end
				print("error: " .. tostring(type(err) == "table" and err.message or err))
				if #seen > 0 then
					print("state: " .. node.provision_state)
					print("last_error: [" .. tostring(node.last_error or "") .. "]")
				end`), 0o644); err != nil {
				t.Fatal(err)
			}
			out := &strings.Builder{}
			res, err := a.Engine.Run(ctx, runtime.RunRequest{Script: script, Node: "n1", Stdout: out})
			if err != nil || !res.Succeeded() {
				t.Fatalf("%v %+v\n%s", err, res, out)
			}
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, "[n1] "+w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
