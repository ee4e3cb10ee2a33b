//go:build linux

package deployagent

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestWriteImageDirectToBlockDevice writes a raw image whose size is not a
// multiple of 4 KiB onto a loop device through DiskFile: the aligned body
// goes through O_DIRECT, the tail through the page cache, and the device
// reads back as the image (zero stripes included).
func TestWriteImageDirectToBlockDevice(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	testenv.RequireTools(t, "losetup")
	backing := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(backing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 32<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		if testenv.Integration() {
			t.Fatalf("losetup: %v %s", err, out)
		}
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", loop).Run() })

	img := make([]byte, 9<<20+1234)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(img)
	clear(img[2<<20 : 4<<20]) // a zero run: BLKZEROOUT
	f, err := os.OpenFile(loop, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := DiskFile{File: f, Direct: openDirect(f)}
	if d.Direct == nil {
		t.Fatalf("%s: O_DIRECT open failed", loop)
	}
	defer d.Direct.Close()
	res, err := WriteImage(context.Background(), bytes.NewReader(img), "raw", d, 32<<20, nil)
	if err != nil || res.Written != int64(len(img)) {
		t.Fatalf("WriteImage: %d bytes, %v", res.Written, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(img))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		t.Fatal("the device does not read back as the image")
	}
}
