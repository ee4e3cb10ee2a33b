package ramdisk_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime/agentapi"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

const (
	nodeUUID = "6e3a2b10-8c5e-4d2a-9f11-2b7f5d9c0a01"
	nodeMAC  = "52:54:00:6e:3a:01"
)

// oneNode is an agentapi.Nodes with a single node.
type oneNode struct{}

func (oneNode) NodeByUUID(_ context.Context, u string) (agentapi.Node, error) {
	if u == nodeUUID {
		return agentapi.Node{UUID: nodeUUID, Name: "gen10-0", Driver: "ilo"}, nil
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

func (oneNode) NodeByMACs(_ context.Context, macs []string) (agentapi.Node, error) {
	for _, m := range macs {
		if m == nodeMAC {
			return agentapi.Node{UUID: nodeUUID, Name: "gen10-0", Driver: "ilo"}, nil
		}
	}
	return agentapi.Node{}, agentapi.ErrNotFound
}

// callback starts the agent callback API on 127.0.0.1.
func callback(t testing.TB) *agentapi.Server {
	t.Helper()
	s := agentapi.New(oneNode{}, agentapi.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Close() })
	if err := s.Listen(ctx, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return s
}

// fileServer serves named byte slices on 127.0.0.1 and counts requests.
type fileServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

func newFileServer(t testing.TB) *fileServer {
	fs := &fileServer{files: map[string][]byte{}, hits: map[string]int{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		data, ok := fs.files[r.URL.Path]
		fs.hits[r.URL.Path]++
		fs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) put(name string, data []byte) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files["/"+name] = data
	// a query string like a Swift temp URL's, which must never be logged
	return fs.URL + "/" + name + "?temp_url_sig=deadbeefsecret&temp_url_expires=9999999999"
}

// makeISO builds a BIOS boot ISO whose isolinux.cfg APPEND line is appendLine.
func makeISO(t *testing.T, appendLine string) []byte {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"vmlinuz", "initrd", "isolinux.bin", "ldlinux.c32"} {
		if err := os.WriteFile(filepath.Join(dir, n), bytes.Repeat([]byte(n), 512), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "deploy.iso")
	err := image.WriteISO(context.Background(), out, image.ISOOptions{
		Kernel: filepath.Join(dir, "vmlinuz"), Ramdisk: filepath.Join(dir, "initrd"),
		Append: appendLine, BIOSOnly: true,
		Isolinux: filepath.Join(dir, "isolinux.bin"), Ldlinux: filepath.Join(dir, "ldlinux.c32"),
		TempDir: dir,
	})
	if err != nil {
		t.Fatalf("WriteISO: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func makeFloppy(t *testing.T, params map[string]string) []byte {
	t.Helper()
	img, err := image.BuildFloppy(context.Background(), params, image.FloppyOptions{})
	if err != nil {
		t.Fatalf("BuildFloppy: %v", err)
	}
	return img
}

// newDisk creates a sparse virtual disk of size bytes.
func newDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// booted is a ramdisk booted from virtual media in the background.
type booted struct {
	rd     *ramdisk.Ramdisk
	done   chan struct{} // closed when Boot returned
	err    error         // Boot's result, valid after done
	cancel context.CancelFunc
}

// stop cancels the boot (power off) and waits for Boot to return.
func (b *booted) stop(t *testing.T) error {
	t.Helper()
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-time.After(10 * time.Second):
		t.Fatal("Boot did not return after its context was cancelled")
		return nil
	}
}

// boot starts rd.Boot(ev) in a goroutine.
func boot(t *testing.T, rd *ramdisk.Ramdisk, ev ramdisk.BootEvent) *booted {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &booted{rd: rd, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(b.done)
		b.err = rd.Boot(ctx, ev)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// waitAgent waits for the node's heartbeat and returns the agent URL.
func waitAgent(t *testing.T, s *agentapi.Server, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hb, err := s.WaitHeartbeat(ctx, nodeUUID, time.Time{})
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	return hb.AgentURL
}

// runWait runs a command and waits for it through GET /v1/commands/<id>?wait=true.
func runWait(t *testing.T, c *agent.Client, url, tok, name string, params map[string]any) agent.CommandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Run(ctx, url, tok, name, params, false)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.Done() {
		return res
	}
	res, err = c.Get(ctx, url, tok, res.ID, true)
	if err != nil {
		t.Fatalf("%s: wait: %v", name, err)
	}
	return res
}

func errorType(res agent.CommandResult) string {
	m, _ := res.CommandError.(map[string]any)
	s, _ := m["type"].(string)
	return s
}

func diskHas(t *testing.T, path string, want []byte, size int64) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != size {
		t.Fatalf("disk size changed: %d, want %d", len(got), size)
	}
	if !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("disk does not start with the image (md5 %s, want %s)", md5hex(got[:len(want)]), md5hex(want))
	}
}

func diskZero(t *testing.T, path string, size int64) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != size {
		t.Fatalf("disk size changed: %d, want %d", len(got), size)
	}
	if !isZero(got) {
		t.Fatal("disk not zeroed")
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func sha512hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}
