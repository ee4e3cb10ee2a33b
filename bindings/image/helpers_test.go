package image

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// randFile writes size random bytes (not zeros: no sparse or compression
// shortcuts) to dir/name and returns its path.
func randFile(tb testing.TB, dir, name string, size int64) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

// runCmd runs a command and returns its combined output and exit code
// (-1 when it could not start).
func runCmd(tb testing.TB, name string, args ...string) (string, int) {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	tb.Fatalf("%s: %v", name, err)
	return "", -1
}

// fsckClean asserts `fsck.vfat -n` exits 0 on img.
func fsckClean(tb testing.TB, img string) {
	tb.Helper()
	out, rc := runCmd(tb, "fsck.vfat", "-n", img)
	if rc != 0 {
		tb.Fatalf("fsck.vfat -n %s: exit %d\n%s", img, rc, out)
	}
}

// sameFile asserts the two files have identical contents.
func sameFile(tb testing.TB, a, b string) {
	tb.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		tb.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		tb.Fatalf("%s (%d bytes) and %s (%d bytes) differ", a, len(x), b, len(y))
	}
}
