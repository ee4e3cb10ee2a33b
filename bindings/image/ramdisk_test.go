package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// ramdiskTestCache is where the tests keep the downloaded Debian kernel.
const ramdiskTestCache = "/var/tmp/lightsout-test-cache"

func TestResolveModules(t *testing.T) {
	const dep = `kernel/drivers/ata/ahci.ko: kernel/drivers/ata/libahci.ko kernel/drivers/ata/libata.ko
kernel/drivers/ata/libahci.ko: kernel/drivers/ata/libata.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/usb/storage/usb-storage.ko.xz: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/usb/core/usbcore.ko
kernel/drivers/usb/core/usbcore.ko:
kernel/fs/isofs/isofs.ko:
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko.xz
kernel/a.ko: kernel/b.ko
kernel/b.ko: kernel/a.ko
kernel/bad.ko: kernel/nowhere.ko
`
	idx := newModuleIndex()
	if err := idx.parseDep(strings.NewReader(dep)); err != nil {
		t.Fatal(err)
	}
	idx.parseSoftdep([]byte("softdep libcrc32c pre: crc32c\nsoftdep usb_storage post: uas nothere\n"))
	idx.parseAlias([]byte("alias crc32c crc32c_generic\nalias crc32c crc32c-intel\nalias pci:v00008086d* e1000\n"))
	idx.parseBuiltin([]byte("kernel/fs/fat/vfat.ko\nkernel/drivers/nvme/host/nvme.ko\n"))
	for _, tc := range []struct {
		name    string
		wanted  []string
		paths   []string
		missing []string
		builtin []string
		err     string
	}{
		{name: "dependencies first, each once",
			wanted: []string{"sd_mod", "ahci", "usb-storage"},
			paths: []string{"kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/scsi/sd_mod.ko", "kernel/drivers/ata/libata.ko",
				"kernel/drivers/ata/libahci.ko", "kernel/drivers/ata/ahci.ko", "kernel/drivers/usb/core/usbcore.ko",
				"kernel/drivers/usb/storage/usb-storage.ko.xz", "kernel/drivers/usb/storage/uas.ko"}},
		{name: "dash and underscore name one module", wanted: []string{"usb_storage", "usb-storage"},
			paths: []string{"kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/usb/core/usbcore.ko", "kernel/drivers/usb/storage/usb-storage.ko.xz",
				"kernel/drivers/usb/storage/uas.ko"}},
		{name: "soft pre-dependency through an alias", wanted: []string{"libcrc32c"},
			paths: []string{"kernel/crypto/crc32c_generic.ko", "kernel/arch/x86/crypto/crc32c-intel.ko", "kernel/lib/libcrc32c.ko"}},
		{name: "built-in skipped, absent reported", wanted: []string{"vfat", "nvme", "no_such", "libata"},
			paths:   []string{"kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/ata/libata.ko"},
			missing: []string{"no_such"}, builtin: []string{"vfat", "nvme"}},
		{name: "alias", wanted: []string{"iso9660"}, paths: []string{"kernel/fs/isofs/isofs.ko"}},
		{name: "cycle", wanted: []string{"a"}, err: "dependency cycle"},
		{name: "dependency not listed", wanted: []string{"bad"}, err: "does not list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := idx.resolve(tc.wanted)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Paths, tc.paths) || !slices.Equal(res.Missing, tc.missing) || !slices.Equal(res.Builtin, tc.builtin) {
				t.Fatalf("got paths %q missing %q builtin %q\nwant paths %q missing %q builtin %q",
					res.Paths, res.Missing, res.Builtin, tc.paths, tc.missing, tc.builtin)
			}
		})
	}
	if err := idx.parseDep(strings.NewReader("no colon here\n")); err == nil {
		t.Fatal("modules.dep line without a colon accepted")
	}
}

