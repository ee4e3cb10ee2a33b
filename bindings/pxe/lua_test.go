package pxe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

// luaRun opens the pxe module for a run of node1 whose sandbox allows dir,
// with the PXE roots under root.
func luaRun(t *testing.T, dir, root string) *moduletest.Run {
	t.Helper()
	r := moduletest.NewRun(context.Background(), &moduletest.Node{ID: node1, NodeName: "n1"})
	r.Allow(dir)
	r.Cfg["pxe.tftp_root"] = filepath.Join(root, "tftpboot")
	r.Cfg["deploy.http_root"] = filepath.Join(root, "httpboot")
	r.Cfg["dnsmasq.dhcp_hostsdir"] = filepath.Join(root, "hosts")
	r.Cfg["dnsmasq.dhcp_optsdir"] = filepath.Join(root, "opts")
	r.Cfg["pxe.tftp_server"] = "192.0.2.10"
	return r
}

// TestLuaPrepareSwitchClean drives the Lua face through a deploy's life:
// prepare, switch to local boot, clean; and its errors.
func TestLuaPrepareSwitchClean(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "k"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "r"), []byte("ramdisk"), 0o644)
	r := luaRun(t, dir, root)
	L := moduletest.Open(r, NewModule())
	defer L.Close()
	err := L.DoString(`
		local pxe = require("pxe")
		local p = pxe.prepare(nil, { kernel = "k", ramdisk = "r", macs = { "52:54:00:12:34:56" },
			params = { ["ipa-api-url"] = "http://192.0.2.10:6385", ["ipa-debug"] = 1 } })
		assert(p.bootfile == "pxelinux.0", p.bootfile)
		assert(#p.links == 1 and p.links[1]:match("pxelinux.cfg/01%-52%-54%-00%-12%-34%-56$"), p.links[1])
		-- errors carry their code and operation
		local ok, e = pcall(pxe.prepare, nil, { kernel = "k", ramdisk = "r", macs = {} })
		assert(not ok and e.code == "invalid_argument" and e.operation == "pxe.prepare" and e.message:match("no ports"), tostring(e))
		ok, e = pcall(pxe.prepare, nil, { kernel = "/etc/shadow", ramdisk = "r", macs = { "52:54:00:12:34:56" } })
		assert(not ok and e.code == "forbidden", tostring(e))
		ok, e = pcall(pxe.prepare, "another-node", { kernel = "k", ramdisk = "r", macs = { "52:54:00:12:34:56" } })
		assert(not ok and e.code == "forbidden", tostring(e))
		ok, e = pcall(pxe.switch, nil, "sideways")
		assert(not ok and e.code == "invalid_argument" and e.operation == "pxe.switch", tostring(e))
	`)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(root, "tftpboot", node1, "config"))
	if err != nil || !strings.Contains(string(cfg), "ipa-api-url=http://192.0.2.10:6385 ipa-debug=1") {
		t.Fatalf("config %q, %v", cfg, err)
	}
	if err := L.DoString(`
		local pxe = require("pxe")
		pxe.switch(nil, "local")
		pxe.clean()
		pxe.clean()
	`); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"hosts", "opts"} {
		if left := walk(t, filepath.Join(root, d)); len(left) != 0 {
			t.Errorf("%s left: %v", d, left)
		}
	}
	for _, p := range walk(t, filepath.Join(root, "tftpboot")) {
		if strings.Contains(p, node1) || strings.Contains(p, "01-52") || strings.Contains(p, "master_images") {
			t.Errorf("left after pxe.clean: %s", p)
		}
	}
	calls := strings.Join(r.Calls(), " ")
	for _, want := range []string{"pxe.prepare", "pxe.switch", "pxe.clean"} {
		if !strings.Contains(calls, want) {
			t.Errorf("call events %s lack %s", calls, want)
		}
	}
}
