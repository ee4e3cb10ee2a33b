package vmedia

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/runtime/module"
)

func TestFetch(t *testing.T) {
	body := bytes.Repeat([]byte("kernel"), 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/vmlinuz" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	local := filepath.Join(dir, "local.bin")
	os.WriteFile(local, []byte("x"), 0o644)
	m := &Media{}
	ctx := context.Background()
	tests := []struct {
		name, ref, dst string
		want           string // returned path; "" when an error is expected
		code           string
	}{
		{"http download", srv.URL + "/vmlinuz?temp_url_sig=abc", filepath.Join(dir, "sub", "k"), filepath.Join(dir, "sub", "k"), ""},
		{"local path as it is", local, filepath.Join(dir, "unused"), local, ""},
		{"missing local file", filepath.Join(dir, "nope"), filepath.Join(dir, "unused2"), "", module.CodeNotFound},
		{"404", srv.URL + "/missing", filepath.Join(dir, "m"), "", module.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Fetch(ctx, srv.Client(), tt.ref, tt.dst)
			if tt.code != "" {
				if module.CodeOf(err) != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
				if _, serr := os.Stat(tt.dst); serr == nil {
					t.Fatalf("%s left behind after a failed fetch", tt.dst)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Fetch = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sub", "k")); !bytes.Equal(got, body) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(body))
	}
	if _, err := os.Stat(filepath.Join(dir, "unused")); err == nil {
		t.Fatal("a local reference was copied")
	}
}
