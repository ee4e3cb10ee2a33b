package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	kiso "github.com/kdomanski/iso9660"
)

// Reading ISOs goes through github.com/kdomanski/iso9660 (files,
// directories, Rock Ridge names, volume id). Writing goes through go-diskfs
// (kdomanski cannot write El Torito); isopatch.go holds the one hand-written
// helper the writer needs (directory record positions of the ISO it just
// wrote). See docs/images.md.

// Bounds for hostile images: a directory tree deeper or larger than these is
// refused rather than walked (a directory whose extent points back at an
// ancestor would otherwise loop).
const (
	maxISODepth   = 32
	maxISOEntries = 200_000
	// maxISOMetaRead bounds the bytes the reader library may read while
	// walking the tree (directory records and Rock Ridge areas): a hostile
	// image whose directories point back at each other would otherwise be
	// re-read until the entry limit.
	maxISOMetaRead = 256 << 20
)

// budgetReaderAt fails reads once more than left bytes were read.
type budgetReaderAt struct {
	r    io.ReaderAt
	left int64
}

// errISOReadBudget is returned by budgetReaderAt when the budget is spent.
var errISOReadBudget = fmt.Errorf("more than %d MiB of ISO 9660 metadata read: the directory tree is malformed or loops", maxISOMetaRead>>20)

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	b.left -= int64(len(p))
	if b.left < 0 {
		return 0, errISOReadBudget
	}
	return b.r.ReadAt(p, off)
}

// isoEntry is one file or directory of an ISO read by readISOTree.
type isoEntry struct {
	Path string // slash-separated, no leading slash; Rock Ridge name when present
	Size int64
	Dir  bool
	// LBA is the first logical block of a file's extent (0 for directories).
	LBA  uint32
	file *kiso.File
	data io.ReaderAt // the image, without the metadata read budget
}

// isoTree is the directory tree of an ISO image.
type isoTree struct {
	Label   string
	Entries []isoEntry // depth-first, sorted by name within a directory
	byPath  map[string]int
	byFold  map[string]int
}

// openISOTree opens the ISO image at p and reads its tree. The returned
// close function closes the file; entries' readers need it open.
func openISOTree(p string) (*isoTree, func() error, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	t, err := readISOTree(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a readable ISO 9660 image: %w", p, err)
	}
	return t, f.Close, nil
}

// readISOTree reads the volume label and the whole directory tree of the
// ISO image r. Malformed images give an error, never a panic: the library
// was not written for hostile input (a directory record without "." and
// ".." entries makes it panic), so its panics are turned into errors here.
func readISOTree(r io.ReaderAt) (t *isoTree, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("malformed ISO 9660 image: %v", p)
		}
	}()
	meta := &budgetReaderAt{r: r, left: maxISOMetaRead}
	img, err := kiso.OpenImage(meta)
	if err != nil {
		return nil, fmt.Errorf("read volume descriptors: %w", err)
	}
	label, err := img.Label()
	if err != nil {
		return nil, errors.New("no primary volume descriptor")
	}
	root, err := img.RootDir()
	if err != nil {
		return nil, errors.New("no root directory")
	}
	t = &isoTree{Label: strings.TrimRight(label, " \x00"), byPath: map[string]int{}, byFold: map[string]int{}}
	var walk func(dir *kiso.File, prefix string, depth int) error
	walk = func(dir *kiso.File, prefix string, depth int) error {
		if depth > maxISODepth {
			return fmt.Errorf("directory tree deeper than %d levels at %s", maxISODepth, prefix)
		}
		children, err := dir.GetChildren()
		if meta.left < 0 {
			// the library drops read errors of directory sectors
			return errISOReadBudget
		}
		if err != nil {
			return fmt.Errorf("read directory /%s: %w", prefix, err)
		}
		sort.Slice(children, func(i, j int) bool { return children[i].Name() < children[j].Name() })
		for _, c := range children {
			if len(t.Entries) >= maxISOEntries {
				return fmt.Errorf("more than %d files and directories", maxISOEntries)
			}
			name := c.Name()
			if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
				return fmt.Errorf("invalid file name %q in /%s", name, prefix)
			}
			e := isoEntry{Path: path.Join(prefix, name), Dir: c.IsDir(), file: c, data: r}
			if !e.Dir {
				e.Size = c.Size()
				if sr, ok := c.Reader().(*io.SectionReader); ok {
					_, off, _ := sr.Outer()
					e.LBA = uint32(off / isoBlock)
				}
			}
			t.byPath[e.Path] = len(t.Entries)
			if _, dup := t.byFold[strings.ToLower(e.Path)]; !dup {
				t.byFold[strings.ToLower(e.Path)] = len(t.Entries)
			}
			t.Entries = append(t.Entries, e)
			if e.Dir {
				if err := walk(c, e.Path, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, "", 0); err != nil {
		return nil, err
	}
	return t, nil
}

// Lookup finds name ("/a/b" or "a/b"): the exact path first, then, for
// images without Rock Ridge (upper-case ISO 9660 names), ignoring case.
func (t *isoTree) Lookup(name string) (isoEntry, bool) {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	if i, ok := t.byPath[p]; ok {
		return t.Entries[i], true
	}
	if i, ok := t.byFold[strings.ToLower(p)]; ok {
		return t.Entries[i], true
	}
	return isoEntry{}, false
}

// Open returns a reader of the file's data.
func (e isoEntry) Open() (io.Reader, error) {
	if e.Dir {
		return nil, fmt.Errorf("%s is a directory", e.Path)
	}
	sr, ok := e.file.Reader().(*io.SectionReader)
	if !ok {
		return nil, fmt.Errorf("%s: no data reader", e.Path)
	}
	// the library's reader reads through the metadata budget: read the
	// same extent from the image directly
	_, off, n := sr.Outer()
	return io.NewSectionReader(e.data, off, n), nil
}