func TestSafeRel(t *testing.T) {
	for p, want := range map[string]bool{"kernel/fs/fat/vfat.ko": true, "modules.dep": true, "6.1.0-1-amd64": true,
		"": false, "..": false, "../x": false, "a/../../x": false, "a/..": false, "/etc/passwd": false, "a//b": false, "./a": false} {
		if got := safeRel(p); got != want {
			t.Errorf("safeRel(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWriteModulesDep(t *testing.T) {
	paths := map[string]string{"ahci": "kernel/ata/ahci.ko", "libata": "kernel/ata/libata.ko", "libahci": "kernel/ata/libahci.ko"}
	var b bytes.Buffer
	if err := writeModulesDep(&b, paths, map[string][]string{"ahci": {"libahci", "libata"}, "libahci": {"libata"}}); err != nil {
		t.Fatal(err)
	}
	want := "kernel/ata/ahci.ko: kernel/ata/libahci.ko kernel/ata/libata.ko\nkernel/ata/libahci.ko: kernel/ata/libata.ko\nkernel/ata/libata.ko:\n"
	if b.String() != want {
		t.Fatalf("modules.dep:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := writeModulesDep(discardWriter{}, paths, map[string][]string{"ahci": {"gone"}}); err == nil {
		t.Fatal("dependency outside the package accepted")
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// probeBinary builds testdata/ramdisk-probe (a static /init that loads
// modules.load and reports) and returns its path.
func probeBinary(t testing.TB) string {
	t.Helper()
	testenv.RequireTools(t, "go")
	bin := filepath.Join(t.TempDir(), "ramdisk-probe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/ramdisk-probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/ramdisk-probe: %v\n%s", err, out)
	}
	return bin
}

func TestRamdiskRefusesBadBinary(t *testing.T) {
	dynamic := ""
	for _, c := range []string{"/bin/true", "/usr/bin/true", "/bin/sh"} {
		if f, err := elf.Open(c); err == nil {
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					dynamic = c
				}
			}
			f.Close()
		}
		if dynamic != "" {
			break
		}
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{notELF: "static linux/amd64 executable"}
	if dynamic != "" {
		cases[dynamic] = "CGO_ENABLED=0"
	} else if testenv.Integration() {
		t.Fatal("no dynamically linked /bin/true or /bin/sh to test with")
	}
	for bin, want := range cases {
		out := t.TempDir()
		_, err := BuildRamdisk(context.Background(), RamdiskOptions{OutputDir: out, Binary: bin, CacheDir: t.TempDir()})
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("binary %s: err %v, want ErrInvalid mentioning %q", bin, err, want)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Errorf("binary %s: refused build left %d files in the output dir", bin, len(ents))
		}
	}
}

var aptUpdateOnce sync.Once

// requireKernel skips (fails under LIGHTSOUT_INTEGRATION=1) unless
// Debian's generic kernel package is cached or can be fetched. The tests
// build from it (not from the host's kernel) so that they check the same
// kernel everywhere.
func requireKernel(t testing.TB) {
	t.Helper()
	if newestCached(ramdiskTestCache, DefaultKernelPackage) != "" {
		return
	}
	testenv.RequireTools(t, "apt-get", "apt-cache", "dpkg-deb")
	ctx := context.Background()
	_, _, err := resolveKernelPackage(ctx, DefaultKernelPackage)
	if err != nil && os.Getuid() == 0 {
		// a fresh container has no package lists
		aptUpdateOnce.Do(func() { _ = exec.Command("apt-get", "update", "-qq").Run() })
		_, _, err = resolveKernelPackage(ctx, DefaultKernelPackage)
	}
	if err != nil {
		if testenv.Integration() {
			t.Fatalf("no deploy kernel: %v", err)
		}
		t.Skipf("no deploy kernel can be fetched: %v", err)
	}
}

// buildTestRamdisk builds a ramdisk with the probe binary as /init.
func buildTestRamdisk(t testing.TB, o RamdiskOptions) *RamdiskResult {
	t.Helper()
	if o.CacheDir == "" {
		o.CacheDir = ramdiskTestCache
	}
	if o.Kernel == "" && o.KernelPackage == "" {
		o.KernelPackage = DefaultKernelPackage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := BuildRamdisk(ctx, o)
	if err != nil {
		t.Fatalf("BuildRamdisk: %v", err)
	}
	t.Logf("BuildRamdisk: %.1fs (cached %v)", time.Since(start).Seconds(), r.Cached)
	return r
}

func sha256File(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cpioList lists a gzip-compressed cpio with the system gzip and cpio.
func cpioList(t testing.TB, initramfs string) string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `gzip -dc "$1" | cpio -itv --quiet --numeric-uid-gid`, "sh", initramfs)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gzip -dc | cpio -t %s: %v\n%s", initramfs, err, out)
	}
	return string(out)
}

// cpioExtract unpacks the initramfs with the system cpio (no device nodes).
func cpioExtract(t testing.TB, initramfs string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `gzip -dc "$1" | cpio -id --quiet --no-absolute-filenames -f 'dev/console'`, "sh", initramfs)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i %s: %v\n%s", initramfs, err, out)
	}
	return dir
}

