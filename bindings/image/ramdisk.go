package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Names of the files BuildRamdisk writes into the output directory.
const (
	RamdiskKernelName    = "lightsout-deploy.kernel"
	RamdiskInitramfsName = "lightsout-deploy.initramfs"
	RamdiskISOName       = "lightsout-deploy.iso"
	// ramdiskStampName records the inputs of the files beside it (the cache).
	ramdiskStampName = ".lightsout-deploy.stamp"
	// ramdiskFormat changes whenever the initramfs layout changes, so that
	// cached outputs of an older layout are rebuilt.
	ramdiskFormat = "lightsout-ramdisk/3"
)

// Paths inside the initramfs.
const (
	RamdiskModulesLoad = "etc/lightsout/modules.load"
	// The module index init loads by (runtime/deployagent ModulesDepFile,
	// ModulesAliasFile, ModulesBootFile): only what the devices need.
	RamdiskModulesDep   = "etc/lightsout/modules.dep"
	RamdiskModulesAlias = "etc/lightsout/modules.alias"
	RamdiskModulesBoot  = "etc/lightsout/modules.boot"
	RamdiskInfoPath     = "etc/lightsout/ramdisk.json"
)

// DefaultRamdiskAppend is the deploy ISO's kernel command line: kernel
// messages on the screen (iLO remote console) and the first serial port
// (iLO virtual serial port, qemu -serial). The last console= is
// /dev/console, where the agent writes its lines: the serial port, so that
// SOL and the run record carry them.
const DefaultRamdiskAppend = "console=tty0 console=ttyS0"

// RamdiskOptions describes a deploy ramdisk. OutputDir is required; the
// kernel is, in order: Kernel+ModulesDir, KernelPackage, the running
// host's, DefaultKernelPackage.
type RamdiskOptions struct {
	// OutputDir receives lightsout-deploy.kernel, lightsout-deploy.initramfs
	// (and lightsout-deploy.iso); it is created if missing.
	OutputDir string
	// Binary is the static executable installed as /init (default: the
	// running executable, i.e. lightsout, whose agent runs as PID 1).
	Binary string
	// Kernel and ModulesDir name a kernel image and its module tree
	// (/lib/modules/<version>, holding modules.dep) explicitly.
	Kernel, ModulesDir string
	// KernelPackage is a Debian kernel package (linux-image-amd64,
	// linux-image-6.1.0-27-amd64) or a .deb file to take the kernel from.
	KernelPackage string
	// CacheDir keeps downloaded kernel packages (default DefaultCacheDir).
	CacheDir string
	// Modules are the kernel modules to include, with their dependencies
	// (default DefaultRamdiskModules). A module built into the kernel is
	// skipped; one the kernel does not have is a warning.
	Modules []string
	// MTime is the modification time of every member (seconds since the
	// epoch); 0 means $SOURCE_DATE_EPOCH when set, else 0.
	MTime int64
	// ISO also writes lightsout-deploy.iso booting the kernel and initramfs
	// under BIOS and UEFI with the command line Append
	// (default DefaultRamdiskAppend). ISOOptions supplies the other ISO
	// settings (UEFIFrom, EFILoader, ...; Kernel, Ramdisk, Append and
	// Progress are set here).
	ISO        bool
	Append     string
	ISOOptions ISOOptions
	// Tools are dynamically linked host executables (absolute paths) put
	// in the initramfs at the same paths with the shared libraries ldd
	// lists (e.g. TgtdTools for iscsi.start_iscsi_target).
	Tools []string
	// Force rebuilds even when the outputs match the inputs.
	Force bool
	// Progress, when set, is told each phase and its progress in bytes
	// (total -1 when unknown).
	Progress func(phase string, done, total int64)
	// Warn, when set, receives warnings (modules the kernel lacks, ...).
	Warn func(msg string)
}

func (o *RamdiskOptions) progress(phase string, done, total int64) {
	if o.Progress != nil {
		o.Progress(phase, done, total)
	}
}

