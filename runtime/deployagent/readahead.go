package deployagent

import (
	"hash"
	"io"
)

// readAhead reads src in its own goroutine, chunk by chunk, and hashes
// each chunk in a second one, while the caller consumes earlier chunks:
// download, checksum and disk writes overlap (on a machine with several
// CPUs they run in parallel; in the ramdisk under emulation the checksum
// alone is as slow as the network). Close stops the goroutines.
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
	read, readErr := ra.chunks, ra.errc
	if h != nil {
		read, readErr = make(chan []byte, depth), make(chan error, 1)
		go ra.hash(h, read, readErr)
	}
	go func() {
		defer close(read)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
			n, err := io.ReadFull(src, buf[:cap(buf)])
			if n > 0 {
				select {
				case read <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err != nil {
				if err == io.ErrUnexpectedEOF {
					err = io.EOF
				}
				readErr <- err
				return
			}
		}
	}()
	return ra
}

// hash feeds h with each chunk read, in order, and passes it on; the
// reader's final error follows the last chunk.
func (ra *readAhead) hash(h hash.Hash, read <-chan []byte, readErr <-chan error) {
	defer close(ra.chunks)
	for b := range read {
		h.Write(b)
		select {
		case ra.chunks <- b:
		case <-ra.done:
			return
		}
	}
	select {
	case err := <-readErr:
		ra.errc <- err
	case <-ra.done:
	}
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
