package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// memNodes is an in-memory Nodes: UUID -> node, MAC -> UUIDs.
type memNodes struct {
	nodes map[string]Node
	macs  map[string][]string
}

func (m memNodes) NodeByUUID(_ context.Context, uuid string) (Node, error) {
	for _, n := range m.nodes {
		if n.UUID == uuid || n.Name == uuid {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %s: %w", uuid, ErrNotFound)
}

func (m memNodes) NodeByMACs(_ context.Context, macs []string) (Node, error) {
	found := map[string]bool{}
	for _, mac := range macs {
		for _, u := range m.macs[mac] {
			found[u] = true
		}
	}
	if len(found) != 1 {
		return Node{}, fmt.Errorf("%d nodes for %v: %w", len(found), macs, ErrNotFound)
	}
	for u := range found {
		return m.nodes[u], nil
	}
	return Node{}, ErrNotFound
}

const (
	uuidA = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	uuidB = "2be26c0b-03f2-4d2e-ae87-c02d7f33c456"
	macA  = "52:54:00:12:34:56"
	macB  = "52:54:00:ab:cd:ef"
)

func testNodes() memNodes {
	return memNodes{
		nodes: map[string]Node{
			uuidA: {UUID: uuidA, Name: "gen10-a", Driver: "ilo",
				Properties:         map[string]any{"cpus": 8},
				InstanceInfo:       map[string]any{"image_source": "http://127.0.0.1/img.raw", "configdrive": "H4sI..."},
				DriverInternalInfo: map[string]any{"agent_secret_token": "leak", "is_whole_disk_image": true}},
			uuidB: {UUID: uuidB, Name: "gen8-b", Driver: "agent_ilo"},
		},
		macs: map[string][]string{macA: {uuidA}, macB: {uuidB}},
	}
}

func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := New(testNodes(), opts)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, method, url string, body any, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func TestRootAndVersions(t *testing.T) {
	_, ts := newTestServer(t, Options{})
	code, hdr, body := do(t, "GET", ts.URL+"/", nil, nil)
	if code != 200 {
		t.Fatalf("GET / = %d %s", code, body)
	}
	var root struct {
		DefaultVersion struct{ Version string } `json:"default_version"`
	}
	if err := json.Unmarshal(body, &root); err != nil {
		t.Fatal(err)
	}
	// IPA splits default_version.version and compares it with 1.62 to
	// decide whether to send agent_token.
	if compareVersion(root.DefaultVersion.Version, "1.62") < 0 {
		t.Errorf("default_version.version = %q, IPA would not send agent_token", root.DefaultVersion.Version)
	}
	if hdr.Get("X-OpenStack-Ironic-API-Maximum-Version") != APIVersion || hdr.Get("X-OpenStack-Ironic-API-Minimum-Version") != APIMinVersion {
		t.Errorf("version headers = %v", hdr)
	}
	for _, p := range []string{"/v1", "/v1/"} {
		if code, _, body := do(t, "GET", ts.URL+p, nil, nil); code != 200 || !strings.Contains(string(body), `"id":"v1"`) {
			t.Errorf("GET %s = %d %s", p, code, body)
		}
	}
	tests := []struct {
		ver  string
		want int
	}{{"1.62", 200}, {"latest", 200}, {"1.999", 406}, {"0.5", 406}, {"bogus", 406}}
	for _, tc := range tests {
		code, hdr, _ := do(t, "GET", ts.URL+"/v1", nil, map[string]string{"X-OpenStack-Ironic-API-Version": tc.ver})
		if code != tc.want {
			t.Errorf("version %s: status %d, want %d", tc.ver, code, tc.want)
		}
		if code == 200 && tc.ver != "latest" && hdr.Get("X-OpenStack-Ironic-API-Version") != tc.ver {
			t.Errorf("version %s echoed as %q", tc.ver, hdr.Get("X-OpenStack-Ironic-API-Version"))
		}
	}
}

func TestLookup(t *testing.T) {
	s, ts := newTestServer(t, Options{HeartbeatTimeout: 120 * time.Second})
	tok, err := s.NewToken(uuidA)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		want        int
		wantUUID    string
	}{
		{"by MAC", "addresses=" + macA, 200, uuidA},
		{"upper-case dashed MAC and junk", "addresses=junk,52-54-00-12-34-56", 200, uuidA},
		{"by node_uuid", "node_uuid=" + uuidA + "&addresses=" + macB, 200, uuidA},
		{"node without token (restricted lookup)", "addresses=" + macB, 404, ""},
		{"unknown MAC", "addresses=52:54:00:00:00:01", 404, ""},
		{"no valid address", "addresses=zz", 400, ""},
		{"nothing", "", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, "GET", ts.URL+"/v1/lookup?"+tc.query, nil, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if strings.Contains(string(body), tok) || strings.Contains(string(body), "leak") {
				t.Fatalf("lookup answer leaks a token: %s", body)
			}
			if code != 200 {
				var f map[string]any
				if err := json.Unmarshal(body, &f); err != nil || f["error_message"] == nil {
					t.Fatalf("error body not Ironic-shaped: %s", body)
				}
				return
			}
			var got struct {
				Node struct {
					UUID               string         `json:"uuid"`
					Properties         map[string]any `json:"properties"`
					InstanceInfo       map[string]any `json:"instance_info"`
					DriverInternalInfo map[string]any `json:"driver_internal_info"`
				} `json:"node"`
				Config map[string]any `json:"config"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Node.UUID != tc.wantUUID || got.Node.Properties["cpus"] != float64(8) {
				t.Errorf("node = %+v", got.Node)
			}
			if got.Node.InstanceInfo["configdrive"] != "******" || got.Node.DriverInternalInfo["agent_secret_token"] != "******" {
				t.Errorf("secrets not masked: %+v", got.Node)
			}
			if got.Config["heartbeat_timeout"] != float64(120) || got.Config["agent_token_required"] != true || got.Config["agent_token"] != "******" {
				t.Errorf("config = %v", got.Config)
			}
		})
	}
}

func TestLegacyLookup(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if _, err := s.NewToken(uuidA); err != nil {
		t.Fatal(err)
	}
	inv := map[string]any{"interfaces": []any{
		map[string]any{"name": "eth0", "mac_address": "not-a-mac"},
		map[string]any{"name": "eth1", "mac_address": strings.ToUpper(macA)},
	}}
	tests := []struct {
		name, path string
		body       any
		want       int
		msg        string
	}{
		{"version 2", "/v1/drivers/agent_ilo/vendor_passthru/lookup", map[string]any{"version": "2", "inventory": inv}, 200, ""},
		{"method query", "/v1/drivers/agent_ilo/vendor_passthru?method=lookup", map[string]any{"version": "2", "inventory": inv}, 200, ""},
		{"missing version", "/v1/drivers/agent_ilo/vendor_passthru/lookup", map[string]any{"inventory": inv}, 400, "Missing parameter version"},
		{"version 1", "/v1/drivers/agent_ilo/vendor_passthru/lookup", map[string]any{"version": "1", "inventory": inv}, 400, "Unknown lookup payload version: 1"},
		{"no interfaces", "/v1/drivers/agent_ilo/vendor_passthru/lookup", map[string]any{"version": "2"}, 400, "addresses"},
		{"bad json", "/v1/drivers/agent_ilo/vendor_passthru/lookup", "{", 400, "Invalid lookup body"},
		{"other method", "/v1/drivers/agent_ilo/vendor_passthru/frob", map[string]any{}, 400, "only lookup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, "POST", ts.URL+tc.path, tc.body, nil)
			if code != tc.want || !strings.Contains(string(body), tc.msg) {
				t.Fatalf("status %d body %s, want %d containing %q", code, body, tc.want, tc.msg)
			}
			if code == 200 {
				var got map[string]any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				node, _ := got["node"].(map[string]any)
				if got["heartbeat_timeout"] != float64(300) || node["uuid"] != uuidA {
					t.Errorf("legacy lookup answer = %s", body)
				}
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []Heartbeat
	)
	s, ts := newTestServer(t, Options{OnHeartbeat: func(_ context.Context, hb Heartbeat) {
		mu.Lock()
		seen = append(seen, hb)
		mu.Unlock()
	}})
	tok, err := s.NewToken(uuidA)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) < 32 {
		t.Fatalf("token %d chars; IPA only trusts tokens of at least 32", len(tok))
	}
	wrong := strings.Repeat("0", len(tok))
	tests := []struct {
		name, path string
		body       any
		want       int
	}{
		{"missing token", "/v1/heartbeat/" + uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999"}, 401},
		{"wrong token", "/v1/heartbeat/" + uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": wrong}, 403},
		{"short wrong token", "/v1/heartbeat/" + uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": "x"}, 403},
		{"token of no node", "/v1/heartbeat/" + uuidB, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok}, 404},
		{"missing callback_url", "/v1/heartbeat/" + uuidA, map[string]any{"agent_token": tok}, 400},
		{"bad callback_url", "/v1/heartbeat/" + uuidA, map[string]any{"callback_url": "ftp://x", "agent_token": tok}, 400},
		{"legacy without token", "/v1/nodes/" + uuidA + "/vendor_passthru/heartbeat", map[string]any{"agent_url": "http://127.0.0.1:9998"}, 401},
		{"legacy without url", "/v1/nodes/" + uuidA + "/vendor_passthru/heartbeat", map[string]any{"agent_token": tok}, 400},
		{"ok", "/v1/heartbeat/" + uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999/", "agent_token": tok, "agent_version": "9.1.0"}, 202},
		{"ok by name", "/v1/heartbeat/gen10-a", map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok, "agent_version": "9.1.0"}, 202},
		{"legacy ok", "/v1/nodes/" + uuidA + "/vendor_passthru/heartbeat", map[string]any{"agent_url": "http://127.0.0.1:9998", "agent_token": tok}, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := do(t, "POST", ts.URL+tc.path, tc.body, nil)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if strings.Contains(string(body), tok) || strings.Contains(string(body), wrong) {
				t.Fatalf("response echoes a token: %s", body)
			}
		})
	}
	hb, ok := s.Agent(uuidA)
	if !ok || hb.AgentURL != "http://127.0.0.1:9998" || hb.Count != 3 {
		t.Fatalf("Agent = %+v %v; want the legacy heartbeat's URL after 3 accepted heartbeats", hb, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0].AgentURL != "http://127.0.0.1:9999" || seen[0].AgentVersion != "9.1.0" {
		t.Fatalf("OnHeartbeat saw %+v", seen)
	}
	// A new token invalidates the old one and the recorded agent.
	tok2, _ := s.NewToken(uuidA)
	if _, ok := s.Agent(uuidA); ok {
		t.Error("agent still recorded after a new token")
	}
	if code, _, _ := do(t, "POST", ts.URL+"/v1/heartbeat/"+uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok}, nil); code != 403 {
		t.Errorf("old token after NewToken: %d, want 403", code)
	}
	s.Forget(uuidA)
	if code, _, _ := do(t, "POST", ts.URL+"/v1/heartbeat/"+uuidA, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok2}, nil); code != 404 {
		t.Errorf("heartbeat after Forget: %d, want 404", code)
	}
}

func heartbeatNow(t *testing.T, url, node, tok string) {
	t.Helper()
	if code, _, body := do(t, "POST", url+"/v1/heartbeat/"+node, map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok}, nil); code != 202 {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
}

func TestWaitHeartbeat(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	if _, err := s.WaitHeartbeat(context.Background(), uuidA, time.Time{}); !errors.Is(err, ErrNotExpected) {
		t.Fatalf("wait without token: %v", err)
	}
	tok, _ := s.NewToken(uuidA)
	got := make(chan error, 1)
	go func() {
		hb, err := s.WaitHeartbeat(context.Background(), uuidA, time.Time{})
		if err == nil && hb.AgentURL != "http://127.0.0.1:9999" {
			err = fmt.Errorf("heartbeat %+v", hb)
		}
		got <- err
	}()
	heartbeatNow(t, ts.URL, uuidA, tok)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitHeartbeat did not return after a heartbeat")
	}
	// Already heartbeated: returns at once; "after" the last one blocks.
	hb, err := s.WaitHeartbeat(context.Background(), uuidA, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.WaitHeartbeat(ctx, uuidA, hb.At); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a newer heartbeat: %v, want deadline", err)
	}
	// Forget wakes a waiter with ErrWithdrawn.
	go func() {
		_, err := s.WaitHeartbeat(context.Background(), uuidA, hb.At)
		got <- err
	}()
	waitFor(t, func() bool { return s.Waiters(uuidA) == 1 })
	s.Forget(uuidA)
	if err := <-got; !errors.Is(err, ErrWithdrawn) {
		t.Fatalf("after Forget: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		runtime.Gosched()
	}
}

func TestWaitHeartbeatCancelNoLeak(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	if _, err := s.NewToken(uuidA); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	const n = 50
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.WaitHeartbeat(ctx, uuidA, time.Time{})
			errs <- err
		}()
	}
	cancel()
	for range n {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait returned %v", err)
		}
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
	if w := s.Waiters(uuidA); w != 0 {
		t.Fatalf("%d waiters left after cancellation", w)
	}
}

func TestListenAndClose(t *testing.T) {
	s := New(testNodes(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(ctx, "127.0.0.1:0"); err == nil {
		t.Error("second Listen succeeded")
	}
	u := s.URL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("URL = %q", u)
	}
	if code, _, _ := do(t, "GET", u+"/v1", nil, nil); code != 200 {
		t.Fatalf("GET /v1 = %d", code)
	}
	cancel()
	waitFor(t, func() bool { return s.URL() == "" })
	if s.Close() != nil {
		t.Error("second Close failed")
	}
}

type mapConfig map[string]string

func (c mapConfig) Get(section, key string) (string, bool) {
	v, ok := c[section+"."+key]
	return v, ok
}

func TestConfigHelpers(t *testing.T) {
	cb := []struct {
		cfg  mapConfig
		want string
	}{
		{mapConfig{}, "http://127.0.0.1:6385"},
		{mapConfig{"conductor.api_url": "http://10.0.0.1:6385/"}, "http://10.0.0.1:6385"},
		{mapConfig{"conductor.api_url": "http://10.0.0.1:6385", "deploy.external_callback_url": "https://pub.example:443/"}, "https://pub.example:443"},
	}
	for _, tc := range cb {
		if got := CallbackURL(tc.cfg, "http://127.0.0.1:6385/"); got != tc.want {
			t.Errorf("CallbackURL(%v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
	la := []struct {
		cfg     mapConfig
		want    string
		wantErr string
	}{
		{mapConfig{}, "127.0.0.1:6385", ""},
		{mapConfig{"api.port": "0"}, "127.0.0.1:0", ""},
		{mapConfig{"api.port": "http"}, "", "[api] port"},
		{mapConfig{"api.host_ip": "my host"}, "", "[api] host_ip"},
	}
	for _, tc := range la {
		got, err := ListenAddr(tc.cfg)
		if got != tc.want || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ListenAddr(%v) = %q, %v", tc.cfg, got, err)
		}
	}
	if d, err := HeartbeatTimeout(mapConfig{"agent.heartbeat_timeout": "60"}); err != nil || d != time.Minute {
		t.Errorf("HeartbeatTimeout = %v %v", d, err)
	}
	if _, err := HeartbeatTimeout(mapConfig{"agent.heartbeat_timeout": "-1"}); err == nil {
		t.Error("negative heartbeat_timeout accepted")
	}
}

func FuzzHandlers(f *testing.F) {
	f.Add("/v1/drivers/agent_ilo/vendor_passthru/lookup", `{"version":"2","inventory":{"interfaces":[{"mac_address":"52:54:00:12:34:56"}]}}`)
	f.Add("/v1/heartbeat/"+uuidA, `{"callback_url":"http://127.0.0.1:1","agent_token":"x"}`)
	f.Add("/v1/nodes/"+uuidA+"/vendor_passthru/heartbeat", `{"agent_url":"http://[::1]:1"}`)
	s := New(testNodes(), Options{})
	s.Expect(uuidA, "fuzz-token-that-is-long-enough-000000")
	h := s.Handler()
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		req, err := http.NewRequest("POST", "http://127.0.0.1"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q -> %d", path, body, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "fuzz-token-that-is-long-enough") {
			t.Fatal("token echoed")
		}
	})
}

// The deploy_progress extension of lightsout's agent is recorded; IPA's
// heartbeats (without it) and malformed values leave Progress nil and are
// accepted all the same.
func TestHeartbeatDeployProgress(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	tok, err := s.NewToken(uuidA)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		progress any
		want     *DeployProgress
		pct      int
	}{
		{"IPA heartbeat", nil, nil, 0},
		{"progress", map[string]any{"written": 512 << 20, "total": 1 << 30, "rate": 100e6}, &DeployProgress{512 << 20, 1 << 30, 100e6}, 50},
		{"unknown total", map[string]any{"written": 10, "total": 0, "rate": 1}, &DeployProgress{10, 0, 1}, -1},
		{"negative numbers ignored", map[string]any{"written": -1, "total": 5, "rate": 1}, nil, 0},
	} {
		body := map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": tok, "agent_version": "lightsout-agent-1.0"}
		if tc.progress != nil {
			body["deploy_progress"] = tc.progress
		}
		if code, _, b := do(t, "POST", ts.URL+"/v1/heartbeat/"+uuidA, body, map[string]string{"X-OpenStack-Ironic-API-Version": "1.62"}); code != 202 {
			t.Fatalf("%s: status %d %s", tc.name, code, b)
		}
		hb, ok := s.Agent(uuidA)
		if !ok {
			t.Fatalf("%s: no heartbeat recorded", tc.name)
		}
		switch {
		case tc.want == nil && hb.Progress != nil:
			t.Errorf("%s: progress = %+v, want none", tc.name, *hb.Progress)
		case tc.want != nil && (hb.Progress == nil || *hb.Progress != *tc.want):
			t.Errorf("%s: progress = %+v, want %+v", tc.name, hb.Progress, *tc.want)
		case tc.want != nil && hb.Progress.Percent() != tc.pct:
			t.Errorf("%s: percent = %d, want %d", tc.name, hb.Progress.Percent(), tc.pct)
		}
	}
	// a deploy_progress that is not an object is ignored, the heartbeat accepted
	body := `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + tok + `","deploy_progress":"half"}`
	if code, _, _ := do(t, "POST", ts.URL+"/v1/heartbeat/"+uuidA, body, nil); code != 202 {
		t.Errorf("string deploy_progress: status %d, want 202", code)
	}
	if hb, _ := s.Agent(uuidA); hb.Progress != nil {
		t.Errorf("string deploy_progress recorded as %+v", *hb.Progress)
	}
}
