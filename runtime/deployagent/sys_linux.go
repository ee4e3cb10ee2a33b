//go:build linux

package deployagent

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syncFS flushes every file system and block device buffer.
func syncFS() { unix.Sync() }

// powerOffMachine syncs and powers the machine off (reboot(2) with
// LINUX_REBOOT_CMD_POWER_OFF). It returns only on failure.
func powerOffMachine(_ ctxLike) error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// isBlockDevice reports whether f is a block device.
func isBlockDevice(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}

// zeroRange makes [off, off+n) of f read as zeros: BLKZEROOUT on block
// devices, FALLOC_FL_ZERO_RANGE on files, else plain zero writes.
func zeroRange(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if isBlockDevice(f) {
		r := [2]uint64{uint64(off), uint64(n)}
		if off%512 == 0 && n%512 == 0 && ioctlPtr(f, unix.BLKZEROOUT, &r) == nil {
			return nil
		}
	} else if unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n) == nil {
		return nil
	}
	return writeZeros(f, off, n)
}

// rereadPartitions asks the kernel to re-read a block device's partition
// table (BLKRRPART); errors are ignored (a file, or partitions in use).
func rereadPartitions(f *os.File) {
	if isBlockDevice(f) {
		_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
	}
}

// ioctlPtr calls ioctl(f, req, p).
func ioctlPtr(f *os.File, req uint, p *[2]uint64) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(p)))
	if errno != 0 {
		return errno
	}
	return nil
}

// dropCache flushes f and drops its cached pages so later reads come from
// the device (verification of an overwrite).
func dropCache(f *os.File) {
	_ = f.Sync()
	if isBlockDevice(f) {
		_ = unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// openDirect opens a block device a second time with O_DIRECT, for the
// aligned image writes (nil when f is not a block device or the device
// refuses O_DIRECT).
func openDirect(f *os.File) *os.File {
	if !isBlockDevice(f) {
		return nil
	}
	d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return d
}

// maxRSSKiB is the process's peak resident set size in KiB (0 if unknown).
func maxRSSKiB() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss
}
