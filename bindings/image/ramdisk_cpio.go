package image

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// The initramfs is a "newc" (SVR4, magic 070701, no checksum) cpio archive,
// the format the kernel's initramfs unpacker reads. It is written here rather
// than with github.com/cavaliergopher/cpio v1.0.1 because that writer cannot
// record a device node's major/minor numbers (/dev/console must be 5,1).

// cpio mode type bits (stat.h).
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
	cpioLink = 0o120000
)

const (
	newcMagic     = "070701"
	newcHeaderLen = 110
	newcTrailer   = "TRAILER!!!"
	// newcMaxSize is the largest file a newc header (32-bit hex size) can hold.
	newcMaxSize = 1<<32 - 1
)

// cpioEntry is one member of a newc archive. Names are relative ("init",
// "dev/console"); data is read from Open for regular files and the link
// target is the data of a symlink.
type cpioEntry struct {
	Name         string
	Mode         uint32 // type bits | permission bits
	Size         int64  // regular files: bytes Open returns
	Target       string // symlinks
	Major, Minor uint32 // device nodes (rdev)
	Open         func() (io.ReadCloser, error)
}

// cpioArchive collects entries and writes them deterministically: sorted by
// name (so every directory precedes its contents), uid/gid 0, one fixed
// mtime, inode numbers 1..n in that order, nlink 2 for directories and 1
// otherwise, dev 0:0.
type cpioArchive struct {
	entries map[string]cpioEntry
}

func newCPIOArchive() *cpioArchive { return &cpioArchive{entries: map[string]cpioEntry{}} }

// cleanName validates and normalises an archive member name.
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" || n == "." || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("cpio: bad member name %q", name)
	}
	return n, nil
}

// add adds e, creating its missing parent directories (mode 0755). A second
// entry with the same name is an error, except for a directory added twice.
func (a *cpioArchive) add(e cpioEntry) error {
	n, err := cleanName(e.Name)
	if err != nil {
		return err
	}
	e.Name = n
	if old, ok := a.entries[n]; ok {
		if old.Mode&0o170000 == cpioDir && e.Mode&0o170000 == cpioDir {
			return nil
		}
		return fmt.Errorf("cpio: %s added twice", n)
	}
	if e.Mode&0o170000 == cpioReg && (e.Size < 0 || e.Size > newcMaxSize) {
		return fmt.Errorf("cpio: %s: size %d does not fit a newc header", n, e.Size)
	}
	a.entries[n] = e
	if dir := path.Dir(n); dir != "." {
		return a.add(cpioEntry{Name: dir, Mode: cpioDir | 0o755})
	}
	return nil
}

// dataSize is the number of member bytes (file data and link targets).
func (a *cpioArchive) dataSize() int64 {
	var n int64
	for _, e := range a.entries {
		n += e.Size + int64(len(e.Target))
	}
	return n
}

// names returns the member names in archive order.
func (a *cpioArchive) names() []string {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writeTo writes the archive to w with the given mtime (seconds since the
// epoch), calling progress with the member bytes written so far.
func (a *cpioArchive) writeTo(w io.Writer, mtime int64, progress func(done int64)) error {
	var done int64
	for i, name := range a.names() {
		e := a.entries[name]
		ino := int64(i + 1)
		switch e.Mode & 0o170000 {
		case cpioReg:
			if err := writeNewcHeader(w, e, ino, mtime, e.Size); err != nil {
				return err
			}
			rc, err := e.Open()
			if err != nil {
				return fmt.Errorf("cpio: %s: %w", name, err)
			}
			n, err := io.Copy(w, io.LimitReader(rc, e.Size))
			rc.Close()
			if err != nil {
				return fmt.Errorf("cpio: %s: %w", name, err)
			}
			if n != e.Size {
				return fmt.Errorf("cpio: %s: source has %d bytes, expected %d (changed while building?)", name, n, e.Size)
			}
			if err := writePad(w, e.Size); err != nil {
				return err
			}
			done += e.Size
		case cpioLink:
			if err := writeNewcHeader(w, e, ino, mtime, int64(len(e.Target))); err != nil {
				return err
			}
			if _, err := io.WriteString(w, e.Target); err != nil {
				return err
			}
			if err := writePad(w, int64(len(e.Target))); err != nil {
				return err
			}
			done += int64(len(e.Target))
		default:
			if err := writeNewcHeader(w, e, ino, mtime, 0); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(done)
		}
	}
	// the trailer: all fields 0 but nlink 1, as GNU cpio writes it
	return writeNewcHeader(w, cpioEntry{Name: newcTrailer}, 0, 0, 0)
}

func writeNewcHeader(w io.Writer, e cpioEntry, ino, mtime, size int64) error {
	nlink := 1
	if e.Mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic, ino, e.Mode, 0, 0, nlink, uint32(mtime), size,
		0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(w, e.Name+"\x00"); err != nil {
		return err
	}
	return writePad(w, int64(newcHeaderLen+len(e.Name)+1))
}

var zero4 [4]byte

// writePad pads n written bytes to a multiple of 4.
func writePad(w io.Writer, n int64) error {
	if p := (4 - n%4) % 4; p > 0 {
		_, err := w.Write(zero4[:p])
		return err
	}
	return nil
}
