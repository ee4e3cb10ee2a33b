//go:build !linux

package deployagent

import (
	"errors"
	"os"
)

func syncFS() {}

func powerOffMachine(_ ctxLike) error {
	return errors.New("powering off is only supported on Linux")
}

func isBlockDevice(*os.File) bool { return false }

func zeroRange(f *os.File, off, n int64) error { return writeZeros(f, off, n) }

func rereadPartitions(*os.File) {}

func dropCache(f *os.File) { _ = f.Sync() }

func openDirect(*os.File) *os.File { return nil }

func maxRSSKiB() int64 { return 0 }
