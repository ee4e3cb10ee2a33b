package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
)

const (
	// DefaultFloppySize is a 1.44 MB floppy (2880 sectors of 512 bytes).
	DefaultFloppySize = 1474560
	// MinFloppySize and MaxFloppySize bound FloppyOptions.Size (the FAT12
	// range go-diskfs v1.9.4 writes correctly).
	MinFloppySize = 64 << 10
	MaxFloppySize = 12 << 20
	// FloppyLabel is the volume label IPA and diskimage-builder ramdisks look
	// for (/dev/disk/by-label/ir-vfd-dev).
	FloppyLabel = "ir-vfd-dev"
	// ParametersFile is the name of the parameters file on the floppy.
	ParametersFile = "parameters.txt"
)

// FloppyOptions tunes WriteFloppy. The zero value gives Ironic's floppy:
// 1.44 MB FAT12 labelled ir-vfd-dev holding only parameters.txt.
type FloppyOptions struct {
	// Size of the image in bytes, a multiple of 512 between MinFloppySize
	// and MaxFloppySize (0 = DefaultFloppySize).
	Size int64
	// Label overrides the volume label (0 = FloppyLabel), at most 11 bytes.
	Label string
	// Files are extra files: name on the floppy (may contain '/') -> local
	// source path.
	Files map[string]string
}

// FormatParams renders params the way parameters.txt holds them: one
// key=value per line in sorted key order, lines joined by "\n" without a
// trailing newline (as Ironic writes it).
func FormatParams(params map[string]string) ([]byte, error) {
	var b strings.Builder
	for i, k := range sortedKeys(params) {
		v := params[k]
		switch {
		case k == "":
			return nil, invalidf("parameter with an empty key: every parameter needs a name")
		case strings.ContainsAny(k, "=\r\n"):
			return nil, invalidf("parameter key %q contains '=' or a line break: use a plain name", k)
		case strings.ContainsAny(v, "\r\n"):
			return nil, invalidf("parameter %q: value contains a line break: parameters.txt holds one key=value per line", k)
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return []byte(b.String()), nil
}

// ParseParams parses parameters.txt content (key=value lines; blank lines
// and lines without '=' are ignored, CRs are stripped).
func ParseParams(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cleanImageName validates the name of a file placed in an image and returns
// it without a leading slash.
func cleanImageName(field, name string) (string, error) {
	n := strings.TrimPrefix(filepath.ToSlash(name), "/")
	switch {
	case n == "":
		return "", invalidf("%s: empty file name", field)
	case strings.ContainsAny(n, "\x00\\\r\n"):
		return "", invalidf("%s %q: name contains a NUL, backslash or line break", field, name)
	case path.Clean(n) != n:
		return "", invalidf("%s %q: use a clean relative name such as dir/file.txt", field, name)
	case n == ".." || strings.HasPrefix(n, "../"):
		return "", invalidf("%s %q: name leaves the image root", field, name)
	case strings.Count(n, "/") > 6:
		return "", invalidf("%s %q: more than 6 directory levels; keep the tree shallow", field, name)
	}
	return n, nil
}

// WriteFloppy writes a FAT12 parameters floppy to path: parameters.txt
// (FormatParams) plus opts.Files, volume label ir-vfd-dev. The image is
// assembled in memory (at most MaxFloppySize), checked for lost clusters and
// renamed into place, so path never holds a half-written image.
func WriteFloppy(ctx context.Context, path string, params map[string]string, opts FloppyOptions) error {
	img, err := BuildFloppy(ctx, params, opts)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, img)
}

// BuildFloppy is WriteFloppy returning the image bytes instead of writing a
// file.
func BuildFloppy(ctx context.Context, params map[string]string, opts FloppyOptions) ([]byte, error) {
	content, err := FormatParams(params)
	if err != nil {
		return nil, fmt.Errorf("floppy: %w", err)
	}
	files := []fatFile{{name: ParametersFile, data: content}}
	for _, name := range sortedKeys(opts.Files) {
		n, err := cleanImageName("floppy file", name)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(n, ParametersFile) {
			return nil, invalidf("floppy file %q: %s is generated from the parameters; pass values as parameters instead", name, ParametersFile)
		}
		files = append(files, fatFile{name: n, source: opts.Files[name]})
	}
	size := opts.Size
	if size == 0 {
		size = DefaultFloppySize
	}
	if size < MinFloppySize || size > MaxFloppySize || size%512 != 0 {
		return nil, invalidf("floppy size %d: must be a multiple of 512 between %d and %d bytes (default %d = 1.44 MB)",
			size, MinFloppySize, MaxFloppySize, DefaultFloppySize)
	}
	label := opts.Label
	if label == "" {
		label = FloppyLabel
	}
	return buildFAT(ctx, size, label, files)
}

// fatFile is one file to put on a FAT image: either data or a source path.
type fatFile struct {
	name   string
	data   []byte
	source string
}

// buildFAT makes a FAT12 image of size bytes holding files and returns it.
func buildFAT(ctx context.Context, size int64, label string, files []fatFile) ([]byte, error) {
	return buildFATAt(ctx, size, label, files, time.Time{})
}

// buildFATAt is buildFAT with every file and directory dated mtime and a
// volume serial that does not come from the clock, when mtime is not zero
// (a reproducible image).
func buildFATAt(ctx context.Context, size int64, label string, files []fatFile, mtime time.Time) ([]byte, error) {
	if len(label) > 11 {
		return nil, invalidf("volume label %q is longer than 11 bytes", label)
	}
	mem := newMemBackend(size)
	fsys, err := fat12.Create(mem, size, 0, 512, label, !mtime.IsZero())
	if err != nil {
		return nil, fmt.Errorf("create FAT12 filesystem of %d bytes: %w", size, err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := checkFATSpace(mem.Bytes(), f); err != nil {
			return nil, err
		}
		if err := putFATFile(fsys, f); err != nil {
			return nil, err
		}
	}
	if _, err := reclaimLostClusters(mem.Bytes()); err != nil {
		return nil, fmt.Errorf("check FAT image: %w", err)
	}
	if !mtime.IsZero() {
		if err := stampFATDates(mem.Bytes(), mtime); err != nil {
			return nil, fmt.Errorf("date FAT image: %w", err)
		}
	}
	return mem.Bytes(), nil
}

// checkFATSpace fails with a clear error when f cannot fit in the free
// clusters of img (go-diskfs would write past the end of the image).
func checkFATSpace(img []byte, f fatFile) error {
	g, err := parseFATGeometry(img)
	if err != nil {
		return err
	}
	size := int64(len(f.data))
	if f.source != "" {
		st, err := os.Stat(f.source)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.name, err)
		}
		size = st.Size()
	}
	fat := img[g.fatOffset(0):]
	free := int64(0)
	for c := uint32(2); c <= g.maxCluster; c++ {
		if g.get(fat, c) == 0 {
			free++
		}
	}
	cb := int64(g.clusterBytes())
	need := (size + cb - 1) / cb
	need += int64(strings.Count(f.name, "/")) // a new directory takes a cluster
	if need > free {
		return invalidf("file %s (%d bytes) does not fit: %d bytes free in the %d-byte image; choose a larger size",
			f.name, size, free*cb, len(img))
	}
	return nil
}

func putFATFile(fsys filesystem.FileSystem, f fatFile) error {
	p := "/" + f.name
	if dir := path.Dir(p); dir != "/" {
		if err := fsys.Mkdir(dir); err != nil {
			return fmt.Errorf("mkdir %s in FAT image: %w", dir, err)
		}
	}
	var src io.Reader
	if f.source != "" {
		in, err := os.Open(f.source)
		if err != nil {
			return fmt.Errorf("file %s: %w", f.name, err)
		}
		defer in.Close()
		if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
			return invalidf("file %s: source %s is not a regular file", f.name, f.source)
		}
		src = in
	} else {
		src = strings.NewReader(string(f.data))
	}
	out, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("create %s in FAT image: %w", p, err)
	}
	// large writes: go-diskfs reallocates the cluster chain on every Write
	if _, err := io.CopyBuffer(writerOnly{out}, src, make([]byte, 1<<20)); err != nil {
		_ = out.Close()
		if strings.Contains(err.Error(), "allocate") {
			return fmt.Errorf("write %s: the image is full; choose a larger size: %w", p, err)
		}
		return fmt.Errorf("write %s in FAT image: %w", p, err)
	}
	return out.Close()
}