func (o *RamdiskOptions) warn(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

// RamdiskResult describes a built (or reused) deploy ramdisk.
type RamdiskResult struct {
	Kernel, Initramfs, ISO             string // output paths (ISO "" without RamdiskOptions.ISO)
	KernelSize, InitramfsSize, ISOSize int64
	KernelVersion                      string   // uname -r of the deploy kernel
	KernelSource                       string   // "host", "explicit" or the Debian package_version
	Modules                            []string // module files in load order (paths in the initramfs)
	Missing, Builtin                   []string // requested modules the kernel lacks / has built in
	// Cached reports that the initramfs matched its inputs and was not rebuilt.
	Cached bool
	// Key is the hash of the inputs (kernel, binary, modules, layout).
	Key string
}

// RamdiskInfo is /etc/lightsout/ramdisk.json in the initramfs.
type RamdiskInfo struct {
	KernelVersion    string   `json:"kernel_version"`
	KernelSource     string   `json:"kernel_source"`
	LightsoutVersion string   `json:"lightsout_version"`
	InitSHA256       string   `json:"init_sha256"`
	Modules          []string `json:"modules"`
	Tools            []string `json:"tools,omitempty"` // host files copied in (Tools + their libraries)
	Missing          []string `json:"missing_modules,omitempty"`
	Builtin          []string `json:"builtin_modules,omitempty"`
}

type ramdiskStamp struct {
	Key             string `json:"key"`
	KernelSHA256    string `json:"kernel_sha256"`
	InitramfsSHA256 string `json:"initramfs_sha256"`
	ISOKey          string `json:"iso_key,omitempty"`
	ISOSHA256       string `json:"iso_sha256,omitempty"`
}

// BuildRamdisk builds the deploy kernel and initramfs (and ISO) into
// o.OutputDir. The initramfs is a gzip-compressed newc cpio holding /init
// (o.Binary), /dev/console, the dirs proc sys dev run tmp mnt, the modules
// under /lib/modules/<version>/, /etc/lightsout/modules.load (their absolute
// paths in load order) and /etc/lightsout/ramdisk.json. The same inputs give
// the same bytes; when the outputs already match the inputs nothing is
// rewritten (Result.Cached).
func BuildRamdisk(ctx context.Context, o RamdiskOptions) (*RamdiskResult, error) {
	if o.OutputDir == "" {
		return nil, invalidf("output dir: required (-o DIR)")
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("binary: %w (pass the lightsout binary explicitly)", err)
		}
		o.Binary = exe
	}
	if err := checkStaticBinary(o.Binary); err != nil {
		return nil, err
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	if o.Modules == nil {
		o.Modules = DefaultRamdiskModules
	}
	if o.MTime == 0 {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			t, err := strconv.ParseInt(s, 10, 64)
			if err != nil || t < 0 || t > 1<<32-1 {
				return nil, invalidf("SOURCE_DATE_EPOCH %q: expected seconds since 1970 (a 32-bit count)", s)
			}
			o.MTime = t
		}
	}
	if o.Append == "" {
		o.Append = DefaultRamdiskAppend
	}
	if err := os.MkdirAll(o.OutputDir, 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}

	kt, err := findKernel(ctx, &o)
	if err != nil {
		return nil, err
	}
	idx, err := readModuleIndex(kt.ModDir)
	if err != nil {
		return nil, err
	}
	res, err := idx.resolve(o.Modules)
	if err != nil {
		return nil, err
	}
	if len(res.Missing) > 0 {
		o.warn("kernel %s has no module %s: left out", kt.Version, strings.Join(res.Missing, ", "))
	}
	if kt.extract != nil {
		if err := kt.extract(ctx, res.Paths); err != nil {
			return nil, err
		}
	}

	r := &RamdiskResult{
		Kernel:        filepath.Join(o.OutputDir, RamdiskKernelName),
		Initramfs:     filepath.Join(o.OutputDir, RamdiskInitramfsName),
		KernelVersion: kt.Version, KernelSource: kt.Source,
		Missing: res.Missing, Builtin: res.Builtin,
	}
	modRoot := "lib/modules/" + kt.Version + "/"
	for _, p := range res.Paths {
		r.Modules = append(r.Modules, "/"+modRoot+uncompressedPath(p))
	}

	// the cache key: every input byte that reaches the outputs
	h := sha256.New()
	fmt.Fprintf(h, "%s\nmtime %d\nkernel %s %s\n", ramdiskFormat, o.MTime, kt.Version, kt.Source)
	kernelSum, err := fileSHA256(kt.Kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	initSum, err := fileSHA256(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	fmt.Fprintf(h, "vmlinuz %s\ninit %s\n", kernelSum, initSum)
	for _, p := range res.Paths {
		s, err := fileSHA256(filepath.Join(kt.ModDir, p))
		if err != nil {
			return nil, fmt.Errorf("kernel module: %w", err)
		}
		fmt.Fprintf(h, "module %s %s\n", p, s)
	}
	fmt.Fprintf(h, "missing %q builtin %q\n", res.Missing, res.Builtin)
	tools, err := resolveTools(ctx, o.Tools)
	if err != nil {
		return nil, err
	}
	for _, p := range tools {
		s, err := fileSHA256(p)
		if err != nil {
			return nil, fmt.Errorf("ramdisk tool: %w", err)
		}
		fmt.Fprintf(h, "tool %s %s\n", p, s)
	}
	r.Key = hex.EncodeToString(h.Sum(nil))
	isoKey := ""
	if o.ISO {
		r.ISO = filepath.Join(o.OutputDir, RamdiskISOName)
		isoKey = isoInputsKey(r.Key, o)
	}

	stampPath := filepath.Join(o.OutputDir, ramdiskStampName)
	st := readRamdiskStamp(stampPath)
	if !o.Force && st.Key == r.Key && fileHas(r.Kernel, st.KernelSHA256) && fileHas(r.Initramfs, st.InitramfsSHA256) {
		r.Cached = true
	} else {
		st = ramdiskStamp{Key: r.Key, KernelSHA256: kernelSum}
		if err := copyFileAtomic(kt.Kernel, r.Kernel); err != nil {
			return nil, fmt.Errorf("kernel: %w", err)
		}
		info := RamdiskInfo{KernelVersion: kt.Version, KernelSource: kt.Source, LightsoutVersion: binaryVersion(o.Binary),
			InitSHA256: initSum, Modules: r.Modules, Missing: res.Missing, Builtin: res.Builtin}
		info.Tools = tools
		sum, err := writeInitramfs(ctx, &o, kt, idx, res.Paths, info, r.Initramfs)
		if err != nil {
			return nil, err
		}
		st.InitramfsSHA256 = sum
		if !o.ISO {
			// an ISO left by an earlier --iso build holds the old initramfs
			if err := os.Remove(filepath.Join(o.OutputDir, RamdiskISOName)); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("output dir: removing the stale ISO: %w", err)
			}
		}
	}
	if o.ISO {
		if o.Force || !r.Cached || st.ISOKey != isoKey || !fileHas(r.ISO, st.ISOSHA256) {
			iso := o.ISOOptions
			iso.Kernel, iso.Ramdisk, iso.Append = r.Kernel, r.Initramfs, o.Append
			iso.Progress = func(done, total int64) { o.progress("writing "+RamdiskISOName, done, total) }
			tmp := r.ISO + ".tmp"
			if err := WriteISO(ctx, tmp, iso); err != nil {
				os.Remove(tmp)
				return nil, fmt.Errorf("deploy ISO: %w", err)
			}
			if err := os.Rename(tmp, r.ISO); err != nil {
				return nil, err
			}
			if st.ISOSHA256, err = fileSHA256(r.ISO); err != nil {
				return nil, err
			}
			st.ISOKey = isoKey
		}
	}
	if err := writeRamdiskStamp(stampPath, st); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		p string
		n *int64
	}{{r.Kernel, &r.KernelSize}, {r.Initramfs, &r.InitramfsSize}, {r.ISO, &r.ISOSize}} {
		if f.p == "" {
			continue
		}
		fi, err := os.Stat(f.p)
		if err != nil {
			return nil, err
		}
		*f.n = fi.Size()
	}
	return r, nil
}

