package image

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// isoInputs are small random kernel/ramdisk/extra files for ISO tests.
type isoInputs struct {
	dir, kernel, ramdisk, extra, long string
}

func newISOInputs(t *testing.T) isoInputs {
	t.Helper()
	dir := t.TempDir()
	return isoInputs{
		dir:     dir,
		kernel:  randFile(t, dir, "vmlinuz-test", 3<<20+123),
		ramdisk: randFile(t, dir, "initrd-test.img", 5<<20+7),
		extra:   randFile(t, dir, "meta_data.json", 4096),
		long:    randFile(t, dir, "long.bin", 70_001),
	}
}

// elToritoReport runs xorriso -report_el_torito plain and returns the
// platforms of the boot images ("BIOS", "UEFI").
func elToritoReport(t *testing.T, iso string) []string {
	t.Helper()
	out, rc := runCmd(t, "xorriso", "-indev", iso, "-report_el_torito", "plain")
	if rc != 0 {
		t.Fatalf("xorriso -report_el_torito: rc %d\n%s", rc, out)
	}
	re := regexp.MustCompile(`(?m)^El Torito boot img :\s+\d+\s+(\S+)\s+y\s+none`)
	var plats []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		plats = append(plats, m[1])
	}
	return plats
}

// extractISO extracts iso with osirrox (Rock Ridge names) into a new dir.
func extractISO(t *testing.T, iso string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "x")
	if out, rc := runCmd(t, "osirrox", "-indev", iso, "-extract", "/", dst); rc != 0 {
		t.Fatalf("osirrox -extract: rc %d\n%s", rc, out)
	}
	return dst
}

