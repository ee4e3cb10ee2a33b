package swift

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

func luaRun(t *testing.T, cfg moduletest.MapConfig) (*moduletest.Run, *lua.LState) {
	t.Helper()
	run := moduletest.NewRun(context.Background(), &moduletest.Node{ID: "node-1"})
	run.Cfg = cfg
	root := filepath.Dir(t.TempDir()) // every t.TempDir() of t: as [lightsout] script_paths
	run.Allow(filepath.Join(root, "work"), root)
	L := moduletest.Open(run, NewModule())
	t.Cleanup(L.Close)
	return run, L
}

func TestLuaNotConfigured(t *testing.T) {
	_, L := luaRun(t, moduletest.MapConfig{})
	err := L.DoString(`
		local swift = require("swift")
		local ok, e = pcall(swift.temp_url, "x")
		assert(not ok and e.code == "invalid_argument", tostring(e))
		assert(e.message:find("[swift] auth_url", 1, true), e.message)
	`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestLuaGlance(t *testing.T) {
	run, L := luaRun(t, moduletest.MapConfig{"glance.swift_endpoint_url": "http://127.0.0.1:8080",
		"glance.swift_account": "AUTH_g", "glance.swift_temp_url_key": "gk-secret"})
	err := L.DoString(`
		local swift = require("swift")
		u = swift.glance_temp_url("1be26c0b-03f2-4d2e-ae87-c02d7f33c123")
		local ok, e = pcall(swift.glance_temp_url, "nope")
		assert(not ok and e.code == "invalid_argument")
	`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lua.LVAsString(L.GetGlobal("u")), "http://127.0.0.1:8080/v1/AUTH_g/glance/1be26c0b-03f2-4d2e-ae87-c02d7f33c123?temp_url_sig=") {
		t.Fatal(L.GetGlobal("u"))
	}
	if run.Redact("gk-secret") != "******" {
		t.Fatal("glance key not a secret")
	}
}

func TestLuaRealSwift(t *testing.T) {
	a := needSwift(t)
	ctx := context.Background()
	c := testClient(t, nil)
	if err := c.SetTempURLKey(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	run, L := luaRun(t, moduletest.MapConfig{"swift.auth_url": a.AuthURL, "swift.auth_version": "1",
		"swift.username": a.User, "swift.password": a.Key, "ilo.swift_ilo_container": "lua_c"})
	f := filepath.Join(t.TempDir(), "boot.iso")
	os.WriteFile(f, []byte("iso bytes"), 0o644)
	L.SetGlobal("f", lua.LString(f))
	if err := L.DoString(`
		local swift = require("swift")
		local r = swift.upload(f, {expires=600})
		assert(r.container == "lua_c" and r.object == "boot.iso" and r.bytes == 9, r.container)
		assert(swift.stat("boot.iso") == 9)
		url = swift.temp_url("boot.iso", {expires=60, filename="b.iso"})
		purl = swift.publish(f, {name="image-node-1", digest="sha512"})
		swift.delete("boot.iso")
		swift.delete("boot.iso")
		local ok, e = pcall(swift.stat, "boot.iso")
		assert(not ok and e.code == "not_found", tostring(e))
	`); err != nil {
		t.Fatal(err)
	}
	u := lua.LVAsString(L.GetGlobal("url"))
	if !strings.Contains(u, "/lua_c/boot.iso?temp_url_sig=") || !strings.Contains(u, "&filename=b.iso") {
		t.Fatalf("url %s", u)
	}
	pu := lua.LVAsString(L.GetGlobal("purl"))
	if code, body := fetch(t, "GET", pu, nil); code != 200 || string(body) != "iso bytes" || !strings.Contains(pu, "temp_url_sig=sha512:") {
		t.Fatalf("publish url %s: %d %q", pu, code, body)
	}
	// boot.iso was deleted by the script: its artifact is marked deleted
	arts, _ := run.Artifacts("node-1")
	if len(arts) != 1 || arts[0].Location != "swift:lua_c/image-node-1" {
		t.Fatalf("artifacts %+v", arts)
	}
	want := "swift.upload,swift.stat,swift.temp_url,swift.publish,swift.delete,swift.delete,swift.stat"
	if got := strings.Join(run.Calls(), ","); got != want {
		t.Fatalf("calls %s", got)
	}
	// secrets: neither the password nor the temp URL key reach events
	b, _ := json.Marshal(run.Events)
	for _, s := range []string{testKey, a.Key} {
		if strings.Contains(string(b), s) {
			t.Fatalf("secret %q in events", s)
		}
	}
	if run.Redact("k="+testKey) != "k=******" {
		t.Fatal("temp URL key not registered with AddSecret")
	}
	last := run.Events[len(run.Events)-1]
	if last.Data["outcome"] != module.CodeNotFound {
		t.Fatalf("last event %+v", last)
	}
	c.DeleteObject(ctx, "lua_c", "image-node-1")
}
