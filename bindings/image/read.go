package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// maxReadISOFile bounds ReadISOFile (it returns the whole file).
const maxReadISOFile = 64 << 20

// ReadISOFile reads the file name (e.g. "isolinux/isolinux.cfg" or
// "EFI/BOOT/grub.cfg", with or without a leading slash) from the ISO image
// at path. Rock Ridge names are used when the image has them. Files larger
// than 64 MiB are refused.
func ReadISOFile(path, name string) ([]byte, error) {
	tree, closeFn, err := openISOTree(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	e, ok := tree.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%s in %s: %w", name, path, os.ErrNotExist)
	}
	if e.Dir {
		return nil, fmt.Errorf("%s in %s is a directory", name, path)
	}
	if e.Size > maxReadISOFile {
		return nil, fmt.Errorf("%s in %s is %d bytes; ReadISOFile reads at most %d", name, path, e.Size, maxReadISOFile)
	}
	r, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", name, path, err)
	}
	data, err := io.ReadAll(io.LimitReader(r, e.Size))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", name, path, err)
	}
	if int64(len(data)) != e.Size {
		return nil, fmt.Errorf("read %s in %s: got %d of %d bytes", name, path, len(data), e.Size)
	}
	return data, nil
}

// KernelCmdline returns the kernel command line of the boot ISO at isoPath:
// the APPEND line of isolinux/isolinux.cfg without its initrd= argument or,
// for UEFI-only images, the arguments after the kernel path on the first
// linux/linuxefi line of EFI/BOOT/grub.cfg (then boot/grub/grub.cfg).
// Whitespace is normalised to single spaces.
func KernelCmdline(isoPath string) (string, error) {
	if data, err := ReadISOFile(isoPath, "isolinux/isolinux.cfg"); err == nil {
		if line, ok := isolinuxAppend(data); ok {
			return line, nil
		}
	}
	for _, cfg := range []string{"EFI/BOOT/grub.cfg", "boot/grub/grub.cfg"} {
		if data, err := ReadISOFile(isoPath, cfg); err == nil {
			if line, ok := grubLinuxArgs(data); ok {
				return line, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no kernel command line found (no APPEND in isolinux/isolinux.cfg, "+
		"no linux line in EFI/BOOT/grub.cfg or boot/grub/grub.cfg)", isoPath)
}

// isolinuxAppend returns the arguments of the APPEND line of the default
// label (or the first APPEND) without initrd=.
func isolinuxAppend(cfg []byte) (string, bool) {
	def := ""
	label := ""
	appends := map[string]string{}
	first, found := "", false
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch strings.ToLower(fields[0]) {
		case "default":
			if len(fields) > 1 {
				def = fields[1]
			}
		case "label":
			if len(fields) > 1 {
				label = fields[1]
			}
		case "append":
			var args []string
			for _, a := range fields[1:] {
				if !strings.HasPrefix(a, "initrd=") {
					args = append(args, a)
				}
			}
			line := strings.Join(args, " ")
			if _, ok := appends[label]; !ok {
				appends[label] = line
			}
			if !found {
				first, found = line, true
			}
		}
	}
	if line, ok := appends[def]; ok && def != "" {
		return line, true
	}
	return first, found
}

// grubLinuxArgs returns the arguments after the kernel path of the first
// linux/linuxefi command.
func grubLinuxArgs(cfg []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (fields[0] == "linux" || fields[0] == "linuxefi" || fields[0] == "linux16") {
			return strings.Join(fields[2:], " "), true
		}
	}
	return "", false
}

// FileEntry is one file or directory of an inspected image.
type FileEntry struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir,omitempty"`
}

// Info describes an ISO or FAT image (Inspect).
type Info struct {
	Path     string            `json:"path"`
	Kind     string            `json:"kind"` // "iso" or "fat"
	Size     int64             `json:"size"`
	Label    string            `json:"label"` // ISO volume id or FAT volume label
	ElTorito []BootEntry       `json:"el_torito,omitempty"`
	Files    []FileEntry       `json:"files"`
	Params   map[string]string `json:"params,omitempty"` // parameters.txt of a floppy
	// KernelCmdline of a boot ISO (empty when it has none).
	KernelCmdline string `json:"kernel_cmdline,omitempty"`
}

// Inspect describes the ISO or FAT image at path: El Torito entries, files,
// parameters and kernel command line.
func Inspect(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	info := &Info{Path: path, Size: st.Size(), Files: []FileEntry{}}
	head := make([]byte, 512)
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, fmt.Errorf("%s: too small to be an image", path)
	}
	vd := make([]byte, 6)
	if _, err := f.ReadAt(vd, 16*isoBlock); err == nil && string(vd[1:6]) == "CD001" {
		return inspectISO(f, info)
	}
	if _, err := parseBPB(head, st.Size()); err == nil {
		return inspectFAT(path, info)
	}
	return nil, fmt.Errorf("%s is neither an ISO 9660 nor a FAT12/FAT16 image", path)
}

func inspectISO(f *os.File, info *Info) (*Info, error) {
	info.Kind = "iso"
	tree, err := readISOTree(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Path, err)
	}
	info.Label = tree.Label
	byLBA := map[uint32]string{}
	for _, e := range tree.Entries {
		info.Files = append(info.Files, FileEntry{Path: e.Path, Size: e.Size, Dir: e.Dir})
		if !e.Dir {
			if _, seen := byLBA[e.LBA]; !seen {
				byLBA[e.LBA] = e.Path
			}
		}
	}
	boot, _, err := readElTorito(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Path, err)
	}
	for i := range boot {
		boot[i].File = byLBA[boot[i].LBA]
	}
	info.ElTorito = boot
	if line, err := KernelCmdline(info.Path); err == nil {
		info.KernelCmdline = line
	}
	return info, nil
}

func inspectFAT(path string, info *Info) (*Info, error) {
	info.Kind = "fat"
	fsys, closeFn, err := openFAT(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	info.Label = strings.TrimRight(fsys.Label(), " ")
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > 16 {
			return errors.New("FAT directory tree too deep")
		}
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			name := e.Name()
			if name == "." || name == ".." {
				continue
			}
			full := name
			if dir != "." {
				full = dir + "/" + name
			}
			fe := FileEntry{Path: full, Dir: e.IsDir()}
			if fi, err := e.Info(); err == nil && !e.IsDir() {
				fe.Size = fi.Size()
			}
			info.Files = append(info.Files, fe)
			if e.IsDir() {
				if err := walk(full, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(".", 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if data, err := readFATFile(fsys, path, ParametersFile); err == nil {
		info.Params = ParseParams(data)
	}
	return info, nil
}
