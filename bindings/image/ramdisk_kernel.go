package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// DefaultKernelPackage is the Debian package the deploy kernel comes from
// when the host has no kernel of its own in /boot: the generic amd64
// flavour (the -cloud flavour lacks the floppy and most hardware drivers).
const DefaultKernelPackage = "linux-image-amd64"

// kernelTree is a kernel image and its module tree.
type kernelTree struct {
	Version string // kernel release (uname -r), the /lib/modules/<Version> dir
	Kernel  string // vmlinuz
	ModDir  string // holds modules.dep, modules.builtin and the module files
	Source  string // "host", "explicit" or the Debian package name_version
	// extract, when set, makes the module files (paths relative to ModDir)
	// available first (they are unpacked from the cached package on demand).
	extract func(ctx context.Context, rels []string) error
}

// findKernel picks the deploy kernel: the explicit one, else the named
// Debian package, else the running host's, else DefaultKernelPackage.
func findKernel(ctx context.Context, o *RamdiskOptions) (*kernelTree, error) {
	switch {
	case o.Kernel != "" || o.ModulesDir != "":
		if o.Kernel == "" || o.ModulesDir == "" {
			return nil, invalidf("kernel: --kernel and --modules go together (the kernel image and its /lib/modules/<version> dir)")
		}
		if o.KernelPackage != "" {
			return nil, invalidf("kernel: give either --kernel/--modules or --kernel-package, not both")
		}
		for _, p := range []string{o.Kernel, filepath.Join(o.ModulesDir, "modules.dep")} {
			if _, err := os.Stat(p); err != nil {
				return nil, invalidf("kernel: %v (the modules dir must hold modules.dep: run depmod)", err)
			}
		}
		return &kernelTree{Version: filepath.Base(filepath.Clean(o.ModulesDir)), Kernel: o.Kernel,
			ModDir: o.ModulesDir, Source: "explicit"}, nil
	case o.KernelPackage != "":
		return debianKernel(ctx, o, o.KernelPackage)
	}
	if kt := hostKernel(); kt != nil {
		return kt, nil
	}
	return debianKernel(ctx, o, DefaultKernelPackage)
}

// hostKernel returns the running kernel when its image and modules.dep
// are installed and readable, else nil.
func hostKernel() *kernelTree {
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return nil
	}
	v := strings.TrimSpace(string(rel))
	kt := &kernelTree{Version: v, Kernel: "/boot/vmlinuz-" + v, ModDir: "/lib/modules/" + v, Source: "host"}
	for _, p := range []string{kt.Kernel, filepath.Join(kt.ModDir, "modules.dep")} {
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		f.Close()
	}
	return kt
}

// DefaultCacheDir is where downloaded kernels and their unpacked modules
// are kept: $XDG_CACHE_HOME/lightsout, else ~/.cache/lightsout.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "lightsout"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (set XDG_CACHE_HOME or --cache-dir)", err)
	}
	return filepath.Join(home, ".cache", "lightsout"), nil
}

var (
	concreteKernelPkg = regexp.MustCompile(`^linux-image-[0-9][^ ]*$`)
	debModulePath     = regexp.MustCompile(`^\./(?:usr/)?lib/modules/([^/]+)/(.+)$`)
	debKernelPath     = regexp.MustCompile(`^\./boot/vmlinuz-([^/]+)$`)
)

