package agent_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/module/moduletest"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

const (
	nodeUUID = "0d1e2f30-4152-4637-8899-aabbccddeeff"
	nodeMAC  = "52:54:00:0d:1e:2f"
)

type oneNode struct{}

func (oneNode) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == nodeUUID {
		return agentapi.Node{UUID: nodeUUID}, nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (oneNode) NodeByMACs(_ context.Context, macs []string) (agentapi.Node, error) {
	for _, m := range macs {
		if m == nodeMAC {
			return agentapi.Node{UUID: nodeUUID}, nil
		}
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

type env struct {
	api  *agentapi.Server
	run  *moduletest.Run
	L    *lua.LState
	disk string
	img  []byte
	url  string // image URL (with a temp-URL-like secret query)
}

func newEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	api := agentapi.New(oneNode{}, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	sctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); api.Close() })
	if err := api.Listen(sctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 256<<10)
	if _, err := rand.Read(img); err != nil {
		t.Fatal(err)
	}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/img.raw" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(img)
	}))
	t.Cleanup(files.Close)
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	run := moduletest.NewRun(ctx, &moduletest.Node{ID: nodeUUID, NodeName: "gen10-0", Drv: "ilo"})
	L := moduletest.Open(run, agent.NewModule(api))
	t.Cleanup(L.Close)
	return &env{api: api, run: run, L: L, disk: disk, img: img, url: files.URL + "/img.raw?temp_url_sig=s3cr3tsig&temp_url_expires=1"}
}

