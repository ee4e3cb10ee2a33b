package vmedia

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
)

const nodeID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"

// fakeBMC records calls; it stands in for ilo.Client.
type fakeBMC struct {
	mu      sync.Mutex
	calls   []string
	urls    map[string]string
	failOn  string
	fetched map[string][]byte // device -> bytes fetched from the URL (like an iLO)
}

func (f *fakeBMC) InsertVirtualMedia(ctx context.Context, url, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "insert "+device)
	if f.failOn == "insert "+device {
		return errors.New("iLO says no")
	}
	if f.urls == nil {
		f.urls, f.fetched = map[string]string{}, map[string][]byte{}
	}
	f.urls[device] = url
	if strings.HasPrefix(url, "http://127.0.0.1") {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New("fetch " + resp.Status)
		}
		f.fetched[device], _ = io.ReadAll(resp.Body)
	}
	return nil
}

func (f *fakeBMC) EjectVirtualMedia(ctx context.Context, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "eject "+device)
	if f.failOn == "eject "+device {
		return errors.New("eject failed")
	}
	return nil
}

func (f *fakeBMC) SetOneTimeBoot(ctx context.Context, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "boot "+device)
	return nil
}

func TestParseRef(t *testing.T) {
	dir := t.TempDir()
	uuidFile := filepath.Join(dir, nodeID)
	os.WriteFile(uuidFile, nil, 0o644)
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	tests := []struct {
		ref, kind, a, b string
		err             string
	}{
		{"/srv/boot.iso", RefLocal, "/srv/boot.iso", "", ""},
		{"file:///srv/boot.iso", RefLocal, "/srv/boot.iso", "", ""},
		{"http://127.0.0.1/x.iso?sig=1", RefHTTP, "http://127.0.0.1/x.iso?sig=1", "", ""},
		{"HTTPS://h/x.iso", RefHTTP, "HTTPS://h/x.iso", "", ""},
		{"swift:boot-1.iso", RefSwift, "", "boot-1.iso", ""},
		{"swift:cont/dir/boot.iso", RefSwift, "cont", "dir/boot.iso", ""},
		{"swift:", "", "", "", "names no object"},
		{"swift:cont/", "", "", "", "names no object"},
		{"glance://" + nodeID, RefGlance, nodeID, "", ""},
		{"glance://nope", "", "", "", "glance://<image UUID>"},
		{"0be26c0b-03f2-4d2e-ae87-c02d7f33c123", RefGlance, "0be26c0b-03f2-4d2e-ae87-c02d7f33c123", "", ""},
		{nodeID, RefLocal, nodeID, "", ""}, // an existing file named like a UUID
		{"ftp://h/x", "", "", "", "unsupported image reference"},
		{"", "", "", "", "empty image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			k, a, b, err := ParseRef(tt.ref)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || module.CodeOf(err) != module.CodeInvalid {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || k != tt.kind || a != tt.a || b != tt.b {
				t.Fatalf("got %q %q %q %v", k, a, b, err)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"/x/deploy ramdisk.iso", ""}: "deploy_ramdisk.iso",
		{"/x/.hidden", "n1"}:          "n1-hidden",
		{"/x/a.iso", nodeID}:          nodeID + "-a.iso",
	} {
		if got := DefaultName(in[0], in[1]); got != want {
			t.Errorf("DefaultName(%q,%q) = %q want %q", in[0], in[1], got, want)
		}
		if CheckName(DefaultName(in[0], in[1])) != nil {
			t.Errorf("DefaultName gave an invalid name")
		}
	}
}

// luaEnv is a vmedia module on a web store in a temp state dir.
type luaEnv struct {
	mod *Module
	run *moduletest.Run
	L   *lua.LState
	bmc *fakeBMC
}

func newLuaEnv(t *testing.T, cfg moduletest.MapConfig) *luaEnv {
	t.Helper()
	state := t.TempDir()
	run := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeID, NodeName: "n1"})
	run.Cfg = moduletest.MapConfig{"lightsout.state_dir": state}
	for k, v := range cfg {
		run.Cfg[k] = v
	}
	allowTestDirs(t, run)
	mod := NewModule()
	t.Cleanup(func() { mod.Close() })
	L := moduletest.Open(run, mod)
	t.Cleanup(L.Close)
	bmc := &fakeBMC{}
	L.SetGlobal("bmc", &lua.LUserData{Value: bmc})
	L.SetGlobal("notbmc", &lua.LUserData{Value: "string"})
	return &luaEnv{mod, run, L, bmc}
}

