package swift

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
)

// TestSandbox: swift.upload and swift.publish read only allowed,
// unprotected files, and no call touches another node's objects in the
// media container. Every case is refused before any request (the auth
// URL points at a closed port).
func TestSandbox(t *testing.T) {
	const own, other = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "2c37d1a0-5b1e-4f7e-9d2c-0e1f2a3b4c5d"
	state, data, outside := t.TempDir(), t.TempDir(), t.TempDir()
	key, db, conf := filepath.Join(state, "secret.key"), filepath.Join(state, "lightsout.db"), filepath.Join(state, "lightsout.conf")
	for _, f := range []string{key, db, conf, filepath.Join(data, "boot.iso"), filepath.Join(outside, "passwd")} {
		if err := os.WriteFile(f, []byte("original"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(data, "link-out")); err != nil {
		t.Fatal(err)
	}
	for _, nodeless := range []bool{false, true} {
		var n *moduletest.Node
		if !nodeless {
			n = &moduletest.Node{ID: own, NodeName: "n1"}
		}
		r := moduletest.NewRun(context.Background(), n)
		r.Cfg = moduletest.MapConfig{"swift.auth_url": "http://127.0.0.1:1/auth/v1.0", "swift.auth_version": "1",
			"swift.username": "t:u", "swift.password": "p", "ilo.swift_ilo_container": "media"}
		r.SetSandbox(sandbox.Config{WorkDir: filepath.Join(state, "work", "1"), Write: []string{data, state},
			Protected: []string{key, db, db + "-wal", db + "-shm", conf}})
		L := moduletest.Open(r, NewModule())
		defer L.Close()
		for k, v := range map[string]string{"data": data, "outside": outside, "key": key, "db": db, "conf": conf, "B": other} {
			L.SetGlobal(k, lua.LString(v))
		}
		refused := []string{
			`swift.upload(key)`, `swift.publish(key)`, `swift.upload(db)`, `swift.upload(db .. "-wal")`, `swift.upload(conf)`,
			`swift.upload("/etc/passwd")`, `swift.publish(outside .. "/passwd")`, `swift.upload(data .. "/link-out")`,
			`swift.upload(data .. "/../" .. outside:match("[^/]+$") .. "/passwd")`,
			`swift.upload(data .. "/boot.iso", { name = "image-" .. B })`,
			`swift.publish(data .. "/boot.iso", { name = "boot-" .. B .. ".iso" })`,
			`swift.delete("image-" .. B)`, `swift.temp_url("image-" .. B)`, `swift.stat("boot-" .. B .. ".iso")`,
		}
		for _, code := range refused {
			t.Run(code, func(t *testing.T) {
				if err := L.DoString(`
					swift = require("swift")
					local ok, err = pcall(function() ` + code + ` end)
					assert(not ok, "accepted")
					assert(type(err) == "table" and err.code == "forbidden", tostring(err))
				`); err != nil {
					t.Fatalf("nodeless=%v: %v", nodeless, err)
				}
			})
		}
		// Allowed: passes the sandbox and fails only at the closed port.
		if err := L.DoString(`
			local ok, err = pcall(require("swift").upload, data .. "/boot.iso")
			assert(not ok and err.code ~= "forbidden", tostring(err))
		`); err != nil {
			t.Fatal(err)
		}
	}
}