func TestWriteISO(t *testing.T) {
	testenv.RequireTools(t, "grub-mkstandalone", "xorriso", "osirrox", "fsck.vfat")
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	in := newISOInputs(t)
	ctx := context.Background()
	const cmdline = "console=ttyS0,115200n8 ipa-api-url=http://127.0.0.1:6385 text"

	// a hybrid ISO also serves as the deploy ISO for uefi_from and as the
	// source of a standalone BOOTX64.EFI for efi_loader
	base := filepath.Join(in.dir, "base.iso")
	if err := WriteISO(ctx, base, ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, Append: "base"}); err != nil {
		t.Fatal(err)
	}
	baseTree := extractISO(t, base)
	loader := filepath.Join(baseTree, "EFI", "BOOT", "BOOTX64.EFI")

	tests := []struct {
		name      string
		opts      ISOOptions
		platforms []string
		volID     string
		files     []string // must exist in the ISO
		absent    []string
		efiboot   string
	}{
		{name: "hybrid default", opts: ISOOptions{},
			platforms: []string{"BIOS", "UEFI"}, volID: DefaultVolumeID, efiboot: isoEFIBootPath,
			files: []string{"isolinux/isolinux.bin", "isolinux/ldlinux.c32", "isolinux/isolinux.cfg", "isolinux/boot.cat", "EFI/BOOT/grub.cfg", "EFI/BOOT/BOOTX64.EFI"}},
		{name: "bios only", opts: ISOOptions{BIOSOnly: true},
			platforms: []string{"BIOS"}, volID: DefaultVolumeID,
			files: []string{"isolinux/isolinux.bin", "isolinux/isolinux.cfg"}, absent: []string{"EFI", isoEFIBootPath}},
		{name: "uefi only", opts: ISOOptions{UEFIOnly: true},
			platforms: []string{"UEFI"}, volID: DefaultVolumeID, efiboot: isoEFIBootPath,
			files: []string{"EFI/BOOT/grub.cfg"}, absent: []string{"isolinux"}},
		{name: "efi loader given", opts: ISOOptions{EFILoader: loader},
			platforms: []string{"BIOS", "UEFI"}, volID: DefaultVolumeID, efiboot: isoEFIBootPath},
		{name: "uefi from deploy ISO", opts: ISOOptions{UEFIFrom: base},
			platforms: []string{"BIOS", "UEFI"}, volID: DefaultVolumeID, efiboot: isoEFIBootPath,
			files: []string{"EFI/BOOT/grub.cfg"}},
		{name: "openstack files switch to config-2", opts: ISOOptions{Files: map[string]string{
			"openstack/latest/meta_data.json": in.extra, "A Long, Mixed Name.bin": in.long}},
			platforms: []string{"BIOS", "UEFI"}, volID: ConfigDriveVolumeID, efiboot: isoEFIBootPath,
			files: []string{"openstack/latest/meta_data.json", "A Long, Mixed Name.bin"}},
		{name: "volume id override, uefi only from deploy ISO", opts: ISOOptions{UEFIOnly: true, UEFIFrom: base, VolumeID: "MY_ISO"},
			platforms: []string{"UEFI"}, volID: "MY_ISO", efiboot: isoEFIBootPath, absent: []string{"isolinux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.Kernel, o.Ramdisk, o.Append = in.kernel, in.ramdisk, cmdline
			var calls int
			var last, lastTotal int64
			o.Progress = func(written, total int64) {
				calls++
				if written < last || written > total {
					t.Errorf("progress %d/%d after %d", written, total, last)
				}
				last, lastTotal = written, total
			}
			iso := filepath.Join(t.TempDir(), "out.iso")
			if err := WriteISO(ctx, iso, o); err != nil {
				t.Fatal(err)
			}
			if calls == 0 || last != lastTotal || lastTotal < o.PayloadSize() || lastTotal > o.PayloadSize()+4<<20 {
				t.Errorf("progress: %d calls, last %d/%d, payload %d", calls, last, lastTotal, o.PayloadSize())
			}
			st, _ := os.Stat(iso)
			if st.Size()%isoBlock != 0 {
				t.Errorf("ISO size %d is not a multiple of 2048", st.Size())
			}

			// our reader
			info, err := Inspect(iso)
			if err != nil {
				t.Fatal(err)
			}
			var plats []string
			for _, e := range info.ElTorito {
				plats = append(plats, e.Platform)
				if !e.Bootable || e.Emulation != "none" || e.File == "" {
					t.Errorf("boot entry %+v", e)
				}
				if e.Platform == "UEFI" && e.File != tt.efiboot {
					t.Errorf("UEFI boot image %q, want %q", e.File, tt.efiboot)
				}
				if e.Platform == "BIOS" && (e.LoadSectors != 4 || e.File != "isolinux/isolinux.bin") {
					t.Errorf("BIOS entry %+v", e)
				}
			}
			if !slices.Equal(plats, tt.platforms) || info.Label != tt.volID || info.Size != st.Size() {
				t.Fatalf("Inspect: platforms %v label %q size %d; want %v %q %d", plats, info.Label, info.Size, tt.platforms, tt.volID, st.Size())
			}
			paths := map[string]bool{}
			for _, f := range info.Files {
				paths[f.Path] = true
			}
			for _, f := range append([]string{"vmlinuz", "initrd"}, tt.files...) {
				if !paths[f] {
					t.Errorf("%s missing from the ISO (have %v)", f, info.Files)
				}
			}
			for _, f := range tt.absent {
				if paths[f] {
					t.Errorf("%s should not be in the ISO", f)
				}
			}
			if got, err := KernelCmdline(iso); err != nil || got != cmdline {
				t.Errorf("KernelCmdline = %q, %v; want %q", got, err, cmdline)
			}
			if info.KernelCmdline != cmdline {
				t.Errorf("Inspect kernel_cmdline = %q", info.KernelCmdline)
			}

			// independent reader: xorriso and osirrox
			if got := elToritoReport(t, iso); !slices.Equal(got, tt.platforms) {
				t.Fatalf("xorriso El Torito platforms %v, want %v", got, tt.platforms)
			}
			out, _ := runCmd(t, "xorriso", "-indev", iso, "-pvd_info")
			if !strings.Contains(out, "Volume Id    : "+tt.volID+"\n") {
				t.Errorf("xorriso -pvd_info: want volume id %s\n%s", tt.volID, out)
			}
			tree := extractISO(t, iso)
			sameFile(t, in.kernel, filepath.Join(tree, "vmlinuz"))
			sameFile(t, in.ramdisk, filepath.Join(tree, "initrd"))
			for name, src := range o.Files {
				sameFile(t, src, filepath.Join(tree, filepath.FromSlash(name)))
			}
			if !o.UEFIOnly {
				cfg, err := ReadISOFile(iso, "isolinux/isolinux.cfg")
				if err != nil || !strings.Contains(string(cfg), "APPEND initrd=/initrd "+cmdline+"\n") {
					t.Errorf("isolinux.cfg: %v\n%s", err, cfg)
				}
			}
			if !o.BIOSOnly {
				cfg, err := ReadISOFile(iso, "/EFI/BOOT/grub.cfg")
				if err != nil || !strings.Contains(string(cfg), "linux /vmlinuz "+cmdline+"\n") {
					t.Errorf("grub.cfg: %v\n%s", err, cfg)
				}
				// efiboot.img is a floppy the project makes: fsck-clean
				fsckClean(t, filepath.Join(tree, filepath.FromSlash(tt.efiboot)))
				out, rc := runCmd(t, "mdir", "-i", filepath.Join(tree, filepath.FromSlash(tt.efiboot)), "::/EFI/BOOT")
				if rc != 0 || !regexp.MustCompile(`BOOTX64\s+EFI`).MatchString(out) {
					t.Errorf("efiboot.img EFI/BOOT: rc %d\n%s", rc, out)
				}
			}
		})
	}
}

