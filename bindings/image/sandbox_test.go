package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
)

// TestSandbox: image.floppy, image.iso and image.inspect read only
// allowed, unprotected files and never overwrite a file the run did not
// create.
func TestSandbox(t *testing.T) {
	state, data, outside := t.TempDir(), t.TempDir(), t.TempDir()
	key, db, conf := filepath.Join(state, "secret.key"), filepath.Join(state, "lightsout.db"), filepath.Join(state, "lightsout.conf")
	for _, f := range []string{key, db, conf, filepath.Join(data, "existing.img"), filepath.Join(data, "ca.crt"), filepath.Join(outside, "passwd")} {
		if err := os.WriteFile(f, []byte("original"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(data, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(key, filepath.Join(data, "link-key")); err != nil {
		t.Fatal(err)
	}
	r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: "node-1"})
	r.SetSandbox(sandbox.Config{WorkDir: filepath.Join(state, "work", "1"), Write: []string{data, state},
		Protected: []string{key, db, db + "-wal", db + "-shm", conf}})
	L := moduletest.Open(r, NewModule())
	defer L.Close()
	for k, v := range map[string]string{"state": state, "data": data, "outside": outside, "key": key, "db": db, "conf": conf} {
		L.SetGlobal(k, lua.LString(v))
	}
	refused := []struct{ name, code string }{
		{"floppy over an existing file", `image.floppy(data .. "/existing.img", {})`},
		{"floppy over the secret key", `image.floppy(key, {})`},
		{"floppy over the database", `image.floppy(db, {})`},
		{"floppy over the config", `image.floppy(conf, {})`},
		{"floppy outside", `image.floppy(outside .. "/f.img", {})`},
		{"floppy in /etc", `image.floppy("/etc/lightsout-f.img", {})`},
		{"floppy relative ..", `image.floppy("../../../../../../../../tmp/f.img", {})`},
		{"floppy through a symlinked dir", `image.floppy(data .. "/linkdir/f.img", {})`},
		{"floppy copying the secret key", `image.floppy("f1.img", {}, { files = { k = key } })`},
		{"floppy copying a symlink to the key", `image.floppy("f2.img", {}, { files = { k = data .. "/link-key" } })`},
		{"floppy copying /etc/passwd", `image.floppy("f3.img", {}, { files = { p = "/etc/passwd" } })`},
		{"iso with the key as kernel", `image.iso("a.iso", { kernel = key, ramdisk = data .. "/ca.crt", bios_only = true })`},
		{"iso with an outside ramdisk", `image.iso("b.iso", { kernel = data .. "/ca.crt", ramdisk = outside .. "/passwd", bios_only = true })`},
		{"iso over an existing file", `image.iso(data .. "/existing.img", { kernel = data .. "/ca.crt", ramdisk = data .. "/ca.crt", bios_only = true })`},
		{"inspect the secret key", `image.inspect(key)`},
		{"inspect the database", `image.inspect(db)`},
		{"inspect the config", `image.inspect(conf)`},
		{"inspect outside", `image.inspect(outside .. "/passwd")`},
		{"inspect with ..", `image.inspect(data .. "/../" .. outside:match("[^/]+$") .. "/passwd")`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if err := L.DoString(`
				image = require("image")
				local ok, err = pcall(function() ` + tt.code + ` end)
				assert(not ok, "accepted")
				assert(type(err) == "table" and err.code == "forbidden", tostring(err))
			`); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, f := range []string{key, db, conf, filepath.Join(data, "existing.img")} {
		if b, _ := os.ReadFile(f); string(b) != "original" {
			t.Fatalf("%s changed: %q", f, b)
		}
	}
	if err := L.DoString(`
		local image = require("image")
		local p = image.floppy("params.img", { a = "b" }, { files = { ["ca.crt"] = data .. "/ca.crt" } })
		assert(p == state .. "/work/1/params.img", p)
		assert(image.floppy("params.img", { a = "c" }) == p) -- the run's own file
		assert(image.inspect(p).params.a == "c")
		local q = image.floppy(data .. "/new.img", {})
		assert(image.inspect(q).kind == "fat")
	`); err != nil {
		t.Fatal(err)
	}
}
