package pxe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// loaderSources are where Debian's packages put the shared boot loaders
// (pxelinux, syslinux-common, grub-efi-amd64-signed, shim-signed, ipxe):
// the name in the TFTP root and the candidates, first found wins.
var loaderSources = []struct {
	name string
	from []string
}{
	{"pxelinux.0", []string{"/usr/lib/PXELINUX/pxelinux.0"}},
	{"lpxelinux.0", []string{"/usr/lib/PXELINUX/lpxelinux.0"}},
	{"ldlinux.c32", []string{"/usr/lib/syslinux/modules/bios/ldlinux.c32"}},
	{"libcom32.c32", []string{"/usr/lib/syslinux/modules/bios/libcom32.c32"}},
	{"libutil.c32", []string{"/usr/lib/syslinux/modules/bios/libutil.c32"}},
	{"chain.c32", []string{"/usr/lib/syslinux/modules/bios/chain.c32"}},
	{"bootx64.efi", []string{"/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"}},
	{"grubx64.efi", []string{"/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"}},
	{"undionly.kpxe", []string{"/usr/lib/ipxe/undionly.kpxe"}},
	{"ipxe.efi", []string{"/usr/lib/ipxe/ipxe.efi"}},
	{"snponly.efi", []string{"/usr/lib/ipxe/snponly.efi"}},
}

// Setup prepares the shared part of the boot roots: the boot loaders
// Debian's packages provide (copied into tftp_root when present, missing
// ones listed in the result), GRUB's master grub/grub.cfg, and with iPXE
// <http_root>/boot.ipxe. It is idempotent; every file is written
// atomically.
func (c Config) Setup() (missing []string, err error) {
	if err := os.MkdirAll(c.TFTPRoot, 0o755); err != nil {
		return nil, fmt.Errorf("[pxe] tftp_root: %w", err)
	}
	for _, l := range loaderSources {
		found := false
		for _, src := range l.from {
			data, err := os.ReadFile(src)
			if err != nil {
				continue
			}
			dst := filepath.Join(c.TFTPRoot, l.name)
			if old, err := os.ReadFile(dst); err == nil && string(old) == string(data) {
				found = true
				break
			}
			if err := writeAtomic(dst, data, 0o644); err != nil {
				return nil, fmt.Errorf("copy %s into [pxe] tftp_root: %w", src, err)
			}
			found = true
			break
		}
		if !found {
			missing = append(missing, l.name)
		}
	}
	if err := os.MkdirAll(filepath.Join(c.TFTPRoot, "grub"), 0o755); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(c.TFTPRoot, "grub", "grub.cfg"), []byte(grubMaster), 0o644); err != nil {
		return nil, err
	}
	if c.IPXE {
		if err := os.MkdirAll(c.HTTPRoot, 0o755); err != nil {
			return nil, fmt.Errorf("[deploy] http_root: %w", err)
		}
		if err := writeAtomic(filepath.Join(c.HTTPRoot, "boot.ipxe"), []byte(bootIPXE), 0o644); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// linkCount is the number of hard links of path (0 when it cannot be read).
func linkCount(path string) uint64 {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}

// removeIfEmpty removes dir when it is empty.
func removeIfEmpty(dir string) {
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) == 0 {
		os.Remove(dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
}