// checkInitramfs checks an initramfs with the system cpio: the layout of
// the contract, /init is binary, every module of modules.load is an
// uncompressed ELF module of kernel version kver loaded after its
// dependencies, ramdisk.json agrees.
func checkInitramfs(t *testing.T, r *RamdiskResult, binary string) {
	t.Helper()
	listing := cpioList(t, r.Initramfs)
	for _, w := range []string{
		`(?m)^crw------- +1 0 +0 +5, +1 .* dev/console$`,
		`(?m)^-rwxr-xr-x +1 0 +0 +\d+ .* init$`,
		`(?m)^-rw-r--r-- +1 0 +0 +\d+ .* etc/lightsout/modules.load$`,
		`(?m)^-rw-r--r-- +1 0 +0 +\d+ .* etc/lightsout/ramdisk.json$`,
		`(?m)^drwxr-xr-x .* proc$`, `(?m)^drwxr-xr-x .* sys$`, `(?m)^drwxr-xr-x .* dev$`,
		`(?m)^drwxr-xr-x .* run$`, `(?m)^drwxr-xr-x .* tmp$`, `(?m)^drwxr-xr-x .* mnt$`,
		`(?m)^drwxr-xr-x .* lib/modules/` + regexp.QuoteMeta(r.KernelVersion) + `$`,
	} {
		if !regexp.MustCompile(w).MatchString(listing) {
			t.Errorf("cpio -tv: no line matching %s", w)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
		if f := strings.Fields(l); len(f) < 5 || f[2] != "0" || f[3] != "0" {
			t.Errorf("cpio -tv: member not owned by 0:0: %s", l)
		}
	}
	root := cpioExtract(t, r.Initramfs)
	init, err := os.ReadFile(filepath.Join(root, "init"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(init, bin) {
		t.Errorf("/init (%d bytes) is not %s (%d bytes)", len(init), binary, len(bin))
	}
	load, err := os.ReadFile(filepath.Join(root, "etc/lightsout/modules.load"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(load)), "\n")
	if !slices.Equal(lines, r.Modules) {
		t.Errorf("modules.load lists %d modules, the result %d", len(lines), len(r.Modules))
	}
	loaded := map[string]bool{}
	for _, p := range lines {
		if !strings.HasPrefix(p, "/lib/modules/"+r.KernelVersion+"/") || !strings.HasSuffix(p, ".ko") {
			t.Errorf("modules.load: %q is not an uncompressed module under /lib/modules/%s", p, r.KernelVersion)
			continue
		}
		ko, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("modules.load names %s: %v", p, err)
			continue
		}
		f, err := elf.NewFile(bytes.NewReader(ko))
		if err != nil || f.Type != elf.ET_REL || f.Machine != elf.EM_X86_64 {
			t.Errorf("%s: not an uncompressed x86-64 ELF relocatable (%v)", p, err)
			continue
		}
		info, err := modinfo(ko)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if v := strings.Join(info["vermagic"], ""); !strings.HasPrefix(v, r.KernelVersion+" ") {
			t.Errorf("%s: vermagic %q is not of kernel %s", p, v, r.KernelVersion)
		}
		for _, d := range info["depends"] {
			for _, dd := range strings.Split(d, ",") {
				if dd != "" && !loaded[moduleName(dd)] {
					t.Errorf("%s is loaded before its dependency %s", p, dd)
				}
			}
		}
		loaded[moduleName(p)] = true
	}
	checkModuleIndex(t, root, load, r.KernelVersion)
	var info RamdiskInfo
	js, err := os.ReadFile(filepath.Join(root, RamdiskInfoPath))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &info); err != nil {
		t.Fatalf("ramdisk.json: %v", err)
	}
	if info.KernelVersion != r.KernelVersion || !slices.Equal(info.Modules, r.Modules) || info.InitSHA256 != sha256File(t, binary) ||
		info.LightsoutVersion == "" {
		t.Errorf("ramdisk.json %+v does not match the build (kernel %s, %d modules)", info, r.KernelVersion, len(r.Modules))
	}
}

// checkModuleIndex reads the initramfs's module index as init does
// (deployagent.ParseModuleIndex) and checks that the devices of a Gen10
// (virtio), a Gen8 (e1000, ISA floppy) and iLO virtual media (USB storage)
// get their drivers, that the boot set holds the device-less modules only,
// and that every module can be reached: from the boot set, an alias or as
// a dependency.
func checkModuleIndex(t *testing.T, root string, load []byte, kver string) {
	t.Helper()
	var files [3][]byte
	for i, f := range []string{RamdiskModulesDep, RamdiskModulesAlias, RamdiskModulesBoot} {
		var err error
		if files[i], err = os.ReadFile(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := deployagent.ParseModuleIndex(load, files[0], files[1], files[2])
	if err != nil {
		t.Fatalf("module index: %v", err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, moduleName(p))
		}
		return out
	}
	for _, c := range []struct{ modalias, want string }{
		{"virtio:d00000001v00001AF4", "virtio_net"},
		{"virtio:d00000002v00001AF4", "virtio_blk"},
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio_pci"},
		{"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "e1000"},
		{"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", "xhci_pci"},
		{"usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", "usb_storage"},
		{"pnp:dPNP0700", "floppy"},
		{"acpi:PNP0700:", "floppy"},
	} {
		got := names(ix.Match(c.modalias))
		if len(got) == 0 || got[len(got)-1] != c.want && !slices.Contains(got, c.want) {
			t.Errorf("%s loads %v, want %s (after its dependencies)", c.modalias, got, c.want)
		}
	}
	if got := ix.Match("pci:v0000FFFFd0000FFFFsv00000000sd00000000bcFFscFFiFF"); len(got) != 0 {
		t.Errorf("an unknown device loads %v", got)
	}
	boot := names(ix.Boot())
	for _, w := range []string{"sd_mod", "sr_mod", "vfat", "isofs"} {
		if !slices.Contains(boot, w) {
			t.Errorf("boot set %v lacks %s", boot, w)
		}
	}
	for _, w := range []string{"e1000", "ahci", "virtio_net", "smartpqi", "ice", "floppy"} {
		if slices.Contains(boot, w) {
			t.Errorf("boot set %v holds the device driver %s", boot, w)
		}
	}
	reach := map[string]bool{}
	for _, p := range ix.Boot() {
		reach[p] = true
	}
	for _, l := range strings.Split(string(files[0]), "\n") {
		for _, f := range append(strings.Fields(l), "")[1:] {
			reach[f] = true
		}
	}
	for _, l := range strings.Split(string(files[1]), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			reach[f[2]] = true
		}
	}
	for _, p := range strings.Fields(string(load)) {
		if !reach[p] {
			t.Errorf("%s is in modules.load but neither booted, aliased nor a dependency: init never loads it", p)
		}
	}
}

// TestRamdiskBuild builds a ramdisk from the Debian kernel (or the host's)
// and checks it with the system cpio, then checks reproducibility (a
// forced rebuild elsewhere gives the same bytes), the cache (an unchanged
// build rewrites nothing) and a module the kernel lacks (a warning).
func TestRamdiskBuild(t *testing.T) {
	testenv.RequireTools(t, "cpio", "gzip")
	requireKernel(t)
	probe := probeBinary(t)
	dir1 := t.TempDir()
	var phases []string
	r1 := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir1, Binary: probe,
		Progress: func(phase string, done, total int64) {
			if len(phases) == 0 || phases[len(phases)-1] != phase {
				phases = append(phases, phase)
			}
		}})
	t.Logf("kernel %s from %s: kernel %d bytes, initramfs %d bytes, %d module files; builtin %v",
		r1.KernelVersion, r1.KernelSource, r1.KernelSize, r1.InitramfsSize, len(r1.Modules), r1.Builtin)
	if r1.Cached {
		t.Fatal("first build in a new dir reported cached")
	}
	if !slices.Contains(phases, "writing "+RamdiskInitramfsName) {
		t.Errorf("progress phases %q lack the initramfs write", phases)
	}
	if len(r1.Missing) != 0 {
		t.Errorf("Debian's generic kernel lacks modules %v", r1.Missing)
	}
	for _, m := range DefaultRamdiskModules {
		name := moduleName(m)
		if a, ok := moduleAliases[name]; ok {
			name = a
		}
		if !slices.ContainsFunc(r1.Modules, func(p string) bool { return moduleName(p) == name }) &&
			!slices.Contains(r1.Builtin, m) {
			t.Errorf("module %s neither in the initramfs nor built in", m)
		}
	}
	if r1.KernelSize < 1<<20 {
		t.Errorf("kernel only %d bytes", r1.KernelSize)
	}
	checkInitramfs(t, r1, probe)

	// cache: unchanged inputs rewrite nothing
	st1, _ := os.Stat(r1.Initramfs)
	r2 := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir1, Binary: probe})
	st2, _ := os.Stat(r2.Initramfs)
	if !r2.Cached || r2.Key != r1.Key || !os.SameFile(st1, st2) || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("second build: cached=%v, key same=%v, file untouched=%v", r2.Cached, r2.Key == r1.Key, os.SameFile(st1, st2))
	}
	// a tampered output is rebuilt
	if err := os.WriteFile(r1.Initramfs, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r3 := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir1, Binary: probe}); r3.Cached || sha256File(t, r3.Initramfs) == sha256File(t, "/dev/null") {
		t.Error("a tampered initramfs was not rebuilt")
	}

	// reproducible: a forced build elsewhere gives the same bytes
	dir2 := t.TempDir()
	r4 := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir2, Binary: probe, Force: true})
	if a, b := sha256File(t, r1.Initramfs), sha256File(t, r4.Initramfs); a != b {
		t.Errorf("two builds differ: %s vs %s", a, b)
	}
	if a, b := sha256File(t, r1.Kernel), sha256File(t, r4.Kernel); a != b {
		t.Errorf("kernels differ: %s vs %s", a, b)
	}
	// a different mtime is a different input
	r5 := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir2, Binary: probe, MTime: 1700000000})
	if r5.Cached || r5.Key == r1.Key || sha256File(t, r5.Initramfs) == sha256File(t, r1.Initramfs) {
		t.Error("a build with another mtime reused the old output")
	}
	if !strings.Contains(cpioList(t, r5.Initramfs), " Nov 14  2023 init") {
		t.Error("members do not carry the requested mtime")
	}
	// SOURCE_DATE_EPOCH sets it when MTime does not
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if r := buildTestRamdisk(t, RamdiskOptions{OutputDir: dir2, Binary: probe}); !r.Cached || r.Key != r5.Key {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: cached %v, same key as MTime 1700000000: %v", r.Cached, r.Key == r5.Key)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := BuildRamdisk(context.Background(), RamdiskOptions{OutputDir: dir2, Binary: probe, CacheDir: ramdiskTestCache}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SOURCE_DATE_EPOCH=yesterday: err %v, want ErrInvalid", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")

	// a module the kernel lacks is a warning, a built-in one is silent
	var warns []string
	r6 := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"no_such_module", "vfat"},
		Warn: func(m string) { warns = append(warns, m) }})
	if !slices.Equal(r6.Missing, []string{"no_such_module"}) || len(warns) != 1 || !strings.Contains(warns[0], "no_such_module") {
		t.Errorf("missing module: Missing %v, warnings %q", r6.Missing, warns)
	}
	if !slices.ContainsFunc(r6.Modules, func(p string) bool { return strings.HasSuffix(p, "/vfat.ko") }) || !slices.ContainsFunc(r6.Modules, func(p string) bool { return strings.HasSuffix(p, "/fat.ko") }) {
		t.Errorf("vfat and its dependency fat not included: %v", r6.Modules)
	}
}