// debianKernel returns the kernel of Debian package name (a metapackage
// such as linux-image-amd64 is resolved to the linux-image-<abi>-amd64 it
// depends on; a path to a .deb file is used as it is), downloaded with
// `apt-get download` (never installed) into the cache and unpacked there:
// vmlinuz, modules.builtin/order and a modules.dep generated from the
// modules' own dependency records (the package ships none: depmod makes
// it on install). Module files are unpacked when first needed.
func debianKernel(ctx context.Context, o *RamdiskOptions, name string) (*kernelTree, error) {
	var deb, id string
	if strings.HasSuffix(name, ".deb") {
		st, err := os.Stat(name)
		if err != nil {
			return nil, invalidf("kernel package: %v", err)
		}
		deb = name
		id = strings.TrimSuffix(filepath.Base(name), ".deb") + fmt.Sprintf("-%d", st.Size())
	} else {
		pkg, ver, err := resolveKernelPackage(ctx, name)
		if err != nil {
			// offline: reuse the newest kernel of that name already cached
			if cached := newestCached(o.CacheDir, name); cached != "" {
				o.warn("kernel package: %v; using the cached %s", err, cached)
				id = cached
			} else {
				return nil, err
			}
		} else {
			id = pkg + "_" + ver
		}
		deb = filepath.Join(o.CacheDir, "kernel", id, "package.deb")
		if _, err := os.Stat(deb); err != nil {
			if err := aptDownload(ctx, o, strings.SplitN(id, "_", 2)[0], deb); err != nil {
				return nil, err
			}
		}
	}
	dir := filepath.Join(o.CacheDir, "kernel", id)
	// the stamp's name changes when indexDeb writes more or other files
	stamp := filepath.Join(dir, "index-v2.done")
	if _, err := os.Stat(stamp); err != nil {
		o.progress("unpacking "+filepath.Base(deb), 0, -1)
		if err := indexDeb(ctx, deb, dir); err != nil {
			return nil, fmt.Errorf("kernel package %s: %w", filepath.Base(deb), err)
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			return nil, err
		}
	}
	kernels, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return nil, fmt.Errorf("kernel package %s: %d kernel images in /boot, want one", filepath.Base(deb), len(kernels))
	}
	kver := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	kt := &kernelTree{Version: kver, Kernel: kernels[0], ModDir: filepath.Join(dir, "lib", "modules", kver), Source: id}
	kt.extract = func(ctx context.Context, rels []string) error {
		var missing []string
		for _, r := range rels {
			if _, err := os.Stat(filepath.Join(kt.ModDir, r)); err != nil {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		o.progress("unpacking modules", 0, -1)
		if err := extractDebModules(ctx, deb, kt.ModDir, kver, missing); err != nil {
			return fmt.Errorf("kernel package %s: %w", filepath.Base(deb), err)
		}
		return nil
	}
	return kt, nil
}

// resolveKernelPackage returns the concrete package and candidate version
// of name with apt-cache (a metapackage names its kernel package and
// version in its Depends).
func resolveKernelPackage(ctx context.Context, name string) (pkg, ver string, err error) {
	fields, err := aptShow(ctx, name)
	if err != nil {
		return "", "", err
	}
	if concreteKernelPkg.MatchString(name) {
		return name, fields["Version"], nil
	}
	for _, d := range strings.Split(fields["Depends"], ",") {
		alt := strings.TrimSpace(strings.SplitN(d, "|", 2)[0])
		dep, constraint, _ := strings.Cut(alt, " ")
		if !concreteKernelPkg.MatchString(dep) {
			continue
		}
		if v, ok := strings.CutPrefix(strings.Trim(constraint, "()"), "= "); ok {
			return dep, strings.TrimSpace(v), nil
		}
		f, err := aptShow(ctx, dep)
		if err != nil {
			return "", "", err
		}
		return dep, f["Version"], nil
	}
	return "", "", fmt.Errorf("kernel package: %s depends on no linux-image-<version> package (apt-get update?)", name)
}

// aptShow returns the fields of the candidate version of pkg.
func aptShow(ctx context.Context, pkg string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("kernel package: apt-cache show %s: %v (on Debian run apt-get update; else pass --kernel and --modules)", pkg, err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
			if _, dup := fields[k]; !dup {
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	if fields["Version"] == "" {
		return nil, fmt.Errorf("kernel package: apt-cache show %s printed no version", pkg)
	}
	return fields, nil
}

// newestCached returns the id (pkg_version dir) of the newest cached
// kernel package matching name, or "".
func newestCached(cacheDir, name string) string {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kernel", "linux-image-*_*"))
	var ids []string
	for _, d := range dirs {
		id := filepath.Base(d)
		pkg := strings.SplitN(id, "_", 2)[0]
		if _, err := os.Stat(filepath.Join(d, "package.deb")); err != nil {
			continue
		}
		if pkg == name || (!concreteKernelPkg.MatchString(name) && strings.HasSuffix(pkg, "-amd64") && !strings.Contains(pkg, "cloud")) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// aptDownload fetches package pkg with `apt-get download` into dest.
func aptDownload(ctx context.Context, o *RamdiskOptions, pkg, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".download-")
	if err != nil {
		return fmt.Errorf("cache dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	// apt's sandbox user may not write to the cache: the "unsandboxed"
	// warning is expected as root
	_ = os.Chmod(tmp, 0o755)
	o.progress("downloading "+pkg, 0, -1)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kernel package: apt-get download %s: %v: %s", pkg, err, strings.TrimSpace(lastLines(out.String(), 3)))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("kernel package: apt-get download %s left %d .deb files", pkg, len(debs))
	}
	return os.Rename(debs[0], dest)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// debTar runs fn over the data tar of a .deb (dpkg-deb --fsys-tarfile).
// fn returning errStopTar ends the walk early.
func debTar(ctx context.Context, deb string, fn func(h *tar.Header, r io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	// dpkg-deb decompresses in a child process: stop them both (a group),
	// or an early stop would wait for the child holding stderr open
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w (install dpkg, or pass --kernel and --modules)", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		out.Close()
		_ = cmd.Wait()
	}
	tr := tar.NewReader(bufio.NewReaderSize(out, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading the package: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		if err := fn(h, tr); err != nil {
			stop()
			if errors.Is(err, errStopTar) {
				return nil
			}
			return err
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

var errStopTar = errors.New("stop")

// safeRel reports whether a path from a package stays below its directory.
func safeRel(p string) bool {
	return p != "" && !path.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../") && !strings.Contains(p, "/../") &&
		!strings.HasSuffix(p, "/..") && path.Clean(p) == p
}

// writeStreamAtomic writes r to path through a temporary file and a rename,
// so that concurrent builds never see a partial file.
func writeStreamAtomic(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), p)
}

// indexDeb unpacks vmlinuz and the module metadata of a kernel package into
// dir and writes modules.dep, modules.softdep and the plain names of
// modules.alias from every module's .modinfo (depends, softdep, alias).
func indexDeb(ctx context.Context, deb, dir string) error {
	paths := map[string]string{}
	depends := map[string][]string{}
	var softdeps, aliases []string
	var kver string
	err := debTar(ctx, deb, func(h *tar.Header, r io.Reader) error {
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		if m := debKernelPath.FindStringSubmatch(h.Name); m != nil {
			return writeStreamAtomic(filepath.Join(dir, "boot", "vmlinuz-"+m[1]), r, 0o644)
		}
		m := debModulePath.FindStringSubmatch(h.Name)
		if m == nil {
			return nil
		}
		if !safeRel(m[1]) || !safeRel(m[2]) {
			return fmt.Errorf("unsafe path %q in the package", h.Name)
		}
		if kver != "" && m[1] != kver {
			return fmt.Errorf("two kernel versions in one package: %s and %s", kver, m[1])
		}
		kver = m[1]
		rel := m[2]
		switch {
		case rel == "modules.builtin" || rel == "modules.order" || rel == "modules.builtin.modinfo":
			return writeStreamAtomic(filepath.Join(dir, "lib", "modules", kver, rel), r, 0o644)
		case strings.Contains(path.Base(rel), ".ko"):
			raw, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			ko, err := decodeModule(rel, raw)
			if err != nil {
				return err
			}
			info, err := modinfo(ko)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			name := moduleName(rel)
			paths[name] = rel
			for _, sd := range info["softdep"] {
				softdeps = append(softdeps, "softdep "+name+" "+sd+"\n")
			}
			for _, a := range info["alias"] {
				if !strings.ContainsAny(a, "*?[: ") {
					aliases = append(aliases, "alias "+a+" "+name+"\n")
				}
			}
			for _, d := range info["depends"] {
				for _, dd := range strings.Split(d, ",") {
					if dd != "" {
						depends[name] = append(depends[name], dd)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if kver == "" {
		return fmt.Errorf("no /lib/modules tree: not a linux-image package")
	}
	var dep bytes.Buffer
	if err := writeModulesDep(&dep, paths, depends); err != nil {
		return err
	}
	modDir := filepath.Join(dir, "lib", "modules", kver)
	sort.Strings(softdeps)
	sort.Strings(aliases)
	for name, content := range map[string]string{"modules.softdep": strings.Join(softdeps, ""), "modules.alias": strings.Join(aliases, "")} {
		if err := writeStreamAtomic(filepath.Join(modDir, name), strings.NewReader(content), 0o644); err != nil {
			return err
		}
	}
	return writeStreamAtomic(filepath.Join(modDir, "modules.dep"), &dep, 0o644)
}

// extractDebModules unpacks the module files rels (relative to the module
// dir) of a kernel package into modDir.
func extractDebModules(ctx context.Context, deb, modDir, kver string, rels []string) error {
	want := map[string]bool{}
	for _, r := range rels {
		want[r] = true
	}
	err := debTar(ctx, deb, func(h *tar.Header, r io.Reader) error {
		m := debModulePath.FindStringSubmatch(h.Name)
		if h.Typeflag != tar.TypeReg || m == nil || m[1] != kver || !want[m[2]] || !safeRel(m[2]) {
			return nil
		}
		if err := writeStreamAtomic(filepath.Join(modDir, m[2]), r, 0o644); err != nil {
			return err
		}
		delete(want, m[2])
		if len(want) == 0 {
			return errStopTar
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(want) > 0 {
		var left []string
		for r := range want {
			left = append(left, r)
		}
		sort.Strings(left)
		return fmt.Errorf("modules not in the package: %s", strings.Join(left, ", "))
	}
	return nil
}
