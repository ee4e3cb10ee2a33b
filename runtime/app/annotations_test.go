package app_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/stdlib"
)

// TestEveryLuaFunctionIsAnnotated fails when a function a script can call
// (a module function, a run.* function or a node method) has no LuaLS
// annotation in stdlib/types.
func TestEveryLuaFunctionIsAnnotated(t *testing.T) {
	a := openApp(t)
	var names []string
	for _, m := range a.Engine.ModuleNames() {
		names = append(names, `"`+m+`"`)
	}
	script := filepath.Join(t.TempDir(), "list.lua")
	os.WriteFile(script, []byte(`
		local function fns(prefix, sep, t)
			for k, v in pairs(t) do
				if type(v) == "function" then print(prefix .. sep .. k) end
			end
		end
		for _, name in ipairs({`+strings.Join(names, ",")+`}) do fns(name, ".", require(name)) end
		fns("run", ".", run)
		fns("Node", ":", getmetatable(node).__index)
	`), 0o644)
	if _, err := a.CreateNode(context.Background(), nodeSpec("n1")); err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	res, err := a.Engine.Run(context.Background(), runtime.RunRequest{Script: script, Node: "n1", Stdout: out})
	if err != nil || !res.Succeeded() {
		t.Fatalf("%v %+v", err, res)
	}
	var all strings.Builder
	entries, _ := stdlib.FS.ReadDir("types")
	for _, e := range entries {
		b, _ := stdlib.FS.ReadFile("types/" + e.Name())
		all.Write(b)
	}
	defs := all.String()
	var missing []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		fn := strings.TrimSpace(strings.TrimPrefix(line, "[n1] "))
		if fn == "" {
			continue
		}
		re := regexp.MustCompile(`(?m)^function\s+` + regexp.QuoteMeta(fn) + `\s*\(`)
		if !re.MatchString(defs) {
			missing = append(missing, fn)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("functions without a LuaLS annotation in stdlib/types: %s", strings.Join(missing, ", "))
	}
}
