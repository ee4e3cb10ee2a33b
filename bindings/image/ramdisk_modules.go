package image

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// DefaultRamdiskModules are the kernel modules the deploy agent needs on HPE
// ProLiant servers and in qemu VMs: storage (SATA/IDE, NVMe, virtio, SCSI
// disks and CD-ROMs, USB storage as iLO virtual media attaches, HPE Smart
// Array hpsa/smartpqi, the virtual floppy), network (virtio, Intel, Broadcom,
// Mellanox), the file systems of the virtual media and the EFI variables, and ext4
// (the root of partition images, mounted by image.install_bootloader).
var DefaultRamdiskModules = []string{
	// storage
	"ahci", "ata_piix", "nvme", "virtio_blk", "virtio_scsi", "virtio_pci", "sd_mod", "sr_mod",
	"usb-storage", "uas", "xhci_pci", "ehci_pci", "uhci_hcd", "hpsa", "smartpqi", "floppy",
	// network
	"virtio_net", "e1000", "e1000e", "tg3", "bnx2x", "i40e", "ice", "mlx5_core",
	// file systems
	"vfat", "iso9660", "nls_cp437", "nls_ascii", "efivarfs", "ext4",
}

// moduleAliases maps names people use for a module to its file's name
// (the file system "iso9660" is the module isofs).
var moduleAliases = map[string]string{"iso9660": "isofs"}

// moduleName is the kernel's name of a module file: the base name without
// .ko[.xz|.zst|.gz], dashes as underscores (usb-storage.ko is usb_storage).
func moduleName(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(b, ".ko"), "-", "_")
}

// moduleIndex is modules.dep, modules.builtin, modules.softdep and the
// plain-name part of modules.alias of a kernel.
type moduleIndex struct {
	byName  map[string]string   // module name -> path relative to the module dir
	deps    map[string][]string // path -> paths it depends on
	builtin map[string]bool     // module names built into the kernel
	// softdeps are the modules a module asks to be loaded before (pre) or
	// after (post) it without a symbol dependency, e.g. libcrc32c needs a
	// "crc32c" crypto driver: module name -> names or aliases.
	pre, post map[string][]string
	aliases   map[string][]string // plain alias (no wildcard) -> module names
}

func newModuleIndex() *moduleIndex {
	return &moduleIndex{byName: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{},
		pre: map[string][]string{}, post: map[string][]string{}, aliases: map[string][]string{}}
}

// readModuleIndex reads modDir/modules.dep and modDir/modules.builtin (the
// latter may be missing: then nothing is built in).
func readModuleIndex(modDir string) (*moduleIndex, error) {
	idx := newModuleIndex()
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w (run depmod, or pass --kernel-package)", err)
	}
	defer f.Close()
	if err := idx.parseDep(f); err != nil {
		return nil, fmt.Errorf("kernel modules: %s/modules.dep: %w", modDir, err)
	}
	for name, parse := range map[string]func([]byte){"modules.builtin": idx.parseBuiltin,
		"modules.softdep": idx.parseSoftdep, "modules.alias": idx.parseAlias} {
		if b, err := os.ReadFile(filepath.Join(modDir, name)); err == nil {
			parse(b)
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("kernel modules: %w", err)
		}
	}
	return idx, nil
}

// parseSoftdep reads depmod's modules.softdep: "softdep MOD pre: A B post: C".
func (idx *moduleIndex) parseSoftdep(b []byte) {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "softdep" {
			continue
		}
		idx.addSoftdep(moduleName(f[1]), strings.Join(f[2:], " "))
	}
}

// addSoftdep records a .modinfo softdep value ("pre: a b post: c").
func (idx *moduleIndex) addSoftdep(mod, spec string) {
	var into *map[string][]string
	for _, w := range strings.Fields(spec) {
		switch w {
		case "pre:":
			into = &idx.pre
		case "post:":
			into = &idx.post
		default:
			if into != nil {
				(*into)[mod] = append((*into)[mod], w)
			}
		}
	}
}