// startAgent boots an emulated IPA agent with token.
func (e *env) startAgent(t *testing.T, token string, f ramdisk.Failures) *ramdisk.Agent {
	t.Helper()
	a, err := ramdisk.StartAgent(context.Background(), ramdisk.AgentConfig{Server: "gen10-0", APIURLs: []string{e.api.URL()},
		Token: token, MACs: []string{nodeMAC}, DiskPath: e.disk, Failures: f,
		HeartbeatInterval: 100 * time.Millisecond, LookupInterval: 10 * time.Millisecond, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a
}

// do runs a Lua chunk and returns its results converted to Go.
func (e *env) do(t *testing.T, src string) []any {
	t.Helper()
	top := e.L.GetTop()
	if err := e.L.DoString(src); err != nil {
		t.Fatalf("lua: %v\n%s", err, src)
	}
	var out []any
	for i := top + 1; i <= e.L.GetTop(); i++ {
		out = append(out, fromLua(e.L.Get(i)))
	}
	e.L.SetTop(top)
	return out
}

func fromLua(v lua.LValue) any {
	if t, ok := v.(*lua.LTable); ok {
		m := map[string]any{}
		t.ForEach(func(k, val lua.LValue) { m[k.String()] = fromLua(val) })
		return m
	}
	if v == lua.LNil {
		return nil
	}
	return v.String()
}

// noSecrets fails when an event mentions a secret.
func (e *env) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	for _, ev := range e.run.Events {
		data, _ := json.Marshal(ev.Data)
		for _, s := range secrets {
			if s != "" && (strings.Contains(string(data), s) || strings.Contains(ev.Name, s)) {
				t.Fatalf("event %s %s leaks a secret: %s", ev.Kind, ev.Name, data)
			}
		}
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestLuaDeployCycle drives the whole agent flow from Lua against the
// callback server and the emulated ramdisk.
func TestLuaDeployCycle(t *testing.T) {
	e := newEnv(t, context.Background())
	e.setImage()
	e.run.Cfg["deploy.external_callback_url"] = "http://192.0.2.1:6385/"
	out := e.do(t, `local agent = require("agent"); return agent.token(), agent.callback_url(), agent.info()`)
	tok := out[0].(string)
	if len(tok) < 32 || out[1] != "http://192.0.2.1:6385" || out[2] != nil {
		t.Fatalf("token %q, callback_url %v, info %v", tok, out[1], out[2])
	}
	if got, _ := e.api.Token(nodeUUID); got != tok {
		t.Fatal("token not registered with the callback server")
	}
	if e.run.Redact("x"+tok+"y") != "x******y" {
		t.Fatal("token not registered as a run secret")
	}
	a := e.startAgent(t, tok, ramdisk.Failures{})

	out = e.do(t, `
		local agent = require("agent")
		local hb = agent.wait_heartbeat(nil, { timeout = 20 })
		local info = agent.info()
		agent.command(nil, "standby.prepare_image", { image_info = {
			id = "img", urls = { IMG_URL }, checksum = IMG_MD5, disk_format = "raw" } }, { wait = false })
		local res = agent.wait_command(nil, "standby.prepare_image", { timeout = 30, interval = 0.05 })
		local steps = agent.command(nil, "clean.get_clean_steps", { node = { uuid = "`+nodeUUID+`" }, ports = {} })
		local prio = {}
		for _, s in ipairs(steps.command_result.clean_steps.GenericHardwareManager) do prio[s.step] = s.priority end
		local list = agent.commands()
		return hb.agent_url, info.count >= 1, res.command_status, res.command_name, prio.erase_devices, prio.erase_devices_metadata, #list
	`)
	if out[0] != a.URL() || out[1] != "true" || out[2] != "SUCCEEDED" || out[3] != "prepare_image" ||
		out[4] != "10" || out[5] != "99" || out[6] != "2" {
		t.Fatalf("lua results %v", out)
	}
	disk, _ := os.ReadFile(e.disk)
	if !bytes.Equal(disk[:len(e.img)], e.img) {
		t.Fatal("disk does not hold the image")
	}
	out = e.do(t, `
		local agent = require("agent")
		agent.command(nil, "clean.execute_clean_step", { step = { step = "erase_devices", interface = "deploy", priority = 10 } }, { wait = false })
		return agent.wait_command(nil, "clean.execute_clean_step", { interval = 0.05 }).command_status
	`)
	if out[0] != "SUCCEEDED" {
		t.Fatalf("erase_devices: %v", out)
	}
	disk, _ = os.ReadFile(e.disk)
	if !bytes.Equal(disk, make([]byte, 1<<20)) {
		t.Fatal("disk not zeroed")
	}
	e.do(t, `require("agent").forget()`)
	if _, ok := e.api.Token(nodeUUID); ok {
		t.Fatal("forget left the token registered")
	}
	calls := strings.Join(e.run.Calls(), ",")
	for _, want := range []string{"agent.token", "agent.wait_heartbeat", "agent.command", "agent.wait_command", "agent.commands", "agent.forget"} {
		if !strings.Contains(calls, want) {
			t.Errorf("call %s not recorded: %s", want, calls)
		}
	}
	e.noSecrets(t, tok, "s3cr3tsig")
}

// setImage sets the IMG_URL and IMG_MD5 globals.
func (e *env) setImage() {
	e.L.SetGlobal("IMG_URL", lua.LString(e.url))
	e.L.SetGlobal("IMG_MD5", lua.LString(md5hex(e.img)))
}

// TestLuaErrors checks error codes raised to scripts.
func TestLuaErrors(t *testing.T) {
	e := newEnv(t, context.Background())
	e.setImage()
	tok := e.do(t, `return require("agent").token()`)[0].(string)
	tests := []struct {
		name, src, code, msg string
	}{
		{"command before heartbeat", `agent.command(nil, "clean.get_clean_steps")`, "not_found", "no agent heartbeat yet"},
		{"node of wrong type", `agent.command(42, "clean.get_clean_steps")`, "invalid_argument", "node"},
		{"name without extension", `agent.command(nil, "prepare_image")`, "invalid_argument", "<extension>.<command>"},
		{"params list", `agent.command(nil, "a.b", {1, 2})`, "invalid_argument", "params"},
		{"negative timeout", `agent.wait_heartbeat(nil, { timeout = -1 })`, "invalid_argument", "opts.timeout"},
		{"wait bool", `agent.command(nil, "a.b", {}, { wait = "yes" })`, "invalid_argument", "opts.wait"},
		{"heartbeat of another node", `agent.wait_heartbeat("no-such-node", { timeout = 1 })`, "forbidden", "may act only on its run's node"},
		{"heartbeat timeout", `agent.wait_heartbeat(nil, { timeout = 0.05 })`, "timeout", "no agent heartbeat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := e.do(t, `local agent = require("agent"); local ok, err = pcall(function() `+tc.src+` end); return ok, err.code, tostring(err)`)
			if out[0] != "false" || out[1] != tc.code || !strings.Contains(out[2].(string), tc.msg) {
				t.Fatalf("got %v, want code %s with %q", out, tc.code, tc.msg)
			}
		})
	}
	e.startAgent(t, tok, ramdisk.Failures{ChecksumMismatch: true})
	e.do(t, `require("agent").wait_heartbeat(nil, { timeout = 20 })`)
	tests = []struct {
		name, src, code, msg string
	}{
		{"unknown extension", `agent.command(nil, "frob.nicate")`, "not_supported", "not found"},
		{"bad params", `agent.command(nil, "standby.prepare_image", {})`, "invalid_argument", "image_info"},
		{"never ran", `agent.wait_command(nil, "standby.prepare_image", { timeout = 5 })`, "not_found", "has not run"},
		{"checksum mismatch waited", `agent.command(nil, "standby.prepare_image", { image_info = { id = "i", urls = { IMG_URL }, checksum = IMG_MD5 } })`, "error", "ImageChecksumError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := e.do(t, `local agent = require("agent"); local ok, err = pcall(function() `+tc.src+` end); return ok, err.code, tostring(err)`)
			if out[0] != "false" || out[1] != tc.code || !strings.Contains(out[2].(string), tc.msg) {
				t.Fatalf("got %v, want code %s with %q", out, tc.code, tc.msg)
			}
			if strings.Contains(out[2].(string), tok) || strings.Contains(out[2].(string), "s3cr3tsig") {
				t.Fatalf("error leaks a secret: %s", out[2])
			}
		})
	}
	// check = false returns the failed result instead of raising.
	out := e.do(t, `local agent = require("agent")
		local r = agent.command(nil, "standby.prepare_image", { image_info = { id = "i", urls = { IMG_URL }, checksum = IMG_MD5 } }, { check = false })
		local w = agent.wait_command(nil, "prepare_image", { check = false })
		return r.command_status, r.command_error.type, w.id == r.id`)
	if out[0] != "FAILED" || out[1] != "ImageChecksumError" || out[2] != "true" {
		t.Fatalf("check=false: %v", out)
	}
	e.noSecrets(t, tok, "s3cr3tsig")
}

// TestWaitHeartbeatCancelled: cancelling the run ends a blocked
// wait_heartbeat with code "cancelled", without leaking goroutines.
func TestWaitHeartbeatCancelled(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnv(t, ctx)
	e.do(t, `require("agent").token()`)
	type result struct{ code, msg string }
	done := make(chan result, 1)
	go func() {
		// The run context is cancelled mid-call; gopher-lua then also
		// refuses to continue the chunk, so the error comes back from DoString.
		err := e.L.DoString(`local ok, err = pcall(require("agent").wait_heartbeat, nil, { timeout = 600 }); CODE = err and err.code`)
		code := ""
		if v, ok := e.L.GetGlobal("CODE").(lua.LString); ok {
			code = string(v)
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		done <- result{code, msg}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.api.Waiters(nodeUUID) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("wait_heartbeat never blocked")
		}
		runtime.Gosched()
	}
	cancel()
	select {
	case r := <-done:
		t.Logf("after cancel: code %q, err %q", r.code, r.msg)
		if r.code != "cancelled" && !strings.Contains(r.msg, "cancel") {
			t.Fatalf("after cancel: code %q, err %q", r.code, r.msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait_heartbeat did not return after the run was cancelled")
	}
	if w := e.api.Waiters(nodeUUID); w != 0 {
		t.Fatalf("%d waiters left", w)
	}
	e.api.Close()
	for runtime.NumGoroutine() > before+2 { // httptest servers close in Cleanup
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
	var sawCancelled bool
	for _, ev := range e.run.Events {
		if ev.Name == "agent.wait_heartbeat" && ev.Data["outcome"] == "cancelled" {
			sawCancelled = true
		}
	}
	if !sawCancelled {
		t.Fatalf("no cancelled wait_heartbeat event: %+v", e.run.Events)
	}
}

// TestSilentAgentTimesOut: an agent that takes a request and never
// answers (its machine powered off before the answer left it; on a real
// network no reset follows) fails agent.command without wait after
// [agent] command_timeout, and each poll of agent.wait_command is bounded
// the same way, instead of waiting for the whole run.
func TestSilentAgentTimesOut(t *testing.T) {
	e := newEnv(t, context.Background())
	e.run.Cfg["agent.command_timeout"] = "0.3"
	tok := e.do(t, `return require("agent").token()`)[0].(string)
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hold the request: no answer, no reset
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); silent.Close() })
	body, _ := json.Marshal(map[string]string{"callback_url": silent.URL, "agent_token": tok, "agent_version": "10.0.0"})
	resp, err := http.Post(e.api.URL()+"/v1/heartbeat/"+nodeUUID, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("heartbeat: HTTP %d", resp.StatusCode)
	}
	for _, src := range []string{
		`agent.command(nil, "standby.power_off", {}, { wait = false })`,
		`agent.wait_command(nil, "standby.prepare_image", { timeout = 1, interval = 0.05 })`,
	} {
		start := time.Now()
		out := e.do(t, `local agent = require("agent"); local ok, err = pcall(function() `+src+` end); return ok, err.code, tostring(err)`)
		if took := time.Since(start); out[0] != "false" || took > 5*time.Second {
			t.Fatalf("%s: %v after %s, want a failure within the timeouts", src, out, took)
		}
		if out[1] != "timeout" {
			t.Errorf("%s: code %v (%v), want timeout", src, out[1], out[2])
		}
	}
}