// buildLightsout builds the static lightsout binary as `make build` does.
func buildLightsout(t *testing.T) string {
	t.Helper()
	testenv.RequireTools(t, "go")
	bin := filepath.Join(t.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/lightsout")
	build.Dir = qemutest.RepoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lightsout: %v\n%s", err, out)
	}
	return bin
}

// TestRamdiskCLI runs `lightsout image ramdisk` with the real (static)
// lightsout binary as /init: sizes printed, the initramfs under 60 MB and
// holding the binary, no progress bar off a terminal, the second run
// reusing the outputs, a dynamically linked --binary refused.
func TestRamdiskCLI(t *testing.T) {
	testenv.RequireTools(t, "cpio", "gzip")
	requireKernel(t)
	bin := buildLightsout(t)
	dir := t.TempDir()
	out, rc := runCmd(t, bin, "image", "ramdisk", "-o", dir, "--cache-dir", ramdiskTestCache, "--kernel-package", DefaultKernelPackage)
	if rc != 0 {
		t.Fatalf("lightsout image ramdisk: rc %d\n%s", rc, out)
	}
	t.Logf("lightsout image ramdisk:\n%s", out)
	sizeRE := regexp.MustCompile(`(?m)^ +(\d+\.\d) MB  (\S+/` + RamdiskInitramfsName + `)$`)
	m := sizeRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "deploy ramdisk built: kernel ") || !regexp.MustCompile(`(?m)^ +\d+\.\d MB  total$`).MatchString(out) ||
		!strings.Contains(out, RamdiskKernelName) {
		t.Fatalf("output lacks the built files and their sizes:\n%s", out)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("progress bar drawn off a terminal: %q", out)
	}
	initramfs := filepath.Join(dir, RamdiskInitramfsName)
	st, err := os.Stat(initramfs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= 60<<20 {
		t.Errorf("initramfs is %d bytes, target < 60 MB", st.Size())
	}
	cmd := exec.Command("sh", "-c", `gzip -dc "$1" | cpio -i --quiet --to-stdout init`, "sh", initramfs)
	init, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -i init: %v", err)
	}
	if sha256.Sum256(init) != sha256.Sum256(mustRead(t, bin)) {
		t.Errorf("/init (%d bytes) is not the lightsout binary", len(init))
	}
	out, rc = runCmd(t, bin, "image", "ramdisk", "-o", dir, "--cache-dir", ramdiskTestCache, "--kernel-package", DefaultKernelPackage)
	if rc != 0 || !strings.Contains(out, "deploy ramdisk up to date") {
		t.Errorf("second run: rc %d, want \"up to date\":\n%s", rc, out)
	}
	if st2, _ := os.Stat(initramfs); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("second run rewrote the initramfs")
	}
	for _, c := range []string{"/bin/true", "/usr/bin/true"} {
		if _, err := os.Stat(c); err == nil {
			out, rc = runCmd(t, bin, "image", "ramdisk", "-o", t.TempDir(), "--binary", c)
			if rc == 0 || !strings.Contains(out, "CGO_ENABLED=0") {
				t.Errorf("dynamic --binary %s: rc %d:\n%s", c, rc, out)
			}
			break
		}
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeCompressedModules: .ko.xz (as the kernel's build compresses:
// crc32 check, 1 MiB dictionary) and .ko.zst modules are uncompressed to
// the very bytes of the .ko; garbage is refused.
func TestDecodeCompressedModules(t *testing.T) {
	testenv.RequireTools(t, "xz", "zstd")
	requireKernel(t)
	probe := probeBinary(t)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"vfat"}})
	root := cpioExtract(t, r.Initramfs)
	ko := filepath.Join(root, r.Modules[len(r.Modules)-1])
	want := mustRead(t, ko)
	for _, c := range []struct {
		ext  string
		args []string
	}{{".xz", []string{"xz", "--check=crc32", "--lzma2=dict=1MiB", "-kf"}}, {".zst", []string{"zstd", "-q", "-T0", "--ultra", "-19", "-kf"}}} {
		if out, err := exec.Command(c.args[0], append(c.args[1:], ko)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c.args[0], err, out)
		}
		got, err := readModule(ko + c.ext)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the %d bytes of the .ko", c.ext, len(got), err, len(want))
		}
		if err := os.WriteFile(ko+c.ext, []byte("not compressed"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readModule(ko + c.ext); err == nil {
			t.Errorf("%s: garbage accepted", c.ext)
		}
	}
	if err := os.WriteFile(ko, []byte("not an ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readModule(ko); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("a non-ELF .ko: err %v", err)
	}
}

// TestRamdiskExplicitKernel: --kernel/--modules (here the cached package's
// tree) and --kernel-package FILE.deb select the kernel; mixing them, or
// --kernel alone, is refused.
func TestRamdiskExplicitKernel(t *testing.T) {
	requireKernel(t)
	probe := probeBinary(t)
	base := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"vfat"},
		KernelPackage: DefaultKernelPackage})
	id := base.KernelSource
	tree := filepath.Join(ramdiskTestCache, "kernel", id)
	kernel := filepath.Join(tree, "boot", "vmlinuz-"+base.KernelVersion)
	r := buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"vfat"},
		Kernel: kernel, ModulesDir: filepath.Join(tree, "lib", "modules", base.KernelVersion)})
	if r.KernelSource != "explicit" || r.KernelVersion != base.KernelVersion || !slices.Equal(r.Modules, base.Modules) {
		t.Errorf("explicit kernel: source %q version %q modules %v; want explicit %s %v", r.KernelSource, r.KernelVersion, r.Modules, base.KernelVersion, base.Modules)
	}
	deb := filepath.Join(tree, "package.deb")
	cache := t.TempDir()
	r = buildTestRamdisk(t, RamdiskOptions{OutputDir: t.TempDir(), Binary: probe, Modules: []string{"vfat"}, KernelPackage: deb, CacheDir: cache})
	if r.KernelVersion != base.KernelVersion || !slices.Equal(r.Modules, base.Modules) || sha256File(t, r.Kernel) != sha256File(t, base.Kernel) {
		t.Errorf("--kernel-package FILE.deb: version %q modules %v", r.KernelVersion, r.Modules)
	}
	for _, o := range []RamdiskOptions{{Kernel: kernel}, {Kernel: kernel, ModulesDir: tree, KernelPackage: "x"},
		{Kernel: kernel, ModulesDir: t.TempDir()}, {KernelPackage: filepath.Join(t.TempDir(), "none.deb")}} {
		o.OutputDir, o.Binary, o.CacheDir = t.TempDir(), probe, cache
		if _, err := BuildRamdisk(context.Background(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("kernel %q modules %q package %q: err %v, want ErrInvalid", o.Kernel, o.ModulesDir, o.KernelPackage, err)
		}
	}
}