func TestWriteISOErrors(t *testing.T) {
	in := newISOInputs(t)
	huge := filepath.Join(in.dir, "huge.img")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil { // sparse: exactly 4 GiB
		t.Fatal(err)
	}
	f.Close()
	biosISO := filepath.Join(in.dir, "bios.iso")
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	if err := WriteISO(context.Background(), biosISO, ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    ISOOptions
		wantErr string
		is      error
	}{
		{"no kernel", ISOOptions{Ramdisk: in.ramdisk, BIOSOnly: true}, "kernel: a local file path is required", ErrInvalid},
		{"missing ramdisk", ISOOptions{Kernel: in.kernel, Ramdisk: filepath.Join(in.dir, "nope"), BIOSOnly: true}, "ramdisk", fs.ErrNotExist},
		{"ramdisk of 4 GiB", ISOOptions{Kernel: in.kernel, Ramdisk: huge, BIOSOnly: true}, "smaller than 4 GiB", ErrInvalid},
		{"extra file of 4 GiB", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, Files: map[string]string{"big": huge}}, "smaller than 4 GiB", ErrInvalid},
		{"both only flags", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, UEFIOnly: true}, "exclusive", ErrInvalid},
		{"both UEFI sources", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, UEFIFrom: biosISO, EFILoader: in.extra}, "exclusive", ErrInvalid},
		{"bios only with UEFI source", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, EFILoader: in.extra}, "bios_only conflicts", ErrInvalid},
		{"deploy ISO without efiboot.img", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, UEFIFrom: biosISO}, "does not contain efiboot.img", ErrInvalid},
		{"reserved name", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, Files: map[string]string{"isolinux/x.cfg": in.extra}}, "used by the boot loader", ErrInvalid},
		{"kernel name taken", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, Files: map[string]string{"/vmlinuz": in.extra}}, "used by the boot loader", ErrInvalid},
		{"volume id too long", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, VolumeID: strings.Repeat("X", 33)}, "longer than 32", ErrInvalid},
		{"multi-line append", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, Append: "a\nb"}, "single line", ErrInvalid},
		{"missing isolinux", ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, BIOSOnly: true, Isolinux: filepath.Join(in.dir, "nope.bin")}, "isolinux.bin", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.iso")
			err := WriteISO(context.Background(), out, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.is, tt.wantErr)
			}
			entries, _ := os.ReadDir(filepath.Dir(out))
			if len(entries) != 0 {
				t.Fatalf("a failed WriteISO left files behind: %v", entries)
			}
		})
	}
}

