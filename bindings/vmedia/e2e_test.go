package vmedia_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/bindings/vmedia"
	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// TestEndToEnd runs real scripts in the real runtime (SQLite store): one
// publishes an ISO and a floppy (both recorded as artifacts of the run),
// the next cleans them up.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{7}, 32))
	st, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"), c)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "lightsout.conf")
	data := t.TempDir() // where the operator keeps images: [lightsout] script_paths
	os.WriteFile(conf, []byte("[lightsout]\nstate_dir = "+dir+"\nscript_paths = "+data+"\n"), 0o644)
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	vm := vmedia.NewModule()
	defer vm.Close()
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, Modules: []module.Module{vm, image.NewModule()}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { eng.Close(); st.Close() }()
	n := &store.Node{UUID: "11111111-2222-3333-4444-555555555555", Name: "n1", Driver: "agent_ilo", ProvisionState: "manageable"}
	if err := st.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(data, "deploy.iso")
	os.WriteFile(iso, []byte("iso payload"), 0o644)
	script := func(src string) string {
		p := filepath.Join(t.TempDir(), "s.lua")
		os.WriteFile(p, []byte(src), 0o644)
		return p
	}
	runOn := func(node, src string) runtime.Result {
		res, err := eng.Run(ctx, runtime.RunRequest{Script: script(src), Node: node, Timeout: 30 * time.Second,
			Params: map[string]string{"iso": iso, "floppy": "params.img"}}) // in the run's work directory
		if err != nil {
			t.Fatal(err)
		}
		if !res.Succeeded() {
			t.Fatalf("run %s: %s", res.Status, res.Error)
		}
		return res
	}
	run := func(src string) runtime.Result { return runOn("n1", src) }
	res := run(`
		local vmedia, image = require("vmedia"), require("image")
		image.floppy(params.floppy, { ["ipa-api-url"] = "http://127.0.0.1:6385" })
		vmedia.publish(params.iso, { name = "boot-n1.iso" })
		vmedia.publish(params.floppy, { name = "image-n1", kind = "floppy" })
	`)
	arts, err := st.RunArtifacts(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range arts {
		got[a.Kind] = a.Location
	}
	if len(arts) != 2 || got["iso"] != "web:boot-n1.iso" || got["floppy"] != "web:image-n1" {
		t.Fatalf("artifacts %+v", arts)
	}
	for _, name := range []string{"boot-n1.iso", "image-n1"} {
		if _, err := os.Stat(filepath.Join(dir, "published", name)); err != nil {
			t.Fatalf("published file: %v", err)
		}
	}
	u, _ := vm.WebStore().SignURL("boot-n1.iso", time.Now().Add(time.Minute))
	if r, err := http.Get(u); err != nil || r.StatusCode != 200 {
		t.Fatalf("GET %v %v", r, err)
	}

	// A run on another node can neither delete n1's media nor replace them.
	n2 := &store.Node{UUID: "66666666-7777-4888-9999-aaaaaaaaaaaa", Name: "n2", Driver: "agent_ilo", ProvisionState: "manageable"}
	if err := st.CreateNode(ctx, n2); err != nil {
		t.Fatal(err)
	}
	runOn("n2", `
		local vmedia = require("vmedia")
		for _, f in ipairs({ function() vmedia.cleanup("n1") end, function() vmedia.cleanup("`+n.UUID+`") end,
			function() vmedia.cleanup({ uuid = "`+n.UUID+`" }) end,
			function() vmedia.publish(params.iso, { name = "boot-`+n.UUID+`.iso" }) end }) do
			local ok, err = pcall(f)
			assert(not ok and err.code == "forbidden", tostring(err))
		end
		assert(#vmedia.cleanup().deleted == 0) -- its own: nothing
	`)
	if left, _ := st.Artifacts(ctx, n.UUID, false); len(left) != 2 {
		t.Fatalf("n1's artifacts after n2's run: %+v", left)
	}
	if r, err := http.Get(u); err != nil || r.StatusCode != 200 {
		t.Fatalf("n1's ISO after n2's run: %v %v", r, err)
	}

	run(`local r = require("vmedia").cleanup(); assert(#r.deleted == 2, #r.deleted)`)
	left, _ := st.Artifacts(ctx, n.UUID, false)
	if len(left) != 0 {
		t.Fatalf("artifacts left %+v", left)
	}
	if r, err := http.Get(u); err != nil || r.StatusCode != 404 {
		t.Fatalf("after cleanup: %v %v", r, err)
	}
}
