package webstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newServer(t *testing.T) (*Server, *clock) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "published")
	key, err := LoadOrCreateKey(filepath.Join(filepath.Dir(dir), "webstore.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(dir, key, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.t.Store(time.Now().UnixNano())
	s.Now = c.now
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

func get(t *testing.T, method, u string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServe(t *testing.T) {
	s, clk := newServer(t)
	data := make([]byte, 70_000)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "boot.iso")
	os.WriteFile(src, data, 0o644)
	u, err := s.Publish(context.Background(), src, "boot-1.iso", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, s.URL()+"/boot-1.iso?temp_url_sig=") || !strings.Contains(u, "&temp_url_expires=") {
		t.Fatalf("url %s", u)
	}
	bare := s.URL() + "/boot-1.iso"
	badSig := strings.Replace(u, "temp_url_sig=", "temp_url_sig=f", 1)
	badSig = badSig[:strings.Index(badSig, "&")-1] + badSig[strings.Index(badSig, "&"):]
	other, _ := s.SignURL("boot-2.iso", clk.now().Add(time.Minute))
	tests := []struct {
		name     string
		method   string
		url      string
		hdr      []string
		code     int
		body     string // substring; for 200/206 the exact data is checked
		from, to int
	}{
		{"GET", "GET", u, nil, 200, "", 0, len(data)},
		{"HEAD", "HEAD", u, nil, 200, "", 0, 0},
		{"range", "GET", u, []string{"Range", "bytes=100-199"}, 206, "", 100, 200},
		{"suffix range", "GET", u, []string{"Range", "bytes=-10"}, 206, "", len(data) - 10, len(data)},
		{"no signature", "GET", bare, nil, 401, "missing temp_url_sig", 0, 0},
		{"bad signature", "GET", badSig, nil, 403, "signature does not match", 0, 0},
		{"signature of another name", "GET", strings.Replace(other, "boot-2.iso", "boot-1.iso", 1), nil, 403, "signature does not match", 0, 0},
		{"unknown file", "GET", other, nil, 404, "", 0, 0},
		{"POST", "POST", u, nil, 405, "", 0, 0},
		{"traversal", "GET", s.URL() + "/..%2fwebstore.key?temp_url_sig=x&temp_url_expires=1", nil, 404, "", 0, 0},
		{"meta dir", "GET", s.URL() + "/.meta/boot-1.iso", nil, 404, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := get(t, tt.method, tt.url, tt.hdr...)
			if code != tt.code {
				t.Fatalf("status %d want %d (%s)", code, tt.code, body)
			}
			if tt.body != "" && !strings.Contains(body, tt.body) {
				t.Fatalf("body %q lacks %q", body, tt.body)
			}
			if code == 200 || code == 206 {
				if body != string(data[tt.from:tt.to]) {
					t.Fatalf("body: %d bytes, want [%d:%d]", len(body), tt.from, tt.to)
				}
				if h.Get("Accept-Ranges") != "bytes" {
					t.Fatalf("no Accept-Ranges: %v", h)
				}
			}
			if tt.method == "HEAD" && h.Get("Content-Length") != "70000" {
				t.Fatalf("HEAD Content-Length %q", h.Get("Content-Length"))
			}
		})
	}

	clk.advance(61 * time.Second)
	code, body, _ := get(t, "GET", u, nil...)
	if code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("after expiry: %d %q", code, body)
	}
	// a fresh signature cannot revive an expired file either
	fresh, _ := s.SignURL("boot-1.iso", clk.now().Add(time.Hour))
	if code, _, _ := get(t, "GET", fresh, nil...); code != 404 {
		t.Fatalf("expired file with fresh URL: %d", code)
	}
}

