package runtime_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// TestOnEventAndOnStart checks the observer hooks: OnEvent sees every
// recorded event already redacted, OnStart gets the run id before the
// script runs and while the run is recorded as running.
func TestOnEventAndOnStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{7}, 32))
	st, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"), c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Load(writeFile(t, dir, "lightsout.conf", "[lightsout]\nstate_dir = "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	red := secrets.NewRedactor()
	red.Add("hook-Sentinel-99")
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, Redactor: red,
		OnEvent: func(kind, name string, data map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, kind+":"+name)
			if msg, _ := data["msg"].(string); msg != "" {
				seen = append(seen, "msg:"+msg)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	p := writeFile(t, t.TempDir(), "s.lua", `run.step("a", function() run.log("info", "pw hook-Sentinel-99") end)`)
	var started int64
	var statusAtStart string
	res, err := eng.Run(ctx, runtime.RunRequest{Script: p, Timeout: 10 * time.Second, OnStart: func(id int64) {
		started = id
		r, err := st.GetRun(ctx, id)
		if err == nil {
			statusAtStart = r.Status
		}
	}})
	if err != nil || !res.Succeeded() {
		t.Fatalf("run: %v %+v", err, res)
	}
	if started != res.RunID || statusAtStart != store.StatusRunning {
		t.Fatalf("OnStart got run %d (status %q), result run %d", started, statusAtStart, res.RunID)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{"state:started": false, "step_start:a": false, "step_end:a": false, "state:finished": false, "msg:pw ******": false}
	for _, s := range seen {
		if _, ok := want[s]; ok {
			want[s] = true
		}
		if bytes.Contains([]byte(s), []byte("hook-Sentinel-99")) {
			t.Fatalf("OnEvent saw a secret: %q", s)
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("OnEvent never saw %s (saw %v)", k, seen)
		}
	}
}
