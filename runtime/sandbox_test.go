package runtime_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// fsModule exposes the run's path policy to Lua as a binding would use it.
type fsModule struct{}

func (fsModule) Name() string { return "fs" }

func (fsModule) Open(L *lua.LState, r module.Run) lua.LValue {
	t := L.NewTable()
	L.SetFuncs(t, map[string]lua.LGFunction{
		"read": func(L *lua.LState) int {
			p, err := r.Paths().Read(L.CheckString(1))
			if err != nil {
				module.Raise(L, "fs.read", err)
			}
			L.Push(lua.LString(p))
			return 1
		},
		"create": func(L *lua.LState) int {
			p, err := r.Paths().Create(L.CheckString(1))
			if err == nil {
				err = os.WriteFile(p, []byte("by the run"), 0o600)
			}
			if err != nil {
				module.Raise(L, "fs.create", err)
			}
			L.Push(lua.LString(p))
			return 1
		},
		"workdir": func(L *lua.LState) int {
			p, err := r.Paths().WorkDir()
			if err != nil {
				module.Raise(L, "fs.workdir", err)
			}
			L.Push(lua.LString(p))
			return 1
		},
	})
	return t
}

// TestEngineSandbox: the engine builds each run's sandbox from the
// configuration: the secret key, the database (and its WAL), the web
// store key and the config file are refused even inside script_paths;
// script_paths and the script's directory are readable; relative paths
// land in <state dir>/work/<run id>, removed when the run ends.
func TestEngineSandbox(t *testing.T) {
	ctx := context.Background()
	state, data := t.TempDir(), t.TempDir()
	c, _ := secrets.NewCipher(bytes.Repeat([]byte{7}, 32))
	db := filepath.Join(state, "lightsout.db")
	st, err := store.Open(ctx, db, c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, f := range []string{"secret.key", "webstore.key"} {
		writeFile(t, state, f, "k")
	}
	writeFile(t, data, "image.raw", "img")
	writeFile(t, data, "existing.img", "original")
	conf := writeFile(t, t.TempDir(), "lightsout.conf",
		"[lightsout]\nstate_dir = "+state+"\ndatabase = "+db+"\nscript_paths = "+data+":"+state+"\n")
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, Modules: []module.Module{fsModule{}}, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := st.CreateNode(ctx, &store.Node{UUID: "11111111-2222-3333-4444-555555555555", Name: "n1", Driver: "agent_ilo", ProvisionState: "manageable"}); err != nil {
		t.Fatal(err)
	}
	scriptDir := t.TempDir()
	script := writeFile(t, scriptDir, "s.lua", `
		local fs = require("fs")
		local state, db, conf, data, scriptdir = params.state, params.db, params.conf, params.data, params.scriptdir
		local function refused(f, p)
			local ok, err = pcall(f, p)
			assert(not ok, p .. " accepted")
			assert(err.code == "forbidden", tostring(err))
		end
		for _, p in ipairs({ state .. "/secret.key", state .. "/webstore.key", db, db .. "-wal", db .. "-shm", conf, "/etc/passwd" }) do
			refused(fs.read, p)
			refused(fs.create, p)
		end
		refused(fs.create, data .. "/existing.img")
		refused(fs.create, "../../../../../../../../tmp/x")
		assert(fs.read(data .. "/image.raw") == data .. "/image.raw")
		assert(fs.read(scriptdir .. "/s.lua"))
		local p = fs.create("deploy-iso/x.iso")
		assert(p == fs.workdir() .. "/deploy-iso/x.iso", p)
		assert(fs.create(data .. "/new.img") == data .. "/new.img")
		-- run.artifact cannot make the node's cleanup delete another node's media
		for _, loc in ipairs({ "web:image-99999999-2222-4333-8444-555555555555", "swift:c/boot-99999999-2222-4333-8444-555555555555.iso",
			"web:fw.bin", "web:image-11111111-2222-3333-4444-555555555555-99999999-2222-4333-8444-555555555555" }) do
			local ok, err = pcall(run.artifact, "floppy", loc)
			assert(not ok and err.code == "forbidden", loc .. ": " .. tostring(err))
		end
		run.artifact("floppy", "web:image-11111111-2222-3333-4444-555555555555")
		run.artifact("report", "file:/srv/reports/x.json")
		print(fs.workdir())
	`)
	res, err := eng.Run(ctx, runtime.RunRequest{Script: script, Node: "n1", Timeout: 10 * time.Second,
		Params: map[string]string{"state": state, "db": db, "conf": conf, "data": data, "scriptdir": scriptDir}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("run %s: %s", res.Status, res.Error)
	}
	wd := strings.TrimPrefix(strings.TrimSpace(out.String()), "[n1] ")
	if wd != runtime.WorkDir(cfg, res.RunID) || wd != filepath.Join(state, "work", strconv.FormatInt(res.RunID, 10)) {
		t.Fatalf("work dir %q", wd)
	}
	if _, err := os.Stat(wd); !os.IsNotExist(err) {
		t.Fatalf("work dir left after the run: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "existing.img")); string(b) != "original" {
		t.Fatalf("existing file overwritten: %q", b)
	}
}
