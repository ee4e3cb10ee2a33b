package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/filesystem/fat12"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

func TestBootCmdline(t *testing.T) {
	const u = "0b6a7d2e-3c1f-4b8e-9a51-7f0e2d1c3b4a"
	tests := []struct {
		name, uuid, params, want, err string
	}{
		{name: "uuid and params", uuid: u, params: "nofb  nomodeset vga=normal console=ttyS0",
			want: "root=UUID=" + u + " nofb nomodeset vga=normal console=ttyS0"},
		{name: "no params", uuid: u, want: "root=UUID=" + u},
		{name: "vfat uuid", uuid: "1A2B-3C4D", params: "ro", want: "root=UUID=1A2B-3C4D ro"},
		{name: "missing uuid", params: "ro", err: "root_uuid: the root filesystem UUID is required"},
		{name: "blank in uuid", uuid: u + " init=/bin/sh", err: "expected hex digits and dashes"},
		{name: "root= in params", uuid: u, params: "ro root=/dev/sda1", err: `"root=/dev/sda1" conflicts`},
		{name: "two lines", uuid: u, params: "ro\ninit=/bin/sh", err: "single line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BootCmdline(tt.uuid, tt.params)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err %v, want ErrInvalid with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// readBoth reads name from the ISO at path with the package's reader and
// with xorriso's osirrox (an independent one), which must agree. (go-diskfs
// v1.9.4's reader cannot list these ISOs' directories, nor xorriso's.)
func readBoth(t *testing.T, path, name string) string {
	t.Helper()
	own, err := ReadISOFile(path, name)
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(filepath.Join(extractISO(t, path), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own, other) {
		t.Fatalf("%s: ReadISOFile and osirrox disagree:\n%s\n---\n%s", name, own, other)
	}
	return string(own)
}

// An instance boot ISO carries root=UUID=… in isolinux.cfg and grub.cfg,
// boots BIOS and UEFI, and is reproducible: the same kernel, ramdisk and
// command line give the same bytes whatever the sources' times.
func TestWriteBootISO(t *testing.T) {
	testenv.RequireTools(t, "grub-mkstandalone", "xorriso", "osirrox")
	testenv.RequireFiles(t, isolinuxCandidates[0], ldlinuxCandidates[0])
	t.Setenv("SOURCE_DATE_EPOCH", "1") // restored after the test; os.Unsetenv below
	os.Unsetenv("SOURCE_DATE_EPOCH")   // xorriso refuses an empty one
	in := newISOInputs(t)
	const u = "0b6a7d2e-3c1f-4b8e-9a51-7f0e2d1c3b4a"
	build := func(name string, opts BootISOOptions) string {
		p := filepath.Join(in.dir, name)
		if err := WriteBootISO(context.Background(), p, opts); err != nil {
			t.Fatal(err)
		}
		return p
	}
	opts := BootISOOptions{RootUUID: u, CacheDir: t.TempDir(), ISO: ISOOptions{Kernel: in.kernel, Ramdisk: in.ramdisk, Append: "nofb console=ttyS0"}}
	a := build("a.iso", opts)
	if plats := elToritoReport(t, a); !slices.Equal(plats, []string{"BIOS", "UEFI"}) {
		t.Errorf("El Torito platforms %v, want BIOS and UEFI", plats)
	}
	want := "root=UUID=" + u + " nofb console=ttyS0"
	if cfg := readBoth(t, a, "isolinux/isolinux.cfg"); !strings.Contains(cfg, "APPEND initrd=/initrd "+want+"\n") {
		t.Errorf("isolinux.cfg lacks %q:\n%s", want, cfg)
	}
	if cfg := readBoth(t, a, "EFI/BOOT/grub.cfg"); !strings.Contains(cfg, "linux /vmlinuz "+want+"\n") {
		t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
	}

	// the same inputs touched later (a fresh download) and another build time
	later := time.Now().Add(time.Hour)
	for _, p := range []string{in.kernel, in.ramdisk} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	b := build("b.iso", opts)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !qemutest.SameBytes(t, ab, bb) {
		t.Errorf("two builds from the same inputs differ (sizes %d, %d)", len(ab), len(bb))
	}
	// SOURCE_DATE_EPOCH dates it; another root UUID changes it
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	c := build("c.iso", opts)
	cb, _ := os.ReadFile(c)
	os.Unsetenv("SOURCE_DATE_EPOCH")
	if bytes.Equal(ab, cb) {
		t.Error("SOURCE_DATE_EPOCH did not change the ISO's dates")
	}
	if !bytes.Contains(cb[16*2048:17*2048], []byte("2023111422132000")) {
		t.Error("the volume creation date is not SOURCE_DATE_EPOCH 1700000000")
	}
	// the FAT entries of efiboot.img carry that date too (not the clock)
	efi, err := ReadISOFile(c, isoEFIBootPath)
	if err != nil {
		t.Fatal(err)
	}
	mem := newMemBackend(int64(len(efi)))
	copy(mem.Bytes(), efi)
	fsys, err := fat12.Read(mem, int64(len(efi)), 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fsys.ReadDir("EFI/BOOT")
	if err != nil || len(entries) == 0 {
		t.Fatalf("efiboot.img /EFI/BOOT: %v, %v", entries, err)
	}
	for _, en := range entries {
		info, _ := en.Info()
		if want := time.Unix(1700000000, 0).UTC(); !info.ModTime().Equal(want) {
			t.Errorf("efiboot.img %s dated %v, want %v", en.Name(), info.ModTime(), want)
		}
	}
	opts.RootUUID = "1A2B-3C4D"
	opts.ISO.BIOSOnly = true
	d := build("d.iso", opts)
	if line, err := KernelCmdline(d); err != nil || line != "root=UUID=1A2B-3C4D nofb console=ttyS0" {
		t.Errorf("bios-only command line %q, %v", line, err)
	}
	if plats := elToritoReport(t, d); !slices.Equal(plats, []string{"BIOS"}) {
		t.Errorf("bios-only platforms %v", plats)
	}
	opts.RootUUID = ""
	if err := WriteBootISO(context.Background(), filepath.Join(in.dir, "e.iso"), opts); !errors.Is(err, ErrInvalid) {
		t.Errorf("no root uuid: %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(filepath.Join(in.dir, "e.iso")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused build left a file")
	}
}
