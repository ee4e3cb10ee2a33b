package deployagent_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

// benchImageSize is the size of the benchmark image (half random data,
// half zeros, in 1 MiB stripes).
const benchImageSize = 128 << 20

func benchImages(b *testing.B) (raw, qcow string) {
	b.Helper()
	dir := b.TempDir()
	raw = dir + "/img.raw"
	f, err := os.Create(raw)
	if err != nil {
		b.Fatal(err)
	}
	data := randomBytes(1 << 20)
	for i := range benchImageSize >> 20 {
		if i%2 == 0 {
			_, err = f.Write(data)
		} else {
			_, err = f.Write(make([]byte, 1<<20))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	if _, err := exec.LookPath("qemu-img"); err == nil {
		qcow = dir + "/img.qcow2"
		if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
			b.Fatalf("qemu-img: %v %s", err, out)
		}
	}
	return raw, qcow
}

// benchWrite streams src (as a plain reader, hashed with sha256 as
// prepare_image does) onto a file standing for the disk; MB/s is the raw
// image size per second, comparable with BenchmarkQemuImgConvert.
func benchWrite(b *testing.B, src, format string) {
	disk := b.TempDir() + "/disk"
	b.SetBytes(benchImageSize)
	b.ResetTimer()
	for range b.N {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(disk)
		if err != nil {
			b.Fatal(err)
		}
		src := deployagent.NewHashingReader(struct{ io.Reader }{in}, sha256.New())
		res, err := deployagent.WriteImage(context.Background(), src, format, out, 1<<30, nil)
		src.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, hole := range res.Holes {
			if err := deployagent.ZeroRange(out, hole.Offset, hole.Length); err != nil {
				b.Fatal(err)
			}
		}
		if err := out.Sync(); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

func BenchmarkPrepareImageRaw(b *testing.B) {
	raw, _ := benchImages(b)
	benchWrite(b, raw, "raw")
}

func BenchmarkPrepareImageQcow2(b *testing.B) {
	_, q := benchImages(b)
	if q == "" {
		b.Skip("qemu-img not installed")
	}
	benchWrite(b, q, "qcow2")
}

// BenchmarkQemuImgConvert is the reference: qemu-img convert of the same
// qcow2 image to a raw file (the target is >= 0.8x its rate).
func BenchmarkQemuImgConvert(b *testing.B) {
	_, q := benchImages(b)
	if q == "" {
		b.Skip("qemu-img not installed")
	}
	disk := b.TempDir() + "/disk"
	b.SetBytes(benchImageSize)
	b.ResetTimer()
	for range b.N {
		if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", q, disk).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		if out, err := exec.Command("sync", disk).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
	}
}
