package swift

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// BenchmarkUpload1GiB uploads 1 GiB to the Swift all-in-one with this
// client and with python3-swiftclient's `swift upload` (same server, same
// file) and reports both throughputs and their ratio (target >= 1.0).
//
//	go test -run '^$' -bench Upload1GiB -benchtime 2x ./bindings/swift
func BenchmarkUpload1GiB(b *testing.B) {
	testenv.RequireTools(b, "swift")
	a := needSwift(b)
	const size = 1 << 30
	file := filepath.Join(b.TempDir(), "1GiB.bin")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for i := 0; i < size/len(buf); i++ {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()

	cases := []struct {
		name     string
		tweak    func(*Config)
		extraCLI []string
	}{
		{"single-PUT", func(c *Config) { c.Threshold = size }, nil},
		{"SLO-256MiB", func(c *Config) { c.Threshold = 1 << 20; c.SegmentSize = 256 << 20; c.SegmentWorkers = 2 },
			[]string{"-S", strconv.Itoa(256 << 20)}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c := testClient(b, tc.tweak)
			var goTime, pyTime time.Duration
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := c.UploadFile(ctx, "bench", "go-1GiB", file, UploadOptions{}); err != nil {
					b.Fatal(err)
				}
				goTime += time.Since(start)
				b.StopTimer()
				if err := c.DeleteObject(ctx, "bench", "go-1GiB"); err != nil {
					b.Fatal(err)
				}
				args := append([]string{"upload", "bench", file, "--object-name", "py-1GiB"}, tc.extraCLI...)
				start = time.Now()
				if out, err := a.Swift(ctx, args...); err != nil {
					b.Fatalf("swift upload: %v\n%s", err, out)
				}
				pyTime += time.Since(start)
				if out, err := a.Swift(ctx, "delete", "bench", "py-1GiB"); err != nil {
					b.Fatalf("swift delete: %v\n%s", err, out)
				}
				b.StartTimer()
			}
			mb := func(d time.Duration) float64 { return float64(b.N) * size / 1e6 / d.Seconds() }
			b.ReportMetric(mb(goTime), "go_MB/s")
			b.ReportMetric(mb(pyTime), "swiftclient_MB/s")
			b.ReportMetric(mb(goTime)/mb(pyTime), "ratio")
		})
	}
}
