package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// runLua runs script with the image module whose working directory is dir.
func runLua(t *testing.T, dir, script string) (*moduletest.Run, error) {
	t.Helper()
	r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: "node-1"})
	r.Allow(dir)
	L := moduletest.Open(r, NewModule())
	defer L.Close()
	return r, L.DoString(script)
}

func TestModuleFloppyAndInspect(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-agent-token-value"
	r, err := runLua(t, dir, fmt.Sprintf(`
		local image = require("image")
		local p = image.floppy("params.img", {["ipa-api-url"] = "http://127.0.0.1:6385", ["ipa-agent-token"] = %q,
			["coreos.configdrive"] = 0, port = 1000000, ratio = 1.5, flag = true}, {files = {["etc/ca.crt"] = "ca.crt"}})
		assert(p == %q, "path " .. p)
		local info = image.inspect("params.img")
		assert(info.kind == "fat", info.kind)
		assert(info.label == "ir-vfd-dev", info.label)
		assert(info.params["ipa-agent-token"] == %q)
		assert(info.params["coreos.configdrive"] == "0", info.params["coreos.configdrive"])
		assert(info.params.port == "1000000", info.params.port)
		assert(info.params.ratio == "1.5" and info.params.flag == "true")
		local names = {}
		for _, f in ipairs(info.files) do names[f.path] = f.size end
		assert(names["parameters.txt"] and names["etc/ca.crt"] == 4, "files")
	`, secret, filepath.Join(dir, "params.img"), secret))
	if err != nil {
		t.Fatal(err)
	}
	if calls := strings.Join(r.Calls(), ","); calls != "image.floppy,image.inspect" {
		t.Fatalf("recorded calls %q", calls)
	}
	for _, e := range r.Events {
		if strings.Contains(fmt.Sprint(e.Data), secret) {
			t.Fatalf("event %s leaks a parameter value: %v", e.Name, e.Data)
		}
		if e.Kind == "call" && e.Data["outcome"] != "ok" {
			t.Fatalf("event %s: %v", e.Name, e.Data)
		}
	}
	if keys := fmt.Sprint(r.Events[0].Data["params"]); !strings.Contains(keys, "ipa-agent-token") {
		t.Fatalf("floppy event should list the parameter keys: %v", r.Events[0].Data)
	}
	got, err := ReadFloppyParams(filepath.Join(dir, "params.img"))
	if err != nil || got["ipa-agent-token"] != secret {
		t.Fatalf("ReadFloppyParams = %v, %v", got, err)
	}
}

func TestModuleISO(t *testing.T) {
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	testenv.RequireTools(t, "grub-mkstandalone")
	dir := t.TempDir()
	randFile(t, dir, "k", 100_000)
	randFile(t, dir, "r", 300_000)
	randFile(t, dir, "meta.json", 100)
	// the output directory does not exist yet: it is created
	_, err := runLua(t, dir, `
		local p = require("image").iso("out/first.iso", {kernel = "k", ramdisk = "r"})
		assert(p:find("out/first.iso", 1, true), p)
	`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "first.iso")); err != nil {
		t.Fatal(err)
	}
	r, err := runLua(t, dir, `
		local image = require("image")
		local p = image.iso("out/boot.iso", {kernel = "k", ramdisk = "r", append = "a=1 ipa-agent-token=XYZ",
			files = {["openstack/latest/meta_data.json"] = "meta.json"}})
		local info = image.inspect(p)
		assert(info.kind == "iso" and info.label == "config-2", info.label)
		assert(#info.el_torito == 2, "entries")
		assert(info.el_torito[1].platform == "BIOS" and info.el_torito[2].platform == "UEFI")
		assert(info.el_torito[2].file == "boot/grub/efiboot.img", info.el_torito[2].file)
		assert(info.kernel_cmdline == "a=1 ipa-agent-token=XYZ", info.kernel_cmdline)
		local bios = image.iso("bios.iso", {kernel = "k", ramdisk = "r", bios_only = true})
		assert(#image.inspect(bios).el_torito == 1)
	`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Events {
		if strings.Contains(fmt.Sprint(e.Data), "XYZ") {
			t.Fatalf("event %s records the kernel command line: %v", e.Name, e.Data)
		}
	}
	if e := r.Events[0]; e.Name != "image.iso" || e.Data["mode"] != "hybrid" || e.Data["kernel"] != filepath.Join(dir, "k") {
		t.Fatalf("first event %+v", e)
	}
}

func TestModuleErrors(t *testing.T) {
	dir := t.TempDir()
	randFile(t, dir, "k", 1000)
	tests := []struct {
		name, call, code string
	}{
		{"floppy path not a string", `image.floppy(nil, {})`, module.CodeInvalid},
		{"floppy params not a table", `image.floppy("f.img", "x")`, module.CodeInvalid},
		{"floppy nested param", `image.floppy("f.img", {a = {1}})`, module.CodeInvalid},
		{"floppy numeric key", `image.floppy("f.img", {"x"})`, module.CodeInvalid},
		{"floppy bad size", `image.floppy("f.img", {}, {size = 100})`, module.CodeInvalid},
		{"floppy size not a number", `image.floppy("f.img", {}, {size = "big"})`, module.CodeInvalid},
		{"floppy files not a table", `image.floppy("f.img", {}, {files = "x"})`, module.CodeInvalid},
		{"floppy missing extra file", `image.floppy("f.img", {}, {files = {x = "nope"}})`, module.CodeNotFound},
		{"iso opts missing", `image.iso("x.iso")`, module.CodeInvalid},
		{"iso no ramdisk", `image.iso("x.iso", {kernel = "k", bios_only = true})`, module.CodeInvalid},
		{"iso missing kernel", `image.iso("x.iso", {kernel = "nope", ramdisk = "k"})`, module.CodeNotFound},
		{"iso both modes", `image.iso("x.iso", {kernel = "k", ramdisk = "k", bios_only = true, uefi_only = true})`, module.CodeInvalid},
		{"iso bad bool", `image.iso("x.iso", {kernel = "k", ramdisk = "k", bios_only = "yes"})`, module.CodeInvalid},
		{"inspect missing", `image.inspect("nope.img")`, module.CodeNotFound},
		{"inspect not an image", `image.inspect("k")`, module.CodeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runLua(t, dir, fmt.Sprintf(`
				local image = require("image")
				local ok, err = pcall(function() return %s end)
				assert(not ok, "call succeeded")
				assert(type(err) == "table", "error is not a table: " .. tostring(err))
				if err.code ~= %q then error("code " .. tostring(err.code) .. ": " .. tostring(err.message)) end
				assert(err.operation and err.operation:match("^image%%."), "operation " .. tostring(err.operation))
			`, tt.call, tt.code))
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestModuleCancelled checks a cancelled run stops a build.
func TestModuleCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := moduletest.NewRun(ctx, nil)
	r.Allow(dir)
	L := moduletest.Open(r, NewModule())
	defer L.Close()
	L.SetContext(context.Background()) // let the script run; the binding must honour the run's context
	err := L.DoString(`
		local ok, err = pcall(require("image").floppy, "f.img", {a = "b"})
		assert(not ok and err.code == "cancelled", tostring(err and err.code))
	`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f.img")); err == nil {
		t.Fatal("a cancelled floppy build wrote its output")
	}
}
