package qcow2_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent/qcow2"
)

// seedImage is a tiny valid v3 image: 512-byte clusters, 4 KiB disk, L1 at
// cluster 1, one L2 at cluster 2, one data cluster at 3 mapped to guest
// cluster 1.
func seedImage() []byte {
	b := make([]byte, 4*512)
	be := binary.BigEndian
	copy(b, qcow2.Magic)
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 9)
	be.PutUint64(b[24:], 4096)
	be.PutUint32(b[36:], 1)
	be.PutUint64(b[40:], 512)
	be.PutUint32(b[100:], 104)
	be.PutUint64(b[512:], 1024|1<<63)
	be.PutUint64(b[1024+8:], 1536|1<<63)
	copy(b[1536:], "data")
	return b
}

func FuzzConvert(f *testing.F) {
	f.Add(seedImage())
	f.Add(seedImage()[:100])
	// a small zlib-compressed image by qemu-img, when it is installed
	if _, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		raw := dir + "/r"
		if os.WriteFile(raw, bytes.Repeat([]byte("qcow2 fuzz seed "), 8192), 0o644) == nil &&
			exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, dir+"/c").Run() == nil {
			if b, err := os.ReadFile(dir + "/c"); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var sink bytes.Buffer
		res, err := qcow2.Convert(context.Background(), bytes.NewReader(data), writerAt{&sink}, qcow2.Options{MaxSize: 1 << 30})
		if err == nil {
			var holes int64
			for _, h := range res.Holes {
				if h.Offset < 0 || h.Length <= 0 || h.Offset+h.Length > int64(res.Header.Size) {
					t.Fatalf("hole %+v outside the %d-byte disk", h, res.Header.Size)
				}
				holes += h.Length
			}
			if res.Read != int64(len(data)) {
				t.Fatalf("read %d of %d bytes", res.Read, len(data))
			}
		}
	})
}

func FuzzParseHeaderAndL2(f *testing.F) {
	f.Add(seedImage()[:104], seedImage()[1024:1536])
	f.Fuzz(func(t *testing.T, head, l2 []byte) {
		h, err := qcow2.ParseHeader(head)
		if err == nil && (h.ClusterSize < 512 || h.ClusterSize > 2<<20) {
			t.Fatalf("accepted cluster size %d", h.ClusterSize)
		}
		entries, err := qcow2.ParseL2(l2, 9)
		if err == nil {
			for _, e := range entries {
				if e.Offset < 0 || (!e.Compressed && e.Offset%512 != 0) || (e.Compressed && (e.CompressedLen <= 0 || e.Offset == 0)) {
					t.Fatalf("bad entry %+v accepted", e)
				}
			}
		}
	})
}

func TestSeedImage(t *testing.T) {
	var got []byte
	w := fileAt{&got}
	res, err := qcow2.Convert(context.Background(), bytes.NewReader(seedImage()), w, qcow2.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got[512:516]) != "data" || res.Written != 512 || len(res.Holes) != 2 {
		t.Fatalf("got %q written %d holes %v", got[512:516], res.Written, res.Holes)
	}
}

type fileAt struct{ b *[]byte }

func (f fileAt) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(*f.b) {
		*f.b = append(*f.b, make([]byte, n-len(*f.b))...)
	}
	copy((*f.b)[off:], p)
	return len(p), nil
}
