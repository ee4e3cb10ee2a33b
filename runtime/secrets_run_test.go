package runtime_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/lightsout/lightsout/runtime"
)

// TestRunRecordsHoldNoCopiedSecret: a script copying the node's password
// into a step name, an artifact kind and location, params and errors leaves
// only masked copies in the run record, its events, its artifacts and the
// step callback; a node key holding the password is refused.
func TestRunRecordsHoldNoCopiedSecret(t *testing.T) {
	const pw = "pw-Sentinel-42" // newEnv's ilo_password
	e := newEnv(t)
	var mu sync.Mutex
	var steps []string
	res := e.run(t, `
local pw = node.driver_info.ilo_password
run.step("step " .. pw, function() end)
run.artifact("kind" .. pw, "http://h/o?temp_url_sig=abcdef&x=" .. pw)
local ok, err = pcall(function() node:set_internal(pw, 1) end)
assert(not ok and tostring(err.message):find("holds a secret"), "key refused")
error("url http://u:other-pw-9@h/ and " .. pw)
`, func(r *runtime.RunRequest) {
		r.Params = map[string]string{"note": "copy " + pw, "plain": "p", "admin_password": "another-Secret-7"}
		r.OnStep = func(_ int64, _ string, step string) { mu.Lock(); steps = append(steps, step); mu.Unlock() }
	})
	if res.Succeeded() || res.Error == "" {
		t.Fatalf("run: %s %q", res.Status, res.Error)
	}
	ctx := context.Background()
	run, err := e.st.GetRun(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := e.st.Events(ctx, res.RunID)
	arts, _ := e.st.RunArtifacts(ctx, res.RunID)
	all, _ := json.Marshal([]any{run, evs, arts[0].Kind, steps, res})
	for _, s := range []string{pw, "other-pw-9", "another-Secret-7", "temp_url_sig=abcdef"} {
		if strings.Contains(string(all), s) {
			t.Errorf("run records hold %q: %s", s, all)
		}
	}
	if run.Params["note"] != "copy ******" || run.Params["plain"] != "p" || run.Params["admin_password"] != "******" {
		t.Errorf("params recorded as %v", run.Params)
	}
	if len(steps) != 1 || steps[0] != "step ******" || arts[0].Kind != "kind******" {
		t.Errorf("steps %v, artifact kind %q", steps, arts[0].Kind)
	}
	// The location itself is kept whole for cleanup (encrypted at rest).
	if arts[0].Location != "http://h/o?temp_url_sig=abcdef&x="+pw {
		t.Errorf("artifact location %q", arts[0].Location)
	}
	if !strings.Contains(res.Error, "http://u:******@h/") {
		t.Errorf("run error %q", res.Error)
	}
}