// TestWriteISOStreams checks a large ramdisk is not read into memory and
// that a cancelled context stops the build without leaving a file.
func TestWriteISOStreams(t *testing.T) {
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	in := newISOInputs(t)
	big := randFile(t, in.dir, "big.img", 96<<20)
	out := filepath.Join(t.TempDir(), "out.iso")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := WriteISO(context.Background(), out, ISOOptions{Kernel: in.kernel, Ramdisk: big, BIOSOnly: true}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("WriteISO allocated %d MiB for a 96 MiB ramdisk; inputs must be streamed", alloc>>20)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := readISOTree(bytesReaderAt(data))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(big)
	e, ok := tree.Lookup("initrd")
	if !ok {
		t.Fatal("initrd not found in the written ISO")
	}
	if got := data[int64(e.LBA)*isoBlock : int64(e.LBA)*isoBlock+e.Size]; string(got) != string(src) {
		t.Fatal("initrd content differs")
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = WriteISO(ctx, out+".2", ISOOptions{Kernel: in.kernel, Ramdisk: big, BIOSOnly: true,
		Progress: func(int64, int64) { calls++; cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled WriteISO: err = %v (progress calls %d)", err, calls)
	}
	if _, err := os.Stat(out + ".2"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("cancelled WriteISO left its output")
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp*")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, fmt.Errorf("EOF")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read")
	}
	return n, nil
}

// TestReadForeignISO reads ISOs made by xorriso (the reference tool): El
// Torito entries, Rock Ridge names, the kernel command line, and a deploy
// ISO layout (EFI/efiboot.img, EFI/BOOT/grub.cfg) as UEFI source.
func TestReadForeignISO(t *testing.T) {
	testenv.RequireTools(t, "xorriso", "mkfs.vfat", "mcopy", "mmd")
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	in := newISOInputs(t)
	tree := filepath.Join(in.dir, "tree")
	for _, f := range []struct{ src, dst string }{
		{isolinuxCandidates[0], "isolinux/isolinux.bin"}, {ldlinuxCandidates[0], "isolinux/ldlinux.c32"},
		{in.kernel, "vmlinuz"}, {in.ramdisk, "initrd.img"}, {in.long, "EFI/BOOT/BOOTX64.EFI"},
	} {
		if err := copyLocal(f.src, filepath.Join(tree, f.dst)); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeStaged(tree, "isolinux/isolinux.cfg", "DEFAULT deploy\nLABEL other\n  APPEND initrd=/x other=1\nLABEL deploy\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img  console=ttyS0   ipa-api-url=http://127.0.0.1:6385\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeStaged(tree, "EFI/BOOT/grub.cfg", "menuentry x {\n linuxefi /vmlinuz a=1 b=2\n initrdefi /initrd.img\n}\n"); err != nil {
		t.Fatal(err)
	}
	efi := filepath.Join(tree, "EFI", "efiboot.img")
	if out, rc := runCmd(t, "mkfs.vfat", "-C", "-n", "EFIBOOT", efi, "1024"); rc != 0 {
		t.Fatal(out)
	}
	if out, rc := runCmd(t, "mmd", "-i", efi, "::/EFI", "::/EFI/BOOT"); rc != 0 {
		t.Fatal(out)
	}
	if out, rc := runCmd(t, "mcopy", "-i", efi, in.long, "::/EFI/BOOT/BOOTX64.EFI"); rc != 0 {
		t.Fatal(out)
	}
	deploy := filepath.Join(in.dir, "deploy.iso")
	if out, rc := runCmd(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", deploy, "-V", "DEPLOY", "-r",
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
		"-eltorito-alt-boot", "-e", "EFI/efiboot.img", "-no-emul-boot", tree); rc != 0 {
		t.Fatal(out)
	}
	info, err := Inspect(deploy)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.ElTorito) != 2 || info.ElTorito[0].File != "isolinux/isolinux.bin" || info.ElTorito[1].File != "EFI/efiboot.img" ||
		info.ElTorito[1].Platform != "UEFI" || info.Label != "DEPLOY" {
		t.Fatalf("Inspect(xorriso ISO) = %+v\n%v", info, info.Files)
	}
	if got, err := KernelCmdline(deploy); err != nil || got != "console=ttyS0 ipa-api-url=http://127.0.0.1:6385" {
		t.Fatalf("KernelCmdline = %q, %v", got, err)
	}
	if data, err := ReadISOFile(deploy, "EFI/BOOT/BOOTX64.EFI"); err != nil || int64(len(data)) != 70_001 {
		t.Fatalf("ReadISOFile = %d bytes, %v", len(data), err)
	}
	if _, err := ReadISOFile(deploy, "nope.cfg"); err == nil {
		t.Fatal("ReadISOFile of a missing file succeeded")
	}

	// Ironic's uefi_from path: reuse EFI/efiboot.img at its path, rewrite EFI/BOOT/grub.cfg
	out := filepath.Join(in.dir, "boot.iso")
	if err := WriteISO(context.Background(), out, ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, Append: "x=1", UEFIFrom: deploy}); err != nil {
		t.Fatal(err)
	}
	info, err = Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.ElTorito) != 2 || info.ElTorito[1].File != "EFI/efiboot.img" {
		t.Fatalf("Inspect = %+v", info.ElTorito)
	}
	cfg, err := ReadISOFile(out, "EFI/BOOT/grub.cfg")
	if err != nil || !strings.Contains(string(cfg), "linux /vmlinuz x=1\n") {
		t.Fatalf("grub.cfg not rewritten: %v\n%s", err, cfg)
	}
	efiData, _ := ReadISOFile(out, "EFI/efiboot.img")
	want, _ := os.ReadFile(efi)
	if string(efiData) != string(want) {
		t.Fatal("efiboot.img was not copied verbatim from the deploy ISO")
	}
}

func TestKernelCmdlineParsers(t *testing.T) {
	tests := []struct {
		name, isolinux, grub, want string
		ok                         bool
	}{
		{name: "ironic template", isolinux: "default boot\n\nlabel boot\nkernel /vmlinuz\nappend initrd=/initrd text nofb nomodeset vga=normal --\n",
			want: "text nofb nomodeset vga=normal --", ok: true},
		{name: "default label wins", isolinux: "DEFAULT b\nLABEL a\nAPPEND x=1\nLABEL b\nAPPEND initrd=/i y=2\n", want: "y=2", ok: true},
		{name: "first append without default", isolinux: "LABEL a\n  append p=1\nLABEL b\n  APPEND p=2\n", want: "p=1", ok: true},
		{name: "no append", isolinux: "DEFAULT a\n", ok: false},
		{name: "grub linux", grub: "menuentry \"x\" {\n  linux /vmlinuz a=1  b=2\n  initrd /initrd\n}\n", want: "a=1 b=2", ok: true},
		{name: "grub linuxefi", grub: "linuxefi /vmlinuz c=3 --\n", want: "c=3 --", ok: true},
		{name: "grub none", grub: "set timeout=5\n", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			var ok bool
			if tt.isolinux != "" {
				got, ok = isolinuxAppend([]byte(tt.isolinux))
			} else {
				got, ok = grubLinuxArgs([]byte(tt.grub))
			}
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestReadISOMadeByOtherTools reads ISOs made by xorriso and genisoimage,
// with and without Rock Ridge (and with Joliet), through the reader
// library: the file list, sizes, contents, volume id, El Torito boot file
// and the kernel command line must match what was put in.
func TestReadISOMadeByOtherTools(t *testing.T) {
	testenv.RequireTools(t, "xorriso", "genisoimage")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	files := map[string]string{
		"isolinux/isolinux.cfg": "DEFAULT a\nLABEL a\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img console=ttyS0 x=1\n",
		"isolinux/boot.bin":     strings.Repeat("B", 4096),
		"vmlinuz":               strings.Repeat("k", 70_001),
		"sub/deeper/data.txt":   "hello",
	}
	for name, data := range files {
		if err := writeStaged(tree, name, data); err != nil {
			t.Fatal(err)
		}
	}
	// names as ISO 9660 level 1 keeps them without Rock Ridge (upper case, 8.3)
	plainName := map[string]string{
		"isolinux/isolinux.cfg": "ISOLINUX/ISOLINUX.CFG", "isolinux/boot.bin": "ISOLINUX/BOOT.BIN",
		"vmlinuz": "VMLINUZ", "sub/deeper/data.txt": "SUB/DEEPER/DATA.TXT",
	}
	boot := []string{"-b", "isolinux/boot.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4"}
	tests := []struct {
		name      string
		tool      string
		args      []string
		rockRidge bool
	}{
		{"xorriso rock ridge", "xorriso", []string{"-as", "mkisofs", "-quiet", "-r"}, true},
		{"xorriso rock ridge and joliet", "xorriso", []string{"-as", "mkisofs", "-quiet", "-r", "-J"}, true},
		{"xorriso plain iso 9660", "xorriso", []string{"-as", "mkisofs", "-quiet", "--norock"}, false},
		{"genisoimage rock ridge", "genisoimage", []string{"-quiet", "-R"}, true},
		{"genisoimage plain iso 9660", "genisoimage", []string{"-quiet"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iso := filepath.Join(dir, fmt.Sprintf("%d.iso", i))
			args := append(append(append([]string{}, tt.args...), "-o", iso, "-V", "FOREIGN"), boot...)
			if out, rc := runCmd(t, tt.tool, append(args, tree)...); rc != 0 {
				t.Fatalf("%s: %s", tt.tool, out)
			}
			info, err := Inspect(iso)
			if err != nil {
				t.Fatal(err)
			}
			if info.Label != "FOREIGN" {
				t.Errorf("label %q, want FOREIGN", info.Label)
			}
			listed := map[string]FileEntry{}
			for _, f := range info.Files {
				listed[f.Path] = f
			}
			for name, data := range files {
				want := name
				if !tt.rockRidge {
					want = plainName[name]
				}
				f, ok := listed[want]
				if !ok || f.Dir || f.Size != int64(len(data)) {
					t.Errorf("file %s: listed as %+v (found %v); files %v", want, f, ok, info.Files)
				}
				// lookups by the lower-case name work with and without Rock Ridge
				got, err := ReadISOFile(iso, name)
				if err != nil || string(got) != data {
					t.Errorf("ReadISOFile(%s) = %d bytes, %v; want %d bytes", name, len(got), err, len(data))
				}
			}
			if d, ok := listed[map[bool]string{true: "sub/deeper", false: "SUB/DEEPER"}[tt.rockRidge]]; !ok || !d.Dir {
				t.Errorf("directory sub/deeper not listed as a directory: %v", info.Files)
			}
			wantBoot := map[bool]string{true: "isolinux/boot.bin", false: "ISOLINUX/BOOT.BIN"}[tt.rockRidge]
			if len(info.ElTorito) != 1 || info.ElTorito[0].File != wantBoot || info.ElTorito[0].Platform != "BIOS" {
				t.Errorf("El Torito %+v, want one BIOS entry for %s", info.ElTorito, wantBoot)
			}
			if info.KernelCmdline != "console=ttyS0 x=1" {
				t.Errorf("kernel command line %q", info.KernelCmdline)
			}
		})
	}
}

// TestReadISORefusesHostileTrees: a directory whose extent points back at
// the root (a loop) and truncated images are errors, not hangs or panics.
func TestReadISORefusesHostileTrees(t *testing.T) {
	iso := make([]byte, 20*isoBlock)
	pvd := iso[16*isoBlock:]
	copy(pvd, "\x01CD001\x01")
	copy(pvd[40:], "LOOP")
	root := pvd[156:]
	isoDirRecord(root, 18, isoBlock, "\x00", true)
	copy(iso[17*isoBlock:], "\xffCD001\x01")
	dir := iso[18*isoBlock:]
	n := isoDirRecord(dir, 18, isoBlock, "\x00", true)
	n += isoDirRecord(dir[n:], 18, isoBlock, "\x01", true)
	isoDirRecord(dir[n:], 18, isoBlock, "LOOP", true) // child = root again
	if _, err := readISOTree(bytesReaderAt(iso)); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Fatalf("loop: err = %v, want a depth error", err)
	}
	for _, cut := range []int{17 * isoBlock, 16*isoBlock + 100, 18*isoBlock + 10} {
		if _, err := readISOTree(bytesReaderAt(iso[:cut])); err == nil {
			t.Errorf("truncated at %d: no error", cut)
		}
	}
}

// isoDirRecord writes a minimal ISO 9660 directory record into b and
// returns its length.
func isoDirRecord(b []byte, extent, size uint32, id string, dir bool) int {
	l := 33 + len(id)
	if l%2 == 1 {
		l++
	}
	b[0] = byte(l)
	binary.LittleEndian.PutUint32(b[2:], extent)
	binary.BigEndian.PutUint32(b[6:], extent)
	binary.LittleEndian.PutUint32(b[10:], size)
	binary.BigEndian.PutUint32(b[14:], size)
	if dir {
		b[25] = 2
	}
	binary.LittleEndian.PutUint16(b[28:], 1)
	binary.BigEndian.PutUint16(b[30:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
	return l
}
