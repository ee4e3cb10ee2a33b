package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/swift/swiftaio"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestSwiftUploadTempURLDelete drives `lightsout swift` against a real Swift
// all-in-one: the printed temp URL serves the file's bytes, the password
// and the temp-URL key never reach the output, and after delete the URL
// is refused.
func TestSwiftUploadTempURLDelete(t *testing.T) {
	testenv.RequireTools(t, swiftaio.Tools...)
	aio, err := swiftaio.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer aio.Stop()
	// The temp-URL key lives in the account's metadata, where lightsout reads it.
	if out, err := aio.Swift(context.Background(), "post", "-m", "Temp-URL-Key:Tmp-Url-Key-Sentinel"); err != nil {
		t.Fatalf("swift post: %v\n%s", err, out)
	}
	c := newCLI(t)
	conf := filepath.Join(t.TempDir(), "l.conf")
	os.WriteFile(conf, []byte("[swift]\nauth_url = "+aio.AuthURL+"\nauth_version = 1\nusername = "+aio.User+
		"\npassword = "+aio.Key+"\n[ilo]\nswift_ilo_container = cli-test\n"), 0o600)
	t.Setenv("LIGHTSOUT_CONFIG", conf)
	data := make([]byte, 3<<20)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "deploy.iso")
	os.WriteFile(file, data, 0o644)

	u := strings.TrimSpace(c.must("swift", "upload", file, "--expires", "10m"))
	if !strings.Contains(u, "/cli-test/deploy.iso?temp_url_sig=") {
		t.Fatalf("temp URL %q", u)
	}
	get := func(url string) (int, []byte) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := get(u); code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET temp URL: %d, %d bytes", code, len(body))
	}
	u2 := strings.TrimSpace(c.must("swift", "temp-url", "deploy.iso"))
	if code, _ := get(u2); code != 200 {
		t.Fatalf("GET second temp URL: %d", code)
	}
	c.must("swift", "delete", "deploy.iso")
	if code, _ := get(u); code != 404 && code != 401 {
		t.Fatalf("GET after delete: %d", code)
	}
	c.must("swift", "delete", "deploy.iso") // a missing object is not an error
	for _, s := range []string{aio.Key, "Tmp-Url-Key-Sentinel"} {
		if strings.Contains(c.allOut.String(), s) {
			t.Fatalf("secret %q in CLI output", s)
		}
	}
	if code, _, e := c.run("swift", "upload", filepath.Join(t.TempDir(), "missing.iso")); code != 2 || !strings.Contains(e, "missing.iso") {
		t.Fatalf("missing file: exit %d %s", code, e)
	}
}
