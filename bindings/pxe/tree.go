package pxe

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrRefused is returned for a boot file request outside what the servers
// may serve: a path with "..", one that resolves outside the root (a
// symlink escape), or a file that belongs to no node directory and is not
// a shared boot loader.
var ErrRefused = errors.New("refused")

// uuidRE matches a node directory name.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// SharedFiles are the files outside node directories the boot servers
// serve: the boot loaders Setup copies into the root and the shared
// configuration that loads a node's config by MAC.
var SharedFiles = []string{
	"pxelinux.0", "lpxelinux.0", "ldlinux.c32", "libcom32.c32", "libutil.c32", "chain.c32",
	"bootx64.efi", "grubx64.efi", "undionly.kpxe", "ipxe.efi", "snponly.efi",
	"boot.ipxe", "grub/grub.cfg",
}

// Tree is the path policy of the boot servers (TFTP and HTTP) over one
// root: they serve only regular files inside a node directory
// (<root>/<node uuid>/<file>, possibly reached through a MAC-named link)
// and the SharedFiles.
type Tree struct {
	Root string
}

// Open resolves name (as a client sent it) and opens the file, or returns
// an error wrapping ErrRefused (with the reason) or fs.ErrNotExist.
func (t Tree) Open(name string) (*os.File, os.FileInfo, error) {
	p, err := t.Resolve(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrRefused, name)
	}
	return f, fi, nil
}

// Resolve maps a requested name to a file path under the root, applying
// the policy. A leading "/" is relative to the root (as tftpd -s does), and
// an absolute path that names the root itself is accepted too (GRUB
// configurations often spell /tftpboot/...).
func (t Tree) Resolve(name string) (string, error) {
	root, err := filepath.EvalSymlinks(t.Root)
	if err != nil {
		return "", fmt.Errorf("boot root %s: %w", t.Root, err)
	}
	n := strings.ReplaceAll(name, `\`, "/")
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("%w: %q contains NUL", ErrRefused, name)
	}
	for _, r := range []string{filepath.ToSlash(t.Root), filepath.ToSlash(root)} {
		if rest, ok := strings.CutPrefix(n, strings.TrimSuffix(r, "/")+"/"); ok {
			n = rest
			break
		}
	}
	n = strings.TrimLeft(n, "/")
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q climbs out with \"..\"", ErrRefused, name)
		}
	}
	n = path.Clean(n)
	if n == "." || n == "" {
		return "", fmt.Errorf("%w: %q names the root", ErrRefused, name)
	}
	p, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(n)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", name, os.ErrNotExist)
		}
		return "", err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %q resolves outside the boot root", ErrRefused, name)
	}
	if !allowed(filepath.ToSlash(rel)) {
		return "", fmt.Errorf("%w: %q is neither a node's boot file nor a shared boot loader", ErrRefused, name)
	}
	return p, nil
}

// allowed reports whether rel (resolved, relative to the root) may be served.
func allowed(rel string) bool {
	parts := strings.Split(rel, "/")
	if len(parts) == 2 && uuidRE.MatchString(parts[0]) && !strings.HasPrefix(parts[1], ".") {
		return true
	}
	for _, s := range SharedFiles {
		if rel == s {
			return true
		}
	}
	return false
}
