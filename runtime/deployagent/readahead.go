package deployagent

import (
	"hash"
	"io"
)

// readAhead reads src in its own goroutine, chunk by chunk, hashing each
// chunk there, while the caller consumes earlier chunks: download and
// checksum overlap with the disk writes. Close stops the goroutine.
type readAhead struct {
	chunks chan []byte
	free   chan []byte
	done   chan struct{}
	buf    []byte // chunk being consumed
	off    int
	err    error
	errc   chan error
}

func newReadAhead(src io.Reader, h hash.Hash, chunk, depth int) *readAhead {
	ra := &readAhead{chunks: make(chan []byte, depth), free: make(chan []byte, depth+2),
		done: make(chan struct{}), errc: make(chan error, 1)}
	for range depth + 2 {
		ra.free <- make([]byte, chunk)
	}
	go func() {
		defer close(ra.chunks)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
			n, err := io.ReadFull(src, buf[:cap(buf)])
			if n > 0 {
				if h != nil {
					h.Write(buf[:n])
				}
				select {
				case ra.chunks <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				ra.errc <- err
				return
			}
		}
	}()
	return ra
}

// Read implements io.Reader.
func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.buf == nil || ra.off >= len(ra.buf) {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		b, ok := <-ra.chunks
		if !ok {
			ra.err = <-ra.errc
			return 0, ra.err
		}
		ra.buf, ra.off = b, 0
	}
	n := copy(p, ra.buf[ra.off:])
	ra.off += n
	return n, nil
}

// Close stops the reading goroutine (the source is left as it is).
func (ra *readAhead) Close() error {
	select {
	case <-ra.done:
	default:
		close(ra.done)
	}
	return nil
}

// NewHashingReader returns a reader of src that reads ahead in its own
// goroutine and feeds h with every byte (prepare_image's download path);
// h holds the whole stream's digest once Read returned io.EOF. Close it.
func NewHashingReader(src io.Reader, h hash.Hash) io.ReadCloser {
	return newReadAhead(src, h, 4<<20, 4)
}
