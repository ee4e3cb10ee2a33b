package iscsi_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/bindings/iscsi"
)

// BenchmarkISCSIWrite1G writes a 1 GiB random raw image (set
// LIGHTSOUT_BENCH_MB for another size) three ways and reports MB/s:
//
//	iscsi     - iscsi.Write: qemu-img -> libiscsi -> tgtd on 127.0.0.1 -> file
//	dd-fsync  - dd bs=1M conv=fsync to a local file (the machine's limit)
//	qemu-file - plain qemu-img convert -n to a local file (no iSCSI)
//
// go test ./bindings/iscsi/ -run XXX -bench ISCSIWrite1G -benchtime 1x
func BenchmarkISCSIWrite1G(b *testing.B) {
	requireISCSI(b)
	mb := 1024
	if s := os.Getenv("LIGHTSOUT_BENCH_MB"); s != "" {
		if n, err := parseInt(s); err == nil && n > 0 {
			mb = n
		}
	}
	size := int64(mb) << 20
	dir := b.TempDir()
	img := filepath.Join(dir, "image.raw")
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	_, _, target := startTarget(b, size, "bench", "bench-secret-123")

	b.Run("iscsi", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if _, err := iscsi.Write(context.Background(), target, img, iscsi.Options{WorkDir: dir, Format: "raw"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	out := filepath.Join(dir, "out.img")
	b.Run("dd-fsync", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if o, err := exec.Command("dd", "if="+img, "of="+out, "bs=1M", "conv=fsync", "status=none").CombinedOutput(); err != nil {
				b.Fatalf("%v %s", err, o)
			}
		}
	})
	if err := os.Truncate(out, size); err != nil {
		b.Fatal(err)
	}
	b.Run("qemu-file", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if o, err := exec.Command("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", img, out).CombinedOutput(); err != nil {
				b.Fatalf("%v %s", err, o)
			}
		}
	})
}

func parseInt(s string) (int, error) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, io.ErrUnexpectedEOF
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
