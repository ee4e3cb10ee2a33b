package qemutest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"bytes"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// Ext4Image builds in dir an ext4 filesystem image of sizeMB, labelled
// cloudimg-rootfs, with a file in it (mke2fs -d: /etc/hostname), and
// returns its path and the filesystem UUID blkid reads from it.
func Ext4Image(t testing.TB, dir string, sizeMB int) (path, uuid string) {
	t.Helper()
	testenv.RequireTools(t, "mke2fs", "blkid")
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("partition-image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "root.ext4")
	if out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-L", "cloudimg-rootfs", "-d", root, img, strconv.Itoa(sizeMB)+"M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	out, err := exec.Command("blkid", "-p", "-s", "UUID", "-o", "value", img).Output()
	if err != nil {
		t.Fatalf("blkid -p %s: %v", img, err)
	}
	return img, strings.TrimSpace(string(out))
}

// ReadAt reads n bytes at offset off of file (a disk or image file).
func ReadAt(t testing.TB, file string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// SameBytes reports whether a and b (two builds of an image) are equal;
// when they are not it logs the first ten offsets where they differ, with
// their 2 KiB (ISO 9660) block.
func SameBytes(t testing.TB, a, b []byte) bool {
	t.Helper()
	if bytes.Equal(a, b) {
		return true
	}
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] && n < 10 {
			t.Logf("differs at %d (block %d)", i, i/2048)
			n++
		}
	}
	return false
}