func (e *luaEnv) do(t *testing.T, code string) {
	t.Helper()
	if err := e.L.DoString(code); err != nil {
		t.Fatalf("lua: %v", err)
	}
}

func status(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLuaSetupForBootAndCleanup(t *testing.T) {
	e := newLuaEnv(t, nil)
	iso := filepath.Join(t.TempDir(), "deploy.iso")
	os.WriteFile(iso, []byte("not really an ISO, but bytes to serve"), 0o644)
	e.L.SetGlobal("iso", lua.LString(iso))
	e.do(t, `
		local vmedia = require("vmedia")
		assert(vmedia.store() == "web")
		res = vmedia.setup_for_boot(bmc, iso, {["ipa-api-url"]="http://127.0.0.1:6385", BOOTIF="52:54:00:12:34:56", ["coreos.configdrive"]=0})
		assert(res.floppy_url:find("/image-`+nodeID+`?temp_url_sig=", 1, true), res.floppy_url)
		assert(res.iso_url:find("/boot-`+nodeID+`.iso?temp_url_sig=", 1, true), res.iso_url)
	`)
	b := e.bmc
	if got := strings.Join(b.calls, ","); got != "insert FLOPPY,insert CDROM,boot CDROM" {
		t.Fatalf("BMC calls %s", got)
	}
	// what the "BMC" fetched is Ironic's floppy and our ISO
	fl := filepath.Join(t.TempDir(), "floppy.img")
	os.WriteFile(fl, b.fetched[Floppy], 0o644)
	params, err := image.ReadFloppyParams(fl)
	if err != nil {
		t.Fatal(err)
	}
	if params["ipa-api-url"] != "http://127.0.0.1:6385" || params["BOOTIF"] != "52:54:00:12:34:56" || params["coreos.configdrive"] != "0" {
		t.Fatalf("floppy params %v", params)
	}
	if string(b.fetched[CDROM]) != "not really an ISO, but bytes to serve" {
		t.Fatalf("iso fetched %q", b.fetched[CDROM])
	}
	arts, _ := e.run.Artifacts(nodeID)
	var locs []string
	for _, a := range arts {
		locs = append(locs, a.Kind+"="+a.Location)
	}
	if strings.Join(locs, " ") != "floppy=web:image-"+nodeID+" iso=web:boot-"+nodeID+".iso" {
		t.Fatalf("artifacts %v", locs)
	}
	calls := strings.Join(e.run.Calls(), ",")
	if calls != "ilo.insert_virtual_media,ilo.insert_virtual_media,ilo.set_one_time_boot,vmedia.setup_for_boot" {
		t.Fatalf("recorded calls %s", calls)
	}

	b.calls = nil
	e.do(t, `
		local vmedia = require("vmedia")
		local r = vmedia.cleanup(nil, bmc)
		assert(#r.deleted == 2, #r.deleted)
		assert(next(r.errors) == nil)
	`)
	if got := strings.Join(b.calls, ","); got != "eject FLOPPY,eject CDROM" {
		t.Fatalf("cleanup BMC calls %s", got)
	}
	if left, _ := e.run.Artifacts(nodeID); len(left) != 0 {
		t.Fatalf("artifacts left %v", left)
	}
	for _, u := range []string{b.urls[Floppy], b.urls[CDROM]} {
		if code := status(t, u); code != 404 {
			t.Fatalf("%s after cleanup: %d", u, code)
		}
	}
}

func TestLuaPublishResolve(t *testing.T) {
	e := newLuaEnv(t, moduletest.MapConfig{
		"glance.swift_endpoint_url": "http://127.0.0.1:8080", "glance.swift_account": "AUTH_g",
		"glance.swift_temp_url_key": "glance-secret-key",
	})
	f := filepath.Join(t.TempDir(), "fw.bin")
	os.WriteFile(f, []byte("firmware"), 0o644)
	e.L.SetGlobal("f", lua.LString(f))
	e.do(t, `
		local vmedia = require("vmedia")
		u1 = vmedia.publish(f, {name="fw-1.bin", expires=60})
		u2 = vmedia.resolve(f)
		assert(vmedia.resolve("http://127.0.0.1:9/x.iso") == "http://127.0.0.1:9/x.iso")
		g = vmedia.resolve("glance://`+nodeID+`")
		assert(g:find("http://127.0.0.1:8080/v1/AUTH_g/glance/`+nodeID+`?temp_url_sig=", 1, true) == 1, g)
	`)
	u1 := lua.LVAsString(e.L.GetGlobal("u1"))
	u2 := lua.LVAsString(e.L.GetGlobal("u2"))
	if !strings.Contains(u2, "/"+nodeID+"-fw.bin?") {
		t.Fatalf("resolve name: %s", u2)
	}
	for _, u := range []string{u1, u2} {
		if code := status(t, u); code != 200 {
			t.Fatalf("%s: %d", u, code)
		}
	}
	arts, _ := e.run.Artifacts(nodeID)
	if len(arts) != 2 || arts[0].Location != "web:fw-1.bin" || arts[0].Kind != "file" {
		t.Fatalf("artifacts %+v", arts)
	}
	// the Glance key is a secret of the run
	if e.run.Redact("x glance-secret-key") != "x ******" {
		t.Fatal("glance key not registered as a secret")
	}
	// The store survives across runs: a second Open reuses the same server.
	if e.mod.WebStore() == nil {
		t.Fatal("web store not kept")
	}
	before := e.mod.WebStore()
	L2 := moduletest.Open(e.run, e.mod)
	defer L2.Close()
	if err := L2.DoString(`require("vmedia").publish(f0, {name="again"})`); err == nil {
		t.Fatal("publish of nil file accepted")
	}
	if e.mod.WebStore() != before {
		t.Fatal("web store restarted")
	}
}

func TestLuaErrors(t *testing.T) {
	e := newLuaEnv(t, nil)
	f := filepath.Join(t.TempDir(), "fw.bin")
	os.WriteFile(f, []byte("firmware"), 0o644)
	e.L.SetGlobal("f", lua.LString(f))
	tests := []struct {
		name, code, wantCode, wantMsg string
	}{
		{"setup without BMC", `vmedia.setup_for_boot("x", "http://127.0.0.1/x.iso")`, module.CodeInvalid, "must be an ilo.client from ilo.connect"},
		{"setup with foreign userdata", `vmedia.setup_for_boot(notbmc, "http://127.0.0.1/x.iso")`, module.CodeInvalid, "must be an ilo.client"},
		{"eject with table", `vmedia.eject_all({})`, module.CodeInvalid, "must be an ilo.client"},
		{"missing file", `vmedia.publish("nonexistent/x.iso")`, module.CodeNotFound, "no such file"},
		{"bad name", `vmedia.publish(f, {name="a/x"})`, module.CodeInvalid, "letters, digits"},
		{"swift ref without swift", `vmedia.resolve("swift:boot.iso")`, module.CodeInvalid, "[swift] auth_url"},
		{"glance without config", `vmedia.resolve("glance://` + nodeID + `")`, module.CodeInvalid, "swift_endpoint_url"},
		{"bad ref", `vmedia.resolve("ftp://h/x")`, module.CodeInvalid, "unsupported image reference"},
		{"cleanup bad arg", `vmedia.cleanup(42)`, module.CodeInvalid, "(node) must be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(t, `
				vmedia = require("vmedia")
				ok, err = pcall(function() `+tt.code+` end)
				assert(not ok)
			`)
			errv, ok := e.L.GetGlobal("err").(*lua.LTable)
			if !ok {
				t.Fatalf("error is not a table: %v", e.L.GetGlobal("err"))
			}
			code := lua.LVAsString(errv.RawGetString("code"))
			msg := lua.LVAsString(errv.RawGetString("message"))
			if code != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("got %s %q, want %s %q", code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestSetupForBootFailures(t *testing.T) {
	e := newLuaEnv(t, nil)
	md, err := e.mod.Media(e.run)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name   string
		failOn string
		node   string
		params map[string]string
		calls  string
		want   string
	}{
		{"floppy insert fails", "insert FLOPPY", nodeID, map[string]string{"a": "b"}, "insert FLOPPY", "inserting virtual media FLOPPY"},
		{"cdrom insert fails", "insert CDROM", nodeID, nil, "insert CDROM", "inserting virtual media CDROM"},
		{"params without node", "", "", map[string]string{"a": "b"}, "", "needs a node"},
		{"bad param key", "", nodeID, map[string]string{"a=b": "c"}, "", "contains '='"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBMC{failOn: tt.failOn}
			_, err := md.SetupForBoot(ctx, b, tt.node, "http://127.0.0.1:1/x.iso", tt.params, Hooks{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v want %q", err, tt.want)
			}
			if got := strings.Join(b.calls, ","); got != tt.calls {
				t.Fatalf("calls %q want %q", got, tt.calls)
			}
		})
	}
	b := &fakeBMC{failOn: "eject FLOPPY"}
	if err := EjectAll(ctx, b, Hooks{}); err == nil || !strings.Contains(err.Error(), "eject virtual media floppy") || len(b.calls) != 1 {
		t.Fatalf("eject: %v %v", err, b.calls)
	}
}

func TestWebConfig(t *testing.T) {
	tests := []struct {
		cfg  moduletest.MapConfig
		want string
	}{
		{moduletest.MapConfig{"lightsout.publish_tls_cert": "/c"}, "must be set together"},
		{moduletest.MapConfig{"lightsout.publish_digest": "md5"}, "publish_digest"},
		{moduletest.MapConfig{"ilo.use_web_server_for_images": "maybe"}, "use_web_server_for_images"},
	}
	for _, tt := range tests {
		if _, err := WebConfigFrom(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v", tt.cfg, err)
		}
	}
	w, err := WebConfigFrom(moduletest.MapConfig{"lightsout.state_dir": "/s", "ilo.use_web_server_for_images": "True"})
	if err != nil || w.Dir != "/s/published" || w.KeyFile != "/s/webstore.key" || w.Addr != "127.0.0.1:0" || !w.ForceLocal {
		t.Fatalf("%+v %v", w, err)
	}
}

// allowTestDirs lets run read and write the test's temporary directories
// (every t.TempDir() of t shares one parent), as [lightsout] script_paths
// would, with the work directory inside.
func allowTestDirs(t *testing.T, run *moduletest.Run) {
	t.Helper()
	root := filepath.Dir(t.TempDir())
	run.Allow(filepath.Join(root, "work"), root)
}

// killedStore stands in for a publisher whose process dies mid-upload: it
// notes what the run had recorded when the upload started, then fails.
type killedStore struct {
	recorded []string
	run      *moduletest.Run
}

func (k *killedStore) Publish(ctx context.Context, file, name string, ttl time.Duration) (string, error) {
	arts, _ := k.run.Artifacts(nodeID)
	for _, a := range arts {
		k.recorded = append(k.recorded, a.Kind+" "+a.Location)
	}
	return "", errors.New("killed mid-upload")
}

func (k *killedStore) Delete(ctx context.Context, name string) error { return nil }

// Every object is recorded as an artifact before it is stored: a process
// killed while publishing leaves a record a cleanup deletes, never an
// unrecorded object.
func TestPublishRecordsBeforeStoring(t *testing.T) {
	run := moduletest.NewRun(context.Background(), &moduletest.Node{ID: nodeID, NodeName: "n1"})
	k := &killedStore{run: run}
	md := &Media{Store: k, StoreKind: StoreWeb, Record: run.Artifact}
	file := filepath.Join(t.TempDir(), "boot.iso")
	if err := os.WriteFile(file, []byte("iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := md.Publish(context.Background(), file, "boot-"+nodeID+".iso", "", 0); err == nil {
		t.Fatal("publish through a failing store succeeded")
	}
	want := "iso web:boot-" + nodeID + ".iso"
	if len(k.recorded) != 1 || k.recorded[0] != want {
		t.Fatalf("recorded when the upload started: %q, want [%q]", k.recorded, want)
	}
	res, err := md.Cleanup(context.Background(), run, nodeID, nil, Hooks{})
	if err != nil || len(res.Deleted) != 1 {
		t.Fatalf("cleanup after the failed publish: %+v, %v", res, err)
	}
	if left, _ := run.Artifacts(nodeID); len(left) != 0 {
		t.Errorf("artifacts left after cleanup: %+v", left)
	}
}