// parseAlias reads the plain aliases of modules.alias ("alias crc32c
// crc32c_generic"); device patterns (with wildcards or a bus prefix) are
// not needed to resolve softdeps and are skipped.
func (idx *moduleIndex) parseAlias(b []byte) {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "alias" {
			idx.addAlias(f[1], f[2])
		}
	}
}

func (idx *moduleIndex) addAlias(alias, mod string) {
	if strings.ContainsAny(alias, "*?[:") {
		return
	}
	idx.aliases[alias] = append(idx.aliases[alias], moduleName(mod))
}

// parseDep reads depmod's modules.dep format: "path: dep dep ...".
func (idx *moduleIndex) parseDep(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(t, ":")
		if !ok || mod == "" {
			return fmt.Errorf("line %d: expected \"module: deps\", got %q", line, t)
		}
		idx.byName[moduleName(mod)] = mod
		idx.deps[mod] = strings.Fields(deps)
	}
	return sc.Err()
}

func (idx *moduleIndex) parseBuiltin(b []byte) {
	for _, l := range strings.Fields(string(b)) {
		idx.builtin[moduleName(l)] = true
	}
}

// moduleResolution is the outcome of resolving a module list.
type moduleResolution struct {
	Paths   []string // module paths (relative to the module dir), dependencies first
	Missing []string // requested modules neither in modules.dep nor built in
	Builtin []string // requested modules built into the kernel
}

// resolve returns the requested modules and their dependencies in load
// order (each dependency before its users, otherwise in request order).
func (idx *moduleIndex) resolve(wanted []string) (moduleResolution, error) {
	var res moduleResolution
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("kernel modules: dependency cycle %s -> %s", strings.Join(chain, " -> "), p)
		case 2:
			return nil
		}
		state[p] = 1
		// soft pre-dependencies: optional, so one the kernel lacks is skipped
		for _, sp := range idx.softPaths(idx.pre[moduleName(p)]) {
			if state[sp] == 0 {
				if err := visit(sp, append(chain, p)); err != nil {
					return err
				}
			}
		}
		for _, d := range idx.deps[p] {
			if _, ok := idx.deps[d]; !ok {
				return fmt.Errorf("kernel modules: %s depends on %s, which modules.dep does not list", p, d)
			}
			if err := visit(d, append(chain, p)); err != nil {
				return err
			}
		}
		state[p] = 2
		res.Paths = append(res.Paths, p)
		for _, sp := range idx.softPaths(idx.post[moduleName(p)]) {
			if state[sp] == 0 {
				if err := visit(sp, append(chain, p)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	seen := map[string]bool{}
	for _, w := range wanted {
		name := moduleName(w)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		p, ok := idx.byName[name]
		if a, isAlias := moduleAliases[name]; isAlias && !ok && !idx.builtin[name] {
			name = a
			p, ok = idx.byName[name]
		}
		switch {
		case ok:
			if err := visit(p, nil); err != nil {
				return res, err
			}
		case idx.builtin[name]:
			res.Builtin = append(res.Builtin, w)
		default:
			res.Missing = append(res.Missing, w)
		}
	}
	return res, nil
}

// softPaths returns the module files of softdep names (module names or
// aliases), leaving out built-in and absent ones.
func (idx *moduleIndex) softPaths(names []string) []string {
	var out []string
	for _, n := range names {
		mods := []string{moduleName(n)}
		if _, ok := idx.byName[mods[0]]; !ok {
			mods = append([]string(nil), idx.aliases[n]...)
			sort.Strings(mods)
		}
		for _, m := range mods {
			if p, ok := idx.byName[m]; ok && !idx.builtin[m] {
				out = append(out, p)
			}
		}
	}
	return out
}

// uncompressedPath is the module's path in the initramfs (no .xz/.zst/.gz).
func uncompressedPath(p string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if s, ok := strings.CutSuffix(p, ext); ok {
			return s
		}
	}
	return p
}

// readModule returns the uncompressed bytes of a module file (.ko, .ko.xz
// or .ko.zst), checked to be an ELF relocatable object.
func readModule(file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return decodeModule(file, raw)
}

// decodeModule uncompresses the module raw read from file (by its name's
// extension) and checks it is an ELF object.
func decodeModule(file string, raw []byte) ([]byte, error) {
	var data []byte
	switch {
	case strings.HasSuffix(file, ".xz"):
		r, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if data, err = io.ReadAll(r); err != nil {
			return nil, fmt.Errorf("%s: xz: %w", file, err)
		}
	case strings.HasSuffix(file, ".zst"):
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		data, err = d.DecodeAll(raw, nil)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", file, err)
		}
	case strings.HasSuffix(file, ".gz"):
		return nil, fmt.Errorf("%s: gzip-compressed modules are not supported (Debian uses none, xz or zstd)", file)
	default:
		data = raw
	}
	if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("%s: not an ELF kernel module", file)
	}
	return data, nil
}

