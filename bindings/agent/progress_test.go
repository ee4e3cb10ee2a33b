package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

// With lightsout's own agent, agent.wait_command turns the heartbeats'
// deploy_progress into "writing image" log lines of the run (what
// `lightsout deploy` shows). The image download is held at half until the
// run polled the agent after a progress heartbeat, so the line must appear.
func TestWaitCommandLogsDeployProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newEnv(t, ctx)
	tok := e.do(t, `return require("agent").token()`)[0].(string)

	img := make([]byte, 4<<20)
	for i := range img {
		img[i] = byte(i * 7)
	}
	sum := sha256.Sum256(img)
	release := make(chan struct{})
	var once sync.Once
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(img)))
		_, _ = w.Write(img[:len(img)/2])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(img[len(img)/2:])
	}))
	defer files.Close()

	// the run reaches the agent through this proxy: a command-list poll
	// made after a progress heartbeat releases the download
	var agentAddr atomic.Pointer[url.URL]
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/commands") {
			if hb, ok := e.api.Agent(nodeUUID); ok && hb.Progress != nil && hb.Progress.Written > 0 {
				once.Do(func() { close(release) })
			}
		}
		httputil.NewSingleHostReverseProxy(agentAddr.Load()).ServeHTTP(w, r)
	}))
	defer proxy.Close()

	a, err := deployagent.New(deployagent.Config{
		Params:       deployagent.Params{APIURLs: []string{e.api.URL()}, Token: tok},
		ListenAddr:   "127.0.0.1:0",
		AdvertiseURL: proxy.URL,
		Root:         t.TempDir(),
		MACs:         []string{nodeMAC},
		Disks: func() ([]deployagent.Disk, error) {
			return []deployagent.Disk{{Name: "/dev/vda", Path: e.disk, Size: 1 << 20 * 8}}, nil
		},
		HeartbeatInterval: time.Minute,
		ProgressInterval:  10 * time.Millisecond,
		Console:           &strings.Builder{},
		Sync:              func() {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	u, _ := url.Parse("http://" + a.Addr())
	agentAddr.Store(u)

	out := e.do(t, fmt.Sprintf(`
		local agent = require("agent")
		agent.wait_heartbeat(nil, { timeout = 30 })
		agent.command(nil, "standby.prepare_image", { image_info = {
			id = "img", urls = { %q }, disk_format = "raw", os_hash_algo = "sha256", os_hash_value = %q } }, { wait = false })
		local res = agent.wait_command(nil, "standby.prepare_image", { timeout = 30, interval = 0.05 })
		return res.command_status`, files.URL+"/img.raw", hex.EncodeToString(sum[:])))
	if out[0] != "SUCCEEDED" {
		t.Fatalf("prepare_image: %v", out)
	}
	var lines []string
	for _, ev := range e.run.Events {
		if msg, _ := ev.Data["msg"].(string); ev.Kind == "log" && strings.HasPrefix(msg, "writing image: ") {
			lines = append(lines, msg)
			f, _ := ev.Data["fields"].(map[string]any)
			if f["total"] != int64(len(img)) || f["written"].(int64) <= 0 {
				t.Errorf("progress fields = %v", f)
			}
		}
	}
	if len(lines) == 0 || !strings.Contains(lines[0], "% of 4 MB at ") {
		t.Fatalf("no progress line in the run's log: %v", lines)
	}
}