// BenchmarkRamdiskBuild times a full (forced) build of the deploy ramdisk
// with the static lightsout binary as /init (bin/lightsout of `make build`
// when present, else built here) from the cached Debian kernel, and reports
// the sizes (target: initramfs < 60 MB) and the time of a cache hit.
func BenchmarkRamdiskBuild(b *testing.B) {
	requireKernel(b)
	bin := filepath.Join(qemutest.RepoRoot(b), "bin", "lightsout")
	if checkStaticBinary(bin) != nil {
		bin = buildLightsoutB(b)
	}
	dir := b.TempDir()
	o := RamdiskOptions{OutputDir: dir, Binary: bin, CacheDir: ramdiskTestCache}
	ctx := context.Background()
	if _, err := BuildRamdisk(ctx, o); err != nil { // warm the kernel cache
		b.Fatal(err)
	}
	o.Force = true
	var r *RamdiskResult
	b.ResetTimer()
	for b.Loop() {
		var err error
		if r, err = BuildRamdisk(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	o.Force = false
	start := time.Now()
	if c, err := BuildRamdisk(ctx, o); err != nil || !c.Cached {
		b.Fatalf("cache hit: cached %v, %v", c != nil && c.Cached, err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "cached_s")
	b.ReportMetric(float64(r.InitramfsSize)/1e6, "initramfs_MB")
	b.ReportMetric(float64(r.KernelSize)/1e6, "kernel_MB")
	b.ReportMetric(float64(len(r.Modules)), "modules")
}

func buildLightsoutB(b *testing.B) string {
	testenv.RequireTools(b, "go")
	bin := filepath.Join(b.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/lightsout")
	build.Dir = qemutest.RepoRoot(b)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/lightsout: %v\n%s", err, out)
	}
	return bin
}
