package qcow2_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent/qcow2"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// makeRaw writes a raw disk of size bytes with random data regions, zero
// regions and a tail, and returns its path.
func makeRaw(t *testing.T, dir string, size int64) string {
	t.Helper()
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for off := int64(0); off < size; {
		n := int64(rng.IntN(300_000) + 1)
		if rng.IntN(3) > 0 { // two thirds data
			for i := off; i < min(off+n, size); i++ {
				b[i] = byte(rng.Uint32())
			}
		}
		off += n
	}
	copy(b[size-100:], "last bytes of the disk")
	p := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// convertFile streams the qcow2 at src into a target file pre-filled with
// garbage, zeroes the holes and returns the target's bytes.
func convertFile(t *testing.T, src string, size int64) ([]byte, *qcow2.Result, error) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(dst, bytes.Repeat([]byte{0xAA}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// a plain io.Reader: no Seek, no ReadAt
	res, cerr := qcow2.Convert(context.Background(), struct{ *os.File }{in}, out, qcow2.Options{MaxSize: size})
	if cerr != nil {
		return nil, res, cerr
	}
	zero := make([]byte, 1<<20)
	for _, h := range res.Holes {
		for off := h.Offset; off < h.Offset+h.Length; {
			n := min(int64(len(zero)), h.Offset+h.Length-off)
			if _, err := out.WriteAt(zero[:n], off); err != nil {
				t.Fatal(err)
			}
			off += n
		}
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return got, res, nil
}

func TestConvertMatchesQemuImg(t *testing.T) {
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	const size = 6<<20 + 4096 // not a multiple of the cluster size
	raw := makeRaw(t, dir, size)
	want, _ := os.ReadFile(raw)
	srcInfo, _ := os.Stat(raw)
	for _, tc := range []struct {
		name string
		opts string
	}{
		{"v3 64k clusters", "compat=1.1"},
		{"v2 (compat 0.10)", "compat=0.10"},
		{"512-byte clusters", "cluster_size=512"},
		{"2M clusters", "cluster_size=2M"},
		{"4k clusters, 8k L2 coverage per table", "cluster_size=4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := filepath.Join(t.TempDir(), "img.qcow2")
			qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", tc.opts, raw, q)
			got, res, err := convertFile(t, q, srcInfo.Size())
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("converted disk differs from the raw image (first difference at byte %d)", firstDiff(got, want))
			}
			if st, _ := os.Stat(q); res.Read != st.Size() {
				t.Errorf("read %d bytes of a %d-byte stream: the whole stream must be consumed (checksum)", res.Read, st.Size())
			}
			if res.Written == 0 || (!strings.Contains(tc.opts, "2M") && (res.Written >= size || len(res.Holes) == 0)) {
				t.Errorf("written %d bytes with %d holes: expected zero regions to be left as holes", res.Written, len(res.Holes))
			}
		})
	}
}

// Zero clusters (the v3 zero flag, also on preallocated clusters) read as
// zeros and are reported as holes.
func TestConvertZeroClusters(t *testing.T) {
	testenv.RequireTools(t, "qemu-img", "qemu-io")
	q := filepath.Join(t.TempDir(), "z.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-o", "preallocation=metadata", q, "4M")
	for _, c := range []string{"write -P 0x5a 0 1M", "write -z 64k 64k", "write -P 0x33 3M 512k"} {
		if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", c, q).CombinedOutput(); err != nil {
			t.Fatalf("qemu-io %s: %v\n%s", c, err, out)
		}
	}
	raw := filepath.Join(t.TempDir(), "z.raw")
	qemuImg(t, "convert", "-f", "qcow2", "-O", "raw", q, raw)
	want, _ := os.ReadFile(raw)
	got, _, err := convertFile(t, q, int64(len(want)))
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("converted disk differs at byte %d", firstDiff(got, want))
	}
}

// Images compressed by qemu-img convert -c (zlib, as cloud images are)
// convert to the same bytes; zstd compression is refused clearly.
func TestConvertCompressed(t *testing.T) {
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	raw := makeRaw(t, dir, 5<<20+512)
	b, _ := os.ReadFile(raw)
	copy(b[1<<20:], bytes.Repeat([]byte("compressible text "), 1<<16)) // compresses well
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []string{"compat=1.1", "compat=0.10", "cluster_size=4096", "cluster_size=2M"} {
		q := filepath.Join(t.TempDir(), "c.qcow2")
		qemuImg(t, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", opts, raw, q)
		got, _, err := convertFile(t, q, int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", opts, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("%s: differs at byte %d", opts, firstDiff(got, b))
		}
	}
	q := filepath.Join(t.TempDir(), "z.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", raw, q).CombinedOutput(); err != nil {
		t.Skipf("qemu-img without zstd: %s", out)
	}
	if _, _, err := convertFile(t, q, int64(len(b))); err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("zstd: err = %v", err)
	}
}

func TestConvertRefusesBackingFileAndSize(t *testing.T) {
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemuImg(t, "create", "-f", "qcow2", base, "1M")
	over := filepath.Join(dir, "over.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", over)
	if _, _, err := convertFile(t, over, 1<<20); err == nil || !strings.Contains(err.Error(), "backing file") {
		t.Errorf("backing file: err = %v", err)
	}
	big := filepath.Join(dir, "big.qcow2")
	qemuImg(t, "create", "-f", "qcow2", big, "2M")
	if _, _, err := convertFile(t, big, 1<<20); err == nil || !strings.Contains(err.Error(), "exceeds the disk") {
		t.Errorf("too big: err = %v", err)
	}
}

func TestConvertNotQcow2AndTruncated(t *testing.T) {
	var w bytes.Buffer
	_, err := qcow2.Convert(context.Background(), strings.NewReader("hello, this is a raw image"), writerAt{&w}, qcow2.Options{})
	if !errors.Is(err, qcow2.ErrNotQcow2) {
		t.Errorf("raw input: err = %v, want ErrNotQcow2", err)
	}
	testenv.RequireTools(t, "qemu-img")
	dir := t.TempDir()
	raw := makeRaw(t, dir, 1<<20)
	q := filepath.Join(dir, "t.qcow2")
	qemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, q)
	data, _ := os.ReadFile(q)
	_, err = qcow2.Convert(context.Background(), bytes.NewReader(data[:len(data)/2]), writerAt{&w}, qcow2.Options{})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated input: err = %v", err)
	}
}

type writerAt struct{ b *bytes.Buffer }

func (w writerAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// An image whose L1 table was moved behind its L2 tables (grown with
// qemu-img resize after data was written) cannot be streamed: the error
// says so and how to fix it, and nothing is written.
func TestConvertRefusesNonStreamingOrder(t *testing.T) {
	testenv.RequireTools(t, "qemu-img", "qemu-io")
	q := filepath.Join(t.TempDir(), "r.qcow2")
	qemuImg(t, "create", "-f", "qcow2", q, "1M")
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 64k", q).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io: %v %s", err, out)
	}
	qemuImg(t, "resize", q, "8G")
	in, err := os.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var w bytes.Buffer
	res, err := qcow2.Convert(context.Background(), in, writerAt{&w}, qcow2.Options{})
	if !errors.Is(err, qcow2.ErrNotStreamable) || !strings.Contains(err.Error(), "qemu-img convert -O qcow2") {
		t.Fatalf("err = %v, want ErrNotStreamable with the fix", err)
	}
	if res.Written != 0 {
		t.Errorf("wrote %d bytes before refusing", res.Written)
	}
}
