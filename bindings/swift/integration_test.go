package swift

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ncw "github.com/ncw/swift/v2"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/testenv"
)

const testKey = "lightsout-test-temp-url-key"

func fetch(t *testing.T, method, u string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func writeRandom(t testing.TB, dir string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestRealSwiftTempURL(t *testing.T) {
	ctx := context.Background()
	c := testClient(t, nil)
	if err := c.SetTempURLKey(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	path, data := writeRandom(t, t.TempDir(), 100_000)
	res, err := c.UploadFile(ctx, "lightsout_test", "image-1be26c0b", path, UploadOptions{DeleteAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != int64(len(data)) || res.Segments != 0 {
		t.Fatalf("result %+v", res)
	}

	// A fresh client reads the key from the account metadata.
	c2 := testClient(t, nil)
	for _, d := range []tempurl.Digest{tempurl.SHA256, tempurl.SHA1, tempurl.SHA512} {
		t.Run("digest "+string(d), func(t *testing.T) {
			u, err := c2.TempURL(ctx, "lightsout_test", "image-1be26c0b", time.Minute, TempURLOptions{Digest: d, Filename: "floppy.img"})
			if err != nil {
				t.Fatal(err)
			}
			code, body := fetch(t, "GET", u, nil)
			if code != 200 || !bytes.Equal(body, data) {
				t.Fatalf("GET %d, %d bytes", code, len(body))
			}
			// iLOs fetch in ranges
			code, body = fetch(t, "GET", u, map[string]string{"Range": "bytes=10-19"})
			if code != 206 || !bytes.Equal(body, data[10:20]) {
				t.Fatalf("range GET %d %x", code, body)
			}
		})
	}

	u, _ := c2.TempURL(ctx, "lightsout_test", "image-1be26c0b", time.Minute, TempURLOptions{})
	pu, _ := url.Parse(u)
	q := pu.Query()
	tests := []struct {
		name string
		mod  func(q url.Values) url.Values
		want int
	}{
		{"wrong signature", func(q url.Values) url.Values {
			q.Set("temp_url_sig", strings.Repeat("0", 64))
			return q
		}, 401},
		{"expires moved", func(q url.Values) url.Values {
			q.Set("temp_url_expires", "4102444800")
			return q
		}, 401},
		{"no signature", func(q url.Values) url.Values { q.Del("temp_url_sig"); return q }, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nq := url.Values{}
			for k, v := range q {
				nq[k] = append([]string(nil), v...)
			}
			pu2 := *pu
			pu2.RawQuery = tt.mod(nq).Encode()
			if code, _ := fetch(t, "GET", pu2.String(), nil); code != tt.want {
				t.Fatalf("got %d want %d", code, tt.want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		st, _ := c2.Authenticate(ctx)
		sp, _ := url.Parse(st)
		q, _ := tempurl.Query(tempurl.SHA256, testKey, "GET", sp.Path+"/lightsout_test/image-1be26c0b", time.Now().Add(-time.Second), "")
		if code, _ := fetch(t, "GET", st+"/lightsout_test/image-1be26c0b?"+q, nil); code != 401 {
			t.Fatalf("expired URL: %d", code)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		c3 := testClient(t, func(c *Config) { c.TempURLKey = "not-the-key" })
		u, err := c3.TempURL(ctx, "lightsout_test", "image-1be26c0b", time.Minute, TempURLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := fetch(t, "GET", u, nil); code != 401 {
			t.Fatalf("wrong key: %d", code)
		}
	})
	t.Run("curl", func(t *testing.T) {
		testenv.RequireTools(t, "curl")
		good, _ := c2.TempURL(ctx, "lightsout_test", "image-1be26c0b", 2*time.Second, TempURLOptions{})
		bad := strings.Replace(good, "temp_url_sig=", "temp_url_sig=0", 1)
		if got := curlCode(t, good); got != "200" {
			t.Fatalf("curl good: %s", got)
		}
		if got := curlCode(t, bad); got != "401" {
			t.Fatalf("curl bad sig: %s", got)
		}
		// wait (polling) until the 2 s URL has expired
		deadline := time.Now().Add(10 * time.Second)
		for curlCode(t, good) != "401" {
			if time.Now().After(deadline) {
				t.Fatal("URL still accepted after expiry")
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	if err := c.DeleteObject(ctx, "lightsout_test", "image-1be26c0b"); err != nil {
		t.Fatal(err)
	}
	if code, _ := fetch(t, "GET", u, nil); code != 404 {
		t.Fatalf("after delete: %d", code)
	}
	if err := c.DeleteObject(ctx, "lightsout_test", "image-1be26c0b"); err != nil {
		t.Fatalf("second delete (404) must not fail: %v", err)
	}
}

func curlCode(t *testing.T, u string) string {
	t.Helper()
	out, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", u).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	return string(out)
}

func TestRealSwiftDeleteAfter(t *testing.T) {
	ctx := context.Background()
	c := testClient(t, nil)
	if _, err := c.Upload(ctx, "lightsout_test", "ephemeral", strings.NewReader("gone soon"), 9, UploadOptions{DeleteAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.Stat(ctx, "lightsout_test", "ephemeral")
		if module.CodeOf(err) == module.CodeNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("object still there after X-Delete-After: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.DeleteObject(ctx, "lightsout_test", "ephemeral")
}

func TestRealSwiftSLO(t *testing.T) {
	ctx := context.Background()
	c := testClient(t, func(c *Config) {
		c.Threshold = 300_000
		c.SegmentSize = 128 << 10
		c.SegmentWorkers = 3
		c.TempURLKey = testKey
	})
	if err := c.SetTempURLKey(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, data := writeRandom(t, dir, 1_000_003)
	tests := []struct {
		name   string
		upload func() (Result, error)
		segs   int
	}{
		{"file, parallel", func() (Result, error) {
			return c.UploadFile(ctx, "lightsout_test", "big.iso", path, UploadOptions{DeleteAfter: time.Hour})
		}, 8},
		{"stream, sequential segments", func() (Result, error) {
			// a plain io.Reader (no ReaderAt): segments are streamed in order
			return c.Upload(ctx, "lightsout_test", "big.iso", io.MultiReader(bytes.NewReader(data)), int64(len(data)), UploadOptions{DeleteAfter: time.Hour})
		}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.upload()
			if err != nil {
				t.Fatal(err)
			}
			if res.Segments != tt.segs || res.Bytes != int64(len(data)) {
				t.Fatalf("result %+v", res)
			}
			u, err := c.TempURL(ctx, "lightsout_test", "big.iso", time.Minute, TempURLOptions{})
			if err != nil {
				t.Fatal(err)
			}
			code, body := fetch(t, "GET", u, nil)
			if code != 200 || !bytes.Equal(body, data) {
				t.Fatalf("GET SLO via temp URL: %d, %d bytes (want %d)", code, len(body), len(data))
			}
			code, body = fetch(t, "GET", u, map[string]string{"Range": "bytes=131070-131073"})
			if code != 206 || !bytes.Equal(body, data[131070:131074]) {
				t.Fatalf("range across segments: %d %x", code, body)
			}
		})
	}
	// the replaced upload's segments are gone; only the live ones remain
	names, err := c.conn.ObjectNamesAll(ctx, "lightsout_test_segments", &ncw.ObjectsOpts{Prefix: "big.iso/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 8 {
		t.Fatalf("segments container holds %d objects, want 8 (old SLO segments not cleaned): %v", len(names), names)
	}
	if err := c.DeleteObject(ctx, "lightsout_test", "big.iso"); err != nil {
		t.Fatal(err)
	}
	names, _ = c.conn.ObjectNamesAll(ctx, "lightsout_test_segments", &ncw.ObjectsOpts{Prefix: "big.iso/"})
	if len(names) != 0 {
		t.Fatalf("segments left after delete: %v", names)
	}
	if _, err := c.Stat(ctx, "lightsout_test", "big.iso"); module.CodeOf(err) != module.CodeNotFound {
		t.Fatalf("stat after delete: %v", err)
	}
}

func TestRealSwiftAuthErrors(t *testing.T) {
	a := needSwift(t)
	c, _ := New(Config{AuthURL: a.AuthURL, AuthVersion: 1, Username: a.User, Password: "wrong-password-xyz"})
	_, err := c.Authenticate(context.Background())
	if module.CodeOf(err) != module.CodeLoginFailed {
		t.Fatalf("code %q: %v", module.CodeOf(err), err)
	}
	if strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Fatal("password leaked into the error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c2 := testClient(t, nil)
	if _, err := c2.Authenticate(ctx); module.CodeOf(err) != module.CodeCancelled {
		t.Fatalf("cancelled ctx: %v (%s)", err, module.CodeOf(err))
	}
}

func TestRealSwiftMissingKey(t *testing.T) {
	ctx := context.Background()
	c := testClient(t, nil)
	if err := c.SetTempURLKey(ctx, ""); err != nil {
		t.Fatal(err)
	}
	defer c.SetTempURLKey(ctx, testKey)
	c2 := testClient(t, nil)
	_, err := c2.TempURL(ctx, "lightsout_test", "x", time.Minute, TempURLOptions{})
	if err == nil || !strings.Contains(err.Error(), "[swift] temp_url_key") {
		t.Fatalf("err = %v", err)
	}
}

func TestRealSwiftUnknownSize(t *testing.T) {
	ctx := context.Background()
	c := testClient(t, func(c *Config) { c.SegmentSize = 8 << 20; c.TempURLKey = testKey })
	if err := c.SetTempURLKey(ctx, testKey); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 17<<20+5)
	rand.Read(big)
	tests := []struct {
		name string
		data []byte
		segs int
	}{
		{"small stream: one PUT", big[:1000], 0},
		{"large stream: SLO", big, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Upload(ctx, "lightsout_test", "stream", io.MultiReader(bytes.NewReader(tt.data)), -1, UploadOptions{DeleteAfter: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if res.Segments != tt.segs || res.Bytes != int64(len(tt.data)) {
				t.Fatalf("result %+v", res)
			}
			u, _ := c.TempURL(ctx, "lightsout_test", "stream", time.Minute, TempURLOptions{})
			if code, body := fetch(t, "GET", u, nil); code != 200 || !bytes.Equal(body, tt.data) {
				t.Fatalf("GET %d, %d bytes", code, len(body))
			}
		})
	}
	if err := c.DeleteObject(ctx, "lightsout_test", "stream"); err != nil {
		t.Fatal(err)
	}
}
