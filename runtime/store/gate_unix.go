//go:build unix

package store

import (
	"errors"
	"syscall"
)

func flock(fd uintptr) error {
	for {
		err := syscall.Flock(int(fd), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func funlock(fd uintptr) error { return syscall.Flock(int(fd), syscall.LOCK_UN) }
