package iloapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCAPEM returns a fresh self-signed CA certificate in PEM.
func testCAPEM(t *testing.T, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestCAPoolsShareAParsedBundle: transports of one process get the same
// parsed pool for a CA file until the file changes; directories and bad
// files are not cached; a nil CAPools parses every time.
func TestCAPoolsShareAParsedBundle(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, testCAPEM(t, "first"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "cas")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "a.pem"), testCAPEM(t, "dir"), 0o600); err != nil {
		t.Fatal(err)
	}

	var c CAPools
	first, err := c.Get(file)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pools    *CAPools
		path     string
		change   bool // rewrite file with another CA first
		wantSame bool // the pool of the previous Get on file
		wantErr  bool
		wantLen  int
	}{
		{name: "same file again", pools: &c, path: file, wantSame: true, wantLen: 1},
		{name: "changed file is parsed again", pools: &c, path: file, change: true, wantLen: 1},
		{name: "directory is not cached", pools: &c, path: sub, wantLen: 1},
		{name: "bad file is an error, not cached", pools: &c, path: bad, wantErr: true, wantLen: 1},
		{name: "missing file", pools: &c, path: filepath.Join(dir, "missing.pem"), wantErr: true, wantLen: 1},
		{name: "nil pools parse each time", pools: nil, path: file},
	}
	prev := first
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change {
				// Another certificate, and a later mtime in case the size matches.
				if err := os.WriteFile(file, testCAPEM(t, "second, longer name"), 0o600); err != nil {
					t.Fatal(err)
				}
				later := time.Now().Add(time.Minute)
				if err := os.Chtimes(file, later, later); err != nil {
					t.Fatal(err)
				}
			}
			p, err := tc.pools.Get(tc.path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Get(%s) error %v, want error %v", tc.path, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if (p == prev) != tc.wantSame {
				t.Fatalf("Get(%s) returned the previous pool: %v, want %v", tc.path, p == prev, tc.wantSame)
			}
			if tc.path == file {
				prev = p
			}
			if tc.pools != nil && tc.pools.Len() != tc.wantLen {
				t.Fatalf("%d files cached, want %d", tc.pools.Len(), tc.wantLen)
			}
		})
	}
}
