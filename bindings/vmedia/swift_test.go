package vmedia

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/bindings/swift/swiftaio"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

// realSwift is the package's Swift all-in-one, started on first use.
var realSwift swiftaio.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := realSwift.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func needSwift(t *testing.T) *swiftaio.AIO {
	t.Helper()
	return realSwift.Get(t)
}

func TestSwiftStore(t *testing.T) {
	a := needSwift(t)
	ctx := context.Background()
	cfg := moduletest.MapConfig{"swift.auth_url": a.AuthURL, "swift.auth_version": "1", "swift.username": a.User,
		"swift.password": a.Key, "ilo.swift_ilo_container": "vm_c", "ilo.swift_object_expiry_timeout": "300"}
	sc, _ := swift.ConfigFrom(cfg)
	admin, err := swift.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.SetTempURLKey(ctx, "vmedia-test-key"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Upload(ctx, "vm_c", "prebuilt.iso", strings.NewReader("prebuilt iso"), 12, swift.UploadOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("use_web_server_for_images wins", func(t *testing.T) {
		c2 := moduletest.MapConfig{"ilo.use_web_server_for_images": "true"}
		for k, v := range cfg {
			c2[k] = v
		}
		e := newLuaEnv(t, c2)
		e.do(t, `assert(require("vmedia").store() == "web")`)
	})

	e := newLuaEnv(t, cfg)
	iso := filepath.Join(t.TempDir(), "deploy.iso")
	os.WriteFile(iso, []byte("local iso bytes"), 0o644)
	e.L.SetGlobal("iso", lua.LString(iso))
	e.do(t, `
		local vmedia = require("vmedia")
		assert(vmedia.store() == "swift")
		res = vmedia.setup_for_boot(bmc, iso, {["ipa-api-url"]="http://127.0.0.1:6385"})
		pre = vmedia.resolve("swift:prebuilt.iso")
		pre2 = vmedia.resolve("swift:vm_c/prebuilt.iso")
	`)
	b := e.bmc
	if got := strings.Join(b.calls, ","); got != "insert FLOPPY,insert CDROM,boot CDROM" {
		t.Fatalf("calls %s", got)
	}
	fl := filepath.Join(t.TempDir(), "f.img")
	os.WriteFile(fl, b.fetched[Floppy], 0o644)
	if p, err := image.ReadFloppyParams(fl); err != nil || p["ipa-api-url"] != "http://127.0.0.1:6385" {
		t.Fatalf("floppy from Swift: %v %v", p, err)
	}
	if string(b.fetched[CDROM]) != "local iso bytes" {
		t.Fatalf("iso from Swift: %q", b.fetched[CDROM])
	}
	if !strings.HasPrefix(b.urls[Floppy], a.StorageURL+"/vm_c/image-"+nodeID+"?temp_url_sig=") {
		t.Fatalf("floppy url %s", b.urls[Floppy])
	}
	for _, g := range []string{"pre", "pre2"} {
		u := lua.LVAsString(e.L.GetGlobal(g))
		if code := status(t, u); code != 200 {
			t.Fatalf("%s %s: %d", g, u, code)
		}
	}
	if e.run.Redact("vmedia-test-key") != "******" {
		t.Fatal("temp URL key not registered as a secret")
	}
	arts, _ := e.run.Artifacts(nodeID)
	if len(arts) != 2 || arts[0].Location != "swift:vm_c/image-"+nodeID || arts[1].Location != "swift:vm_c/boot-"+nodeID+".iso" {
		t.Fatalf("artifacts %+v", arts)
	}
	// expiry: X-Delete-After was set from [ilo] swift_object_expiry_timeout
	e.do(t, `r = require("vmedia").cleanup("`+nodeID+`")`)
	for _, d := range []string{Floppy, CDROM} {
		if code := status(t, b.urls[d]); code != 404 {
			t.Fatalf("%s after cleanup: %d", d, code)
		}
	}
	if left, _ := e.run.Artifacts(nodeID); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
	admin.DeleteObject(ctx, "vm_c", "prebuilt.iso")
}