func TestJanitor(t *testing.T) {
	s, clk := newServer(t)
	ctx := context.Background()
	if _, err := s.PublishReader(ctx, strings.NewReader("short"), "short", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishReader(ctx, strings.NewReader("long"), "long", time.Hour); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.Dir(), "stray"), []byte("no expiry"), 0o644)
	old := filepath.Join(s.Dir(), ".tmp-dead")
	os.WriteFile(old, nil, 0o644)
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	if n := s.Sweep(); n != 2 { // stray + stale temp
		t.Fatalf("first sweep removed %d, want 2", n)
	}
	clk.advance(11 * time.Second)
	if n := s.Sweep(); n != 1 {
		t.Fatalf("second sweep removed %d, want 1", n)
	}
	left, _ := os.ReadDir(s.Dir())
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != ".meta,long" {
		t.Fatalf("left: %v", names)
	}
	metas, _ := os.ReadDir(filepath.Join(s.Dir(), ".meta"))
	if len(metas) != 1 || metas[0].Name() != "long" {
		t.Fatalf("meta left: %v", metas)
	}
}

func TestJanitorRunsOnItsOwn(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, strings.Repeat("k", 32), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.JanitorInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishReader(ctx, strings.NewReader("x"), "f", time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "f")); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor did not delete the expired file")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPublishErrors(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	tests := []struct {
		name, file, pub string
		ttl             time.Duration
		want            string
	}{
		{"slash", "", "a/b", time.Minute, "only letters"},
		{"dot", "", ".meta", time.Minute, "not start with '.'"},
		{"empty", "", "", time.Minute, "1..200"},
		{"no ttl", "", "x", 0, "at least 1 s"},
		{"missing file", "/nonexistent/file", "x", time.Minute, "no such file"},
		{"directory", "/", "x", time.Minute, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.file
			if f == "" {
				f = "/etc/hostname"
			}
			_, err := s.Publish(ctx, f, tt.pub, tt.ttl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := s.Delete(ctx, "never-published"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func TestPublishOverwriteAndDelete(t *testing.T) {
	s, _ := newServer(t)
	ctx := context.Background()
	u1, _ := s.PublishReader(ctx, strings.NewReader("one"), "image-x", time.Minute)
	u2, _ := s.PublishReader(ctx, strings.NewReader("two"), "image-x", time.Minute)
	for _, u := range []string{u1, u2} {
		if code, body, _ := get(t, "GET", u, nil...); code != 200 || body != "two" {
			t.Fatalf("%d %q", code, body)
		}
	}
	if err := s.Delete(ctx, "image-x"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, "GET", u2, nil...); code != 404 {
		t.Fatalf("after delete: %d", code)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PublishReader(cctx, bytes.NewReader(make([]byte, 10)), "c", time.Minute); err == nil {
		t.Fatal("cancelled publish succeeded")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "webstore.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 || len(k1) != 64 {
		t.Fatalf("mode %v len %d", st.Mode().Perm(), len(k1))
	}
	os.Chmod(p, 0o644)
	k2, err := LoadOrCreateKey(p)
	if err != nil || k2 != k1 {
		t.Fatalf("reload: %v %v", err, k2 == k1)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode not repaired: %v", st.Mode().Perm())
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("short key: %v", err)
	}
}

func TestCurl(t *testing.T) {
	testenv.RequireTools(t, "curl")
	s, clk := newServer(t)
	u, err := s.PublishReader(context.Background(), strings.NewReader("floppy bytes"), "image-c", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	curl := func(u string) (string, string) {
		out, err := exec.Command("curl", "-s", "-w", "\n%{http_code}", u).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		i := strings.LastIndex(string(out), "\n")
		return string(out[i+1:]), strings.TrimSuffix(string(out[:i]), "\n")
	}
	if code, body := curl(u); code != "200" || body != "floppy bytes" {
		t.Fatalf("curl: %s %q", code, body)
	}
	wrong := strings.Replace(u, "temp_url_sig=", "temp_url_sig=00", 1)
	if code, body := curl(wrong); code != "403" || !strings.Contains(body, "signature") {
		t.Fatalf("curl wrong sig: %s %q", code, body)
	}
	clk.advance(31 * time.Second)
	if code, body := curl(u); code != "403" || !strings.Contains(body, "expired") {
		t.Fatalf("curl expired: %s %q", code, body)
	}
}
