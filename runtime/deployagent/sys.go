package deployagent

import (
	"context"
	"io"
	"os"
)

type ctxLike = context.Context

// writeZeros writes n zero bytes at off.
func writeZeros(w io.WriterAt, off, n int64) error {
	zero := make([]byte, min(n, 4<<20))
	for n > 0 {
		k := min(n, int64(len(zero)))
		if _, err := w.WriteAt(zero[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// ZeroRange makes [off, off+n) of f read as zeros, the cheapest way the
// platform offers (BLKZEROOUT on Linux block devices, FALLOC_FL_ZERO_RANGE
// on files, else written zeros).
func ZeroRange(f *os.File, off, n int64) error { return zeroRange(f, off, n) }