// writerOnly hides ReadFrom so io.CopyBuffer uses our buffer size.
type writerOnly struct{ io.Writer }

// writeSparse writes data to the empty file f, skipping all-zero 4 KiB
// blocks (a fresh FAT image is mostly zeros): the file is sized with
// Truncate and reads back identically.
func writeSparse(f *os.File, data []byte) error {
	const blk = 4096
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	zero := make([]byte, blk)
	isZero := func(b []byte) bool { return bytes.Equal(b, zero[:len(b)]) }
	for off := 0; off < len(data); {
		if isZero(data[off:min(off+blk, len(data))]) {
			off += blk
			continue
		}
		end := off + blk
		for end < len(data) && !isZero(data[end:min(end+blk, len(data))]) {
			end += blk
		}
		end = min(end, len(data))
		if _, err := f.WriteAt(data[off:end], int64(off)); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSparse(tmp, data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// openFAT opens a FAT12 or FAT16 image read-only.
func openFAT(p string) (filesystem.FileSystem, func() error, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	b := file.New(f, true)
	if fsys, err := fat12.Read(b, st.Size(), 0, 512); err == nil {
		return fsys, f.Close, nil
	}
	fsys, err := fat16.Read(b, st.Size(), 0, 512)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a FAT12/FAT16 image: %w", p, err)
	}
	return fsys, f.Close, nil
}

// ReadFloppyFile reads the file name (e.g. "parameters.txt") from the FAT
// image at path.
func ReadFloppyFile(p, name string) ([]byte, error) {
	fsys, closeFn, err := openFAT(p)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return readFATFile(fsys, p, name)
}

// readFATFile reads name from fsys. go-diskfs v1.9.4 may return the file
// padded to a whole number of 512-byte blocks (a 1000-byte file reads as
// 1024 bytes), so the data is cut to the size in the directory entry.
func readFATFile(fsys filesystem.FileSystem, img, name string) ([]byte, error) {
	rel := isoPath(name)
	st, err := fsys.Stat(rel)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, img, err)
	}
	if st.IsDir() {
		return nil, invalidf("%s in %s is a directory", name, img)
	}
	if st.Size() > MaxFloppySize {
		return nil, fmt.Errorf("%s in %s: size %d exceeds the image", name, img, st.Size())
	}
	f, err := fsys.OpenFile("/"+rel, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, img, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, st.Size()))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, img, err)
	}
	if int64(len(data)) != st.Size() {
		return nil, fmt.Errorf("read %s from %s: got %d of %d bytes", name, img, len(data), st.Size())
	}
	return data, nil
}

// ReadFloppyParams reads parameters.txt from the FAT image at path and
// parses it (ParseParams).
func ReadFloppyParams(path string) (map[string]string, error) {
	data, err := ReadFloppyFile(path, ParametersFile)
	if err != nil {
		return nil, err
	}
	return ParseParams(data), nil
}
