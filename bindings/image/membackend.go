package image

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

// memBackend is an in-memory go-diskfs backend for small images (floppies,
// efiboot.img): the image is assembled in memory and written to disk in one
// go, instead of thousands of 512-byte pwrite calls.
type memBackend struct {
	buf []byte
	off int64
}

var _ backend.Storage = (*memBackend)(nil)

func newMemBackend(size int64) *memBackend { return &memBackend{buf: make([]byte, size)} }

func (m *memBackend) Stat() (fs.FileInfo, error) { return memInfo{size: int64(len(m.buf))}, nil }

func (m *memBackend) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.off)
	m.off += int64(n)
	return n, err
}

func (m *memBackend) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(m.buf)) {
		return 0, io.EOF
	}
	n := copy(p, m.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memBackend) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.buf)) {
		return 0, errors.New("write beyond the end of the image")
	}
	return copy(m.buf[off:], p), nil
}

func (m *memBackend) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += int64(len(m.buf))
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	m.off = offset
	return offset, nil
}

func (m *memBackend) Close() error                            { return nil }
func (m *memBackend) Sys() (*os.File, error)                  { return nil, backend.ErrNotSuitable }
func (m *memBackend) Writable() (backend.WritableFile, error) { return m, nil }
func (m *memBackend) Path() string                            { return "" }
func (m *memBackend) Bytes() []byte                           { return m.buf }

func (memInfo) Name() string       { return "image" }
func (i memInfo) Size() int64      { return i.size }
func (memInfo) Mode() fs.FileMode  { return 0o644 }
func (memInfo) ModTime() time.Time { return time.Time{} }
func (memInfo) IsDir() bool        { return false }
func (memInfo) Sys() any           { return nil }

type memInfo struct{ size int64 }
