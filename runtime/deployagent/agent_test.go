package deployagent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/testenv"
)

const (
	nodeUUID = "7c0a3a4e-5b8f-4a53-9d5e-2f0c1a1b2c3d"
	nodeMAC  = "52:54:00:aa:bb:01"
	token    = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// oneNode is the conductor's node store: one node with one port.
type oneNode struct{ props map[string]any }

func (n oneNode) node() agentapi.Node {
	return agentapi.Node{UUID: nodeUUID, Name: "gen10-qemu", Properties: n.props}
}

func (n oneNode) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == nodeUUID {
		return n.node(), nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (n oneNode) NodeByMACs(_ context.Context, macs []string) (agentapi.Node, error) {
	for _, m := range macs {
		if m == nodeMAC {
			return n.node(), nil
		}
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

type env struct {
	api      *agentapi.Server
	agent    *deployagent.Agent
	agentURL string
	disk     string
	diskSize int64
	console  *testenv.SyncBuffer
	poweroff chan struct{}
	client   agent.Client
}

// start runs the REAL conductor-side callback API and the agent on
// 127.0.0.1, with a regular file as the machine's only disk (pre-filled
// with 0xEE so untouched bytes can be told), and waits for the first
// heartbeat.
func start(t *testing.T, ctx context.Context, diskSize int64) *env {
	t.Helper()
	e := &env{console: &testenv.SyncBuffer{}, poweroff: make(chan struct{}), diskSize: diskSize}
	e.api = agentapi.New(oneNode{props: map[string]any{"root_device": map[string]any{"name": "/dev/vda"}}},
		agentapi.Options{HeartbeatTimeout: 60 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err := e.api.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.api.Close() })
	e.api.Expect(nodeUUID, token)
	e.disk = t.TempDir() + "/vda"
	if err := os.WriteFile(e.disk, bytes.Repeat([]byte{0xEE}, int(diskSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	disks := []deployagent.Disk{
		{Name: "/dev/sdz", Path: "/nonexistent", Size: 100 << 30, ReadOnly: true},
		{Name: "/dev/vda", Path: e.disk, Size: diskSize, Model: "QEMU HARDDISK", Serial: "lightsout-1"},
	}
	a, err := deployagent.New(deployagent.Config{
		Params:            deployagent.Params{APIURLs: []string{e.api.URL()}, Token: token, AdvertiseHost: "127.0.0.1"},
		Root:              t.TempDir(),
		ListenAddr:        "127.0.0.1:0",
		ISCSIAddr:         "127.0.0.1",
		MACs:              []string{nodeMAC},
		Disks:             func() ([]deployagent.Disk, error) { return disks, nil },
		HeartbeatInterval: time.Minute, // progress and command ends force heartbeats
		ProgressInterval:  20 * time.Millisecond,
		PowerOff:          func(context.Context) error { close(e.poweroff); return nil },
		Sync:              func() {},
		Console:           e.console,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	e.agent = a
	hb, err := e.api.WaitHeartbeat(ctx, nodeUUID, time.Time{})
	if err != nil {
		t.Fatalf("no heartbeat: %v (agent: %s)", err, a.LastError())
	}
	if hb.AgentVersion != deployagent.Version || hb.Progress != nil {
		t.Errorf("first heartbeat = %+v", hb)
	}
	e.agentURL = hb.AgentURL
	return e
}

// gatedImage serves data, stopping after the first half until release is
// closed (so the test can watch progress heartbeats mid-write).
func gatedImage(t *testing.T, data []byte, release <-chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		half := len(data) / 2
		_, _ = w.Write(data[:half])
		w.(http.Flusher).Flush()
		if release != nil {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(data[half:])
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/images/disk.raw?temp_url_sig=secret"
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestLookupHeartbeatPrepareImageAgainstConductor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := start(t, ctx, 16<<20)
	if !strings.HasPrefix(e.agentURL, "http://127.0.0.1:") {
		t.Fatalf("callback_url = %q", e.agentURL)
	}
	img := randomBytes(6<<20 + 123)
	release := make(chan struct{})
	u := gatedImage(t, img, release)
	info := map[string]any{"id": "disk.raw", "urls": []any{u}, "disk_format": "raw",
		"os_hash_algo": "sha256", "os_hash_value": sha256hex(img)}
	res, err := e.client.Run(ctx, e.agentURL, token, "standby.prepare_image", map[string]any{"image_info": info}, false)
	if err != nil || res.CommandStatus != agent.StatusRunning {
		t.Fatalf("prepare_image: %+v %v", res, err)
	}
	// the conductor sees deploy_progress while the write is held at half
	var after time.Time
	for {
		hb, err := e.api.WaitHeartbeat(ctx, nodeUUID, after)
		if err != nil {
			t.Fatalf("waiting for a progress heartbeat: %v", err)
		}
		after = hb.At
		if p := hb.Progress; p != nil && p.Written > 0 {
			if p.Total != int64(len(img)) || p.Written > p.Total || p.Percent() < 0 {
				t.Fatalf("progress = %+v, want total %d", *p, len(img))
			}
			break
		}
	}
	close(release)
	done, err := e.client.Get(ctx, e.agentURL, token, res.ID, true)
	if err != nil || done.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("prepare_image ended %+v %v", done, err)
	}
	if r, _ := done.CommandResult.(map[string]any); r["result"] != "prepare_image: image (disk.raw) written to device /dev/vda" {
		t.Errorf("result = %v", done.CommandResult)
	}
	disk, _ := os.ReadFile(e.disk)
	if !bytes.Equal(disk[:len(img)], img) {
		t.Fatal("disk does not start with the image")
	}
	if !bytes.Equal(disk[len(img):], bytes.Repeat([]byte{0xEE}, len(disk)-len(img))) {
		t.Error("the disk was changed beyond the image")
	}
	// the command list as IPA shows it
	list, err := e.client.List(ctx, e.agentURL, token)
	if err != nil || len(list) != 1 || list[0].CommandName != "prepare_image" {
		t.Fatalf("commands = %+v %v", list, err)
	}
	// the heartbeat forced by the command's end carries no progress
	if hb, _ := e.api.WaitHeartbeat(ctx, nodeUUID, after); hb.Progress != nil && hb.Progress.Written < int64(len(img)) {
		t.Errorf("heartbeat after the write: %+v", *hb.Progress)
	}
	// power off: marker, then the injected power-off
	if _, err := e.client.Run(ctx, e.agentURL, token, "standby.power_off", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.poweroff:
	case <-ctx.Done():
		t.Fatal("power off not called")
	}
	con := e.console.String()
	for _, want := range []string{"LIGHTSOUT-AGENT-START uptime=", "LIGHTSOUT-AGENT-UP url=" + e.agentURL + " uptime=",
		"LIGHTSOUT-AGENT-WRITE 100% ", "LIGHTSOUT-AGENT-POWEROFF max_rss_mib="} {
		if !strings.Contains(con, want) {
			t.Errorf("console lacks %q:\n%s", want, con)
		}
	}
	if !strings.Contains(con, "% ") || strings.Contains(con, token) || strings.Contains(con, "secret") {
		t.Errorf("console:\n%s", con)
	}
}

func TestPrepareImageWrongChecksum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := start(t, ctx, 8<<20)
	img := randomBytes(1<<20 + 5)
	u := gatedImage(t, img, nil)
	info := map[string]any{"id": "bad", "urls": []any{u}, "checksum": strings.Repeat("0", 32)}
	res, err := e.client.Run(ctx, e.agentURL, token, "standby.prepare_image", map[string]any{"image_info": info}, true)
	if err != nil {
		t.Fatal(err)
	}
	msg := res.ErrorMessage()
	if res.CommandStatus != agent.StatusFailed || !strings.Contains(msg, "ImageChecksumError") ||
		!strings.Contains(msg, fmt.Sprintf("%d bytes were written", len(img))) || strings.Contains(msg, "secret") {
		t.Fatalf("result %s: %s", res.CommandStatus, msg)
	}
	disk, _ := os.ReadFile(e.disk)
	if !bytes.Equal(bytes.Repeat([]byte{0xEE}, len(disk)-len(img)), disk[len(img):]) {
		t.Error("disk changed beyond the reported bytes")
	}
}

func TestAgentAPITokenAndErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := start(t, ctx, 1<<20)
	if _, err := e.client.Run(ctx, e.agentURL, "wrong", "standby.sync", map[string]any{}, true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := e.client.Run(ctx, e.agentURL, "", "standby.sync", map[string]any{}, true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no token: %v", err)
	}
	res, err := e.client.Run(ctx, e.agentURL, token, "standby.sync", map[string]any{}, true)
	if err != nil || res.CommandStatus != agent.StatusSucceeded {
		t.Fatalf("sync: %+v %v", res, err)
	}
	if _, err := e.client.Run(ctx, e.agentURL, token, "nosuch.cmd", map[string]any{}, true); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown extension: %v", err)
	}
	if _, err := e.client.Run(ctx, e.agentURL, token, "standby.nosuch", map[string]any{}, true); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := e.client.Run(ctx, e.agentURL, token, "standby.prepare_image", map[string]any{"image_info": map[string]any{"id": "x"}}, true); err == nil || !strings.Contains(err.Error(), "urls") {
		t.Errorf("bad image_info: %v", err)
	}
	hw, err := e.client.Run(ctx, e.agentURL, token, "poll.get_hardware_info", map[string]any{}, true)
	if err != nil {
		t.Fatal(err)
	}
	disks, _ := hw.CommandResult.(map[string]any)["disks"].([]any)
	if len(disks) != 2 || disks[1].(map[string]any)["serial"] != "lightsout-1" {
		t.Errorf("inventory disks = %v", disks)
	}
	steps, err := e.client.Run(ctx, e.agentURL, token, "clean.get_clean_steps", map[string]any{}, true)
	if err != nil || !strings.Contains(fmt.Sprint(steps.CommandResult), "erase_devices_metadata") {
		t.Errorf("clean steps: %+v %v", steps, err)
	}
	ib, err := e.client.Run(ctx, e.agentURL, token, "image.install_bootloader", map[string]any{}, true)
	if err != nil || ib.CommandStatus != agent.StatusFailed || !strings.Contains(ib.ErrorMessage(), "root_uuid is required") {
		t.Errorf("install_bootloader: %+v %v", ib, err)
	}
}
