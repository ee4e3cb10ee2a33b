package deployagent

import (
	"context"
	"io"
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
