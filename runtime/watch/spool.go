package watch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spool sub-directories.
const (
	Incoming   = "incoming"
	Processing = "processing"
	Done       = "done"
	Failed     = "failed"
)

// lockName is the file a watcher holds (flock) so that only one process
// claims jobs of a spool at a time.
const lockName = ".lightsout-watch.lock"

// idName is the file holding the folder's identity (store.Job.Folder),
// created by the first watcher: the same on every host mounting the
// folder, wherever it is mounted.
const idName = ".lightsout-folder-id"

// spool is the folder layout: DIR/incoming, processing, done, failed.
type spool struct {
	dir string
	// id identifies the folder in the store's job rows (store.Job.Folder).
	id   string
	lock *os.File
}

func (s *spool) path(sub string, name ...string) string {
	return filepath.Join(append([]string{s.dir, sub}, name...)...)
}

// openSpool creates the sub-directories if missing, checks that each is a
// writable directory, and takes the spool lock unless shared (several
// processes sharing a PostgreSQL store watch one folder together).
func openSpool(dir string, shared bool) (*spool, error) {
	if dir == "" {
		return nil, errors.New("watch: no folder given: pass DIR (or set [lightsout] watch_dir)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("watch folder %s: %w", dir, err)
	}
	s := &spool{dir: abs}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("watch folder %s is a file, not a directory: point the watch folder at a directory", abs)
	}
	for _, sub := range []string{Incoming, Processing, Done, Failed} {
		p := s.path(sub)
		if err := os.MkdirAll(p, 0o755); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENOTDIR) {
				return nil, fmt.Errorf("watch folder: %s exists but is not a directory: move it away so lightsout can create the %s/ folder", p, sub)
			}
			return nil, fmt.Errorf("watch folder: cannot create %s: %w (check the owner and permissions of %s)", p, err, abs)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("watch folder: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("watch folder: %s exists but is not a directory: move it away so lightsout can create the %s/ folder", p, sub)
		}
		// W_OK|X_OK: needed to rename files in and out.
		if err := syscall.Access(p, 0x2|0x1); err != nil {
			return nil, fmt.Errorf("watch folder: no permission to write %s: %w (give the lightsout user write access to %s)", p, err, abs)
		}
	}
	if s.id, err = folderID(abs); err != nil {
		return nil, err
	}
	if shared {
		return s, nil
	}
	f, err := os.OpenFile(filepath.Join(abs, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("watch folder: lock file: %w (check the permissions of %s)", err, abs)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("watch folder %s is already watched by another lightsout process (pid %s): stop it first, one process per folder with a SQLite store (processes sharing a PostgreSQL store, [database] connection = postgresql://..., may watch one folder together)", abs, strings.TrimSpace(string(holder)))
		}
		if !errors.Is(err, syscall.ENOLCK) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return nil, fmt.Errorf("watch folder: lock %s: %w", abs, err)
		}
		// No lock support on this file system: continue unlocked.
		f, _ = os.OpenFile(filepath.Join(abs, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	}
	if f != nil {
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lock = f
	return s, nil
}

// folderID reads the folder's identity from DIR/.lightsout-folder-id,
// creating the file with a random id when it is missing (processes
// starting at once agree: the file is created without replacing).
func folderID(dir string) (string, error) {
	p := filepath.Join(dir, idName)
	for range 3 {
		b, err := os.ReadFile(p)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
				return "", fmt.Errorf("watch folder: %s does not hold a folder id (up to 64 printable characters): restore it from a backup, or remove it to have a new one created (the jobs recorded under the old id are then no longer recognised as this folder's)", p)
			}
			return id, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("watch folder: read %s: %w (check the permissions of %s)", p, err, dir)
		}
		var r [16]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("watch folder: folder id: %w", err)
		}
		if err := writeNoReplace(p, []byte(hex.EncodeToString(r[:])+"\n")); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("watch folder: create %s: %w (give the lightsout user write access to %s)", p, err, dir)
		}
	}
	return "", fmt.Errorf("watch folder: %s keeps disappearing: leave it in place", p)
}

func (s *spool) close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // releases the flock
	s.lock = nil
	return err
}

// jobFile reports whether a name in incoming/ is a job to consider:
// dotfiles, *.tmp and *.part are ignored (writers write then rename).
func jobFile(name string) (consider bool, known bool) {
	lower := strings.ToLower(name)
	if strings.HasPrefix(name, ".") || strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".part") {
		return false, false
	}
	switch strings.ToLower(extOf(name)) {
	case ".json", ".yaml", ".yml", ".lua":
		return true, true
	}
	return false, false
}

// stem is the name without its job extension.
func stem(name string) string {
	switch strings.ToLower(extOf(name)) {
	case ".json", ".yaml", ".yml", ".lua":
		return name[:len(name)-len(extOf(name))]
	}
	return name
}

// resultName is the result file name of a job file name.
func resultName(name string) string { return stem(name) + ".result.json" }

// free returns name, or "stem~N.ext" with the smallest N, such that
// taken reports false.
func free(name string, taken func(string) bool) string {
	if !taken(name) {
		return name
	}
	st, ext := stem(name), name[len(stem(name)):]
	for i := 2; ; i++ {
		n := st + "~" + strconv.Itoa(i) + ext
		if !taken(n) {
			return n
		}
	}
}

// moveFree renames src into the spool folder sub under name, or under the
// next free "stem~N.ext" when another file (another process's, or a
// producer's) holds it or takes it first; it returns the name used.
func (s *spool) moveFree(src, sub, name string) (string, error) {
	var err error
	var dst string
	for range 100 {
		dst = free(name, func(n string) bool { return exists(s.path(sub, n)) })
		if err = renameNoReplace(src, s.path(sub, dst)); !errors.Is(err, os.ErrExist) {
			break
		}
	}
	return dst, err
}

// renameNoReplace renames old to new unless new exists (os.ErrExist):
// processes sharing a folder cannot overwrite each other's files. Where
// the file system lacks RENAME_NOREPLACE it falls back to a plain rename.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return os.Rename(old, new)
	}
	return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
}

// changedBefore reports whether p's inode changed (a rename does) before t.
func changedBefore(p string, t time.Time) bool {
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fi.ModTime().Before(t)
	}
	return time.Unix(st.Ctim.Sec, st.Ctim.Nsec).Before(t)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// fingerprint reads a job file (at most max bytes) and returns its
// content hash. A file larger than max is not read: its fingerprint is
// derived from its size, and data is nil.
func fingerprint(p string, max int64) (sum string, data []byte, size int64, err error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return "special:" + fi.Mode().Type().String(), nil, fi.Size(), nil
	}
	if fi.Size() > max {
		return "oversize:" + strconv.FormatInt(fi.Size(), 10), nil, fi.Size(), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", nil, 0, err
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return "", nil, 0, err
	}
	if int64(len(data)) > max {
		return "oversize:" + strconv.Itoa(len(data)), nil, int64(len(data)), nil
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:]), data, int64(len(data)), nil
}

// writeNoReplace writes data to p through a temporary file of a unique
// name and a rename that never replaces a file: os.ErrExist when p
// exists. Synced, so a crash leaves either nothing or the whole file.
func writeNoReplace(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = renameNoReplace(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syncDir flushes a directory so renames into it survive a power loss.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