// isoInputsKey hashes what the ISO adds to the kernel and initramfs.
func isoInputsKey(key string, o RamdiskOptions) string {
	i := o.ISOOptions
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\nappend %q\n%q %q %v %v %q %q %q %q %q",
		key, o.Append, i.UEFIFrom, i.EFILoader, i.BIOSOnly, i.UEFIOnly, i.VolumeID, i.Isolinux, i.Ldlinux,
		i.GrubMkstandalone, mapValues(i.Files))))
	return hex.EncodeToString(h[:])
}

// writeInitramfs writes the gzip-compressed newc archive to dest and
// returns its sha256.
func writeInitramfs(ctx context.Context, o *RamdiskOptions, kt *kernelTree, idx *moduleIndex, mods []string, info RamdiskInfo, dest string) (string, error) {
	a := newCPIOArchive()
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "mnt", "etc/lightsout", "lib/modules/" + kt.Version} {
		if err := a.add(cpioEntry{Name: d, Mode: cpioDir | 0o755}); err != nil {
			return "", err
		}
	}
	bin, err := os.Stat(o.Binary)
	if err != nil {
		return "", fmt.Errorf("binary: %w", err)
	}
	entries := []cpioEntry{
		{Name: "dev/console", Mode: cpioChar | 0o600, Major: 5, Minor: 1},
		{Name: "init", Mode: cpioReg | 0o755, Size: bin.Size(), Open: func() (io.ReadCloser, error) { return os.Open(o.Binary) }},
	}
	var load strings.Builder
	abs := func(p string) string { return "/lib/modules/" + kt.Version + "/" + uncompressedPath(p) }
	aliases := map[string][]string{}
	for _, p := range mods {
		ko, err := readModule(filepath.Join(kt.ModDir, p))
		if err != nil {
			return "", fmt.Errorf("kernel module: %w", err)
		}
		mi, err := modinfo(ko)
		if err != nil {
			return "", fmt.Errorf("kernel module %s: %w", p, err)
		}
		aliases[p] = mi["alias"]
		entries = append(entries, bytesEntry(strings.TrimPrefix(abs(p), "/"), 0o644, ko))
		load.WriteString(abs(p) + "\n")
	}
	dep, alias, boot, err := idx.initIndex(mods, o.Modules, aliases, abs)
	if err != nil {
		return "", err
	}
	entries = append(entries, bytesEntry(RamdiskModulesDep, 0o644, dep), bytesEntry(RamdiskModulesAlias, 0o644, alias),
		bytesEntry(RamdiskModulesBoot, 0o644, boot))
	te, err := toolEntries(info.Tools)
	if err != nil {
		return "", err
	}
	if len(info.Tools) > 0 {
		entries = append(entries, te...)
	}
	js, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return "", err
	}
	entries = append(entries, bytesEntry(RamdiskModulesLoad, 0o644, []byte(load.String())),
		bytesEntry(RamdiskInfoPath, 0o644, append(js, '\n')))
	for _, e := range entries {
		if err := a.add(e); err != nil {
			return "", err
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(dest), ".tmp-"+filepath.Base(dest)+"-")
	if err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	defer os.Remove(tmp.Name())
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	// no name, no mtime, OS "unknown": the header is the same everywhere
	// level 6: within 1% of level 9 in size at a twentieth of its time
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return "", err
	}
	total := a.dataSize()
	phase := "writing " + RamdiskInitramfsName
	o.progress(phase, 0, total)
	err = a.writeTo(&ctxWriter{ctx: ctx, w: zw}, o.MTime, func(done int64) { o.progress(phase, done, total) })
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("initramfs %s: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", fmt.Errorf("initramfs: %w", err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

func bytesEntry(name string, perm uint32, b []byte) cpioEntry {
	return cpioEntry{Name: name, Mode: cpioReg | perm, Size: int64(len(b)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// ctxWriter fails writes once ctx is done, so a cancelled build stops.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// checkStaticBinary refuses what cannot run as /init of the ramdisk: a
// non-amd64 ELF or one needing a program interpreter (dynamic linking).
func checkStaticBinary(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return invalidf("binary %s: %v: /init must be a static linux/amd64 executable", p, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return invalidf("binary %s: built for %v, the deploy kernel is amd64: build with GOARCH=amd64 CGO_ENABLED=0", p, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return invalidf("binary %s: ELF type %v is not an executable", p, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			interp := make([]byte, min(prog.Filesz, 256))
			_, _ = prog.ReadAt(interp, 0)
			return invalidf("binary %s is dynamically linked (interpreter %s) and cannot run in the ramdisk, "+
				"which has no C library: build it static with CGO_ENABLED=0 (`make build` does)", p, strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}

// binaryVersion is the module version and VCS revision recorded in a Go
// binary, or "unknown".
func binaryVersion(p string) string {
	bi, err := buildinfo.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + dirty
	}
	if v == "" {
		return "unknown"
	}
	return v
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileHas reports whether file p exists with the given sha256.
func fileHas(p, sum string) bool {
	if sum == "" {
		return false
	}
	s, err := fileSHA256(p)
	return err == nil && s == sum
}

func copyFileAtomic(src, dest string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeStreamAtomic(dest, f, 0o644)
}

func readRamdiskStamp(p string) ramdiskStamp {
	var st ramdiskStamp
	if b, err := os.ReadFile(p); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func writeRamdiskStamp(p string, st ramdiskStamp) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeStreamAtomic(p, strings.NewReader(string(b)+"\n"), 0o644); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	return nil
}
