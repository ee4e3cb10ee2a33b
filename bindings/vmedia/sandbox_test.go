package vmedia

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
)

const otherID = "2c37d1a0-5b1e-4f7e-9d2c-0e1f2a3b4c5d"

// sandboxEnv is a state dir with the protected files, an operator data
// dir (script_paths), an outside dir with symlinks leading to it, and the
// runs of two nodes sharing one vmedia module (one web store).
type sandboxEnv struct {
	state, data, outside, conf string
	mod                        *Module
	cfg                        moduletest.MapConfig
}

func newSandboxEnv(t *testing.T) *sandboxEnv {
	t.Helper()
	e := &sandboxEnv{state: t.TempDir(), data: t.TempDir(), outside: t.TempDir()}
	e.conf = filepath.Join(e.state, "lightsout.conf")
	for _, f := range []string{filepath.Join(e.state, "secret.key"), filepath.Join(e.state, "lightsout.db"), filepath.Join(e.state, "lightsout.db-wal"),
		e.conf, filepath.Join(e.data, "fw.bin"), filepath.Join(e.data, "existing.img"), filepath.Join(e.outside, "passwd")} {
		if err := os.WriteFile(f, []byte("original "+filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"link-out": filepath.Join(e.outside, "passwd"), "link-key": filepath.Join(e.state, "secret.key"),
		"linkdir": e.outside} {
		if err := os.Symlink(target, filepath.Join(e.data, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.cfg = moduletest.MapConfig{"lightsout.state_dir": e.state}
	e.mod = NewModule()
	t.Cleanup(func() { e.mod.Close() })
	return e
}

// run returns a run of node uuid ("" = node-less) in the sandbox the
// engine would build: the state dir is also in script_paths, to show the
// protected files stay protected inside an allowed directory.
func (e *sandboxEnv) run(t *testing.T, uuid, name string) (*moduletest.Run, *lua.LState) {
	t.Helper()
	var n *moduletest.Node
	if uuid != "" {
		n = &moduletest.Node{ID: uuid, NodeName: name}
	}
	r := moduletest.NewRun(context.Background(), n)
	r.Cfg = e.cfg
	db := filepath.Join(e.state, "lightsout.db")
	r.SetSandbox(sandbox.Config{
		WorkDir:   filepath.Join(e.state, "work", name),
		Write:     []string{e.data, e.state},
		Publish:   []string{filepath.Join(e.state, "published")},
		Protected: []string{filepath.Join(e.state, "secret.key"), db, db + "-wal", db + "-shm", e.conf},
	})
	L := moduletest.Open(r, e.mod)
	t.Cleanup(L.Close)
	L.SetGlobal("bmc", &lua.LUserData{Value: &fakeBMC{}})
	for k, v := range map[string]string{"state": e.state, "data": e.data, "outside": e.outside, "conf": e.conf, "A": nodeID, "B": otherID} {
		L.SetGlobal(k, lua.LString(v))
	}
	return r, L
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSandbox: every way a script could read a protected or outside file
// through vmedia, overwrite a file, or touch another node's media is
// refused with forbidden; allowed paths work; the other node's published
// floppy and its artifact survive.
func TestSandbox(t *testing.T) {
	e := newSandboxEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "downloaded") }))
	defer srv.Close()

	// node B publishes its floppy (its own media: allowed)
	_, LB := e.run(t, otherID, "n2")
	if err := LB.DoString(`urlB = require("vmedia").publish(data .. "/fw.bin", { name = "image-" .. B, kind = "floppy" })`); err != nil {
		t.Fatal(err)
	}
	urlB := lua.LVAsString(LB.GetGlobal("urlB"))
	runA, LA := e.run(t, nodeID, "n1")
	runA.Arts = append(runA.Arts, module.Artifact{ID: 100, RunID: 9, NodeUUID: otherID, Kind: "floppy", Location: "web:image-" + otherID})
	LA.SetGlobal("URL", lua.LString(srv.URL+"/k.img"))

	refused := []struct{ name, code string }{
		{"publish the secret key", `vmedia.publish(state .. "/secret.key")`},
		{"publish the database", `vmedia.publish(state .. "/lightsout.db")`},
		{"publish the database wal", `vmedia.publish(state .. "/lightsout.db-wal")`},
		{"publish the config", `vmedia.publish(conf)`},
		{"publish /etc/passwd", `vmedia.publish("/etc/passwd")`},
		{"publish outside", `vmedia.publish(outside .. "/passwd")`},
		{"publish through a symlink out", `vmedia.publish(data .. "/link-out")`},
		{"publish through a symlink to the key", `vmedia.publish(data .. "/link-key")`},
		{"publish through a symlinked dir", `vmedia.publish(data .. "/linkdir/passwd")`},
		{"publish with ..", `vmedia.publish(data .. "/../" .. outside:match("[^/]+$") .. "/passwd")`},
		{"publish relative ..", `vmedia.publish("../../../../../../../../etc/passwd")`},
		{"resolve file:// key", `vmedia.resolve("file://" .. state .. "/secret.key")`},
		{"setup_for_boot with /etc/passwd", `vmedia.setup_for_boot(bmc, "/etc/passwd")`},
		{"fetch a local key", `vmedia.fetch(state .. "/secret.key", "k")`},
		{"fetch over an existing file", `vmedia.fetch(URL, data .. "/existing.img")`},
		{"fetch over the config", `vmedia.fetch(URL, conf)`},
		{"fetch over the secret key", `vmedia.fetch(URL, state .. "/secret.key")`},
		{"fetch outside", `vmedia.fetch(URL, outside .. "/new.img")`},
		{"fetch through a symlinked dir", `vmedia.fetch(URL, data .. "/linkdir/new.img")`},
		{"fetch relative ..", `vmedia.fetch(URL, "../../../../../../../../tmp/new.img")`},
		{"publish as another node's floppy", `vmedia.publish(data .. "/fw.bin", { name = "image-" .. B })`},
		{"resolve as another node's ISO", `vmedia.resolve(data .. "/fw.bin", { name = "boot-" .. B .. ".iso" })`},
		{"another node's swift object", `vmedia.resolve("swift:image-" .. B)`},
		{"cleanup another node by uuid", `vmedia.cleanup(B)`},
		{"cleanup another node by table", `vmedia.cleanup({ uuid = B, name = "n2" })`},
		{"cleanup another node by name", `vmedia.cleanup("n2", bmc)`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if err := LA.DoString(`
				vmedia = require("vmedia")
				local ok, err = pcall(function() ` + tt.code + ` end)
				assert(not ok, "accepted")
				assert(type(err) == "table" and err.code == "forbidden", tostring(err))
			`); err != nil {
				t.Fatal(err)
			}
		})
	}
	// an artifact of A naming B's media (recorded before run.artifact
	// refused such locations): A's cleanup leaves it alone
	runA.Arts = append(runA.Arts, module.Artifact{ID: 101, RunID: 1, NodeUUID: nodeID, Kind: "floppy", Location: "web:image-" + otherID})
	if err := LA.DoString(`
		local vmedia = require("vmedia")
		own = vmedia.publish(data .. "/fw.bin")
		p = vmedia.fetch(URL, "dl/k.img")
		p2 = vmedia.fetch(URL, "dl/k.img") -- the run's own file: rewritten
		assert(p == p2)
		local r = vmedia.cleanup()
		assert(#r.deleted == 1, #r.deleted)
		assert(r.errors["web:image-" .. B], "B's media not reported as skipped")
		vmedia.cleanup(A)
		vmedia.cleanup({ uuid = A })
	`); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(lua.LVAsString(LA.GetGlobal("p"))); err != nil || string(b) != "downloaded" ||
		!strings.HasPrefix(lua.LVAsString(LA.GetGlobal("p")), filepath.Join(e.state, "work", "n1")) {
		t.Fatalf("fetch into the work dir: %q %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.data, "existing.img")); string(b) != "original existing.img" {
		t.Fatalf("existing file overwritten: %q", b)
	}
	if code, body := httpGet(t, urlB); code != 200 || body != "original fw.bin" {
		t.Fatalf("node B's published floppy: %d %q", code, body)
	}
	if arts, _ := runA.Artifacts(otherID); len(arts) != 1 {
		t.Fatalf("node B's artifact marked deleted: %+v", arts)
	}

	// A node-less run acts on no node.
	_, L0 := e.run(t, "", "nodeless")
	if err := L0.DoString(`
		local vmedia = require("vmedia")
		for _, f in ipairs({ function() vmedia.cleanup() end, function() vmedia.cleanup(B) end,
			function() vmedia.publish(data .. "/fw.bin", { name = "image-" .. B }) end }) do
			local ok, err = pcall(f)
			assert(not ok and err.code == "forbidden", tostring(err))
		end
	`); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet(t, urlB); code != 200 {
		t.Fatalf("node B's published floppy after the node-less run: %d", code)
	}
}