// modinfo returns the .modinfo key=value pairs of an uncompressed module
// (a key may repeat: alias, firmware).
func modinfo(ko []byte) (map[string][]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	b, err := s.Data()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			out[k] = append(out[k], v)
		}
	}
	return out, nil
}

// writeModulesDep writes a modules.dep from each module's direct
// dependencies (the .modinfo "depends" field modpost records, the same
// edges depmod derives from symbols): paths maps module name -> path.
func writeModulesDep(w io.Writer, paths map[string]string, depends map[string][]string) error {
	names := make([]string, 0, len(paths))
	for n := range paths {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return paths[names[i]] < paths[names[j]] })
	bw := bufio.NewWriter(w)
	for _, n := range names {
		var deps []string
		for _, d := range depends[n] {
			p, ok := paths[moduleName(d)]
			if !ok {
				return fmt.Errorf("module %s depends on %s, which is not in the package", n, d)
			}
			deps = append(deps, p)
		}
		fmt.Fprintf(bw, "%s:", paths[n])
		for _, d := range deps {
			fmt.Fprintf(bw, " %s", d)
		}
		bw.WriteString("\n")
	}
	return bw.Flush()
}

// coldplugBuses are the modalias prefixes of the buses the ramdisk's init
// scans and watches: a requested module with an alias on one of them is
// loaded only when such a device is there.
var coldplugBuses = []string{"pci:", "usb:", "virtio:", "acpi", "pnp:"}

// initModuleIndex writes the module index the ramdisk's init reads (paths
// as in the initramfs, abs(p)): modules.dep (each module's hard and soft
// dependencies, transitively, in load order), modules.alias (the device
// aliases of every module: "alias PATTERN path") and modules.boot (the
// requested modules no device alias binds: file systems, character sets,
// SCSI disk and CD-ROM drivers). aliases maps a path to its .modinfo
// aliases.
func (idx *moduleIndex) initIndex(paths, requested []string, aliases map[string][]string, abs func(string) string) (dep, alias, boot []byte, err error) {
	var d, a, b bytes.Buffer
	for _, p := range paths {
		r, err := idx.resolve([]string{moduleName(p)})
		if err != nil {
			return nil, nil, nil, err
		}
		fmt.Fprintf(&d, "%s:", abs(p))
		for _, q := range r.Paths {
			if q != p {
				fmt.Fprintf(&d, " %s", abs(q))
			}
		}
		d.WriteString("\n")
		for _, al := range aliases[p] {
			if strings.Contains(al, ":") && !strings.ContainsAny(al, " \t") {
				fmt.Fprintf(&a, "alias %s %s\n", al, abs(p))
			}
		}
	}
	for _, w := range requested {
		name := moduleName(w)
		p, ok := idx.byName[name]
		if !ok {
			p, ok = idx.byName[moduleAliases[name]]
		}
		if !ok {
			continue // built in or missing: reported by resolve
		}
		bound := false
		for _, al := range aliases[p] {
			for _, bus := range coldplugBuses {
				bound = bound || strings.HasPrefix(al, bus)
			}
		}
		if !bound {
			fmt.Fprintf(&b, "%s\n", abs(p))
		}
	}
	return d.Bytes(), a.Bytes(), b.Bytes(), nil
}
