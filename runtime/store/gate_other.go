//go:build !unix

package store

// Without flock the gate serialises the writers of this process only;
// SQLite's busy timeout orders processes.
func flock(fd uintptr) error { return nil }

func funlock(fd uintptr) error { return nil }
