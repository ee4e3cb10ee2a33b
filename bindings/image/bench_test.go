package image

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// Speed targets (issue 4), reported as ratios in the same run:
//
//	BenchmarkHybridISO: x_vs_xorriso <= 1.0, x_vs_copy <= 1.5
//	BenchmarkFloppy:    x_vs_mkfs_mcopy <= 0.5
//
// ns/op is lightsout's own time; the reference tools run in the same
// iterations (order rotated, each step after a sync so that none pays for
// another's writeback; outputs stay in the page cache, no fsync) outside
// the benchmark timer. Ratios are of medians. Use -benchtime=5x for
// steadier medians.

// fastRandFile writes size pseudo-random bytes (ChaCha8: incompressible,
// not sparse, cheap to generate).
func fastRandFile(b *testing.B, path string, size int64, seed byte) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var s [32]byte
	s[0] = seed
	if _, err := io.CopyN(f, rand.NewChaCha8(s), size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkHybridISO: a hybrid BIOS+UEFI ISO from a 16 MB kernel and a
// 400 MB ramdisk, against `xorriso -as mkisofs` with the equivalent flags on
// the same tree and against a plain copy of the same bytes.
func BenchmarkHybridISO(b *testing.B) {
	testenv.RequireTools(b, "xorriso", "grub-mkstandalone")
	testenv.RequireFiles(b, isolinuxCandidates[0], ldlinuxCandidates[0])
	dir := b.TempDir()
	kernel := filepath.Join(dir, "vmlinuz-in")
	ramdisk := filepath.Join(dir, "initrd-in")
	fastRandFile(b, kernel, 16<<20, 1)
	fastRandFile(b, ramdisk, 400<<20, 2)
	ctx := context.Background()
	loader, err := makeGrubStandalone(ctx, "", b.TempDir(), grubStub(isoStampPath))
	if err != nil {
		b.Fatal(err)
	}
	const cmdline = "console=ttyS0,115200n8 ipa-api-url=http://127.0.0.1:6385"
	opts := ISOOptions{Kernel: kernel, Ramdisk: ramdisk, Append: cmdline, EFILoader: loader, TempDir: dir}

	// the same tree for xorriso: payloads hard-linked, boot files as ours
	tree := filepath.Join(dir, "tree")
	for _, f := range []struct{ src, dst string }{
		{isolinuxCandidates[0], "isolinux/isolinux.bin"}, {ldlinuxCandidates[0], "isolinux/ldlinux.c32"},
		{loader, "EFI/BOOT/BOOTX64.EFI"},
	} {
		if err := copyLocal(f.src, filepath.Join(tree, f.dst)); err != nil {
			b.Fatal(err)
		}
	}
	for name, content := range map[string]string{"isolinux/isolinux.cfg": isolinuxConfig(cmdline),
		isoGrubCfgPath: grubConfig(cmdline), isoStampPath: "stamp\n"} {
		if err := writeStaged(tree, name, content); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tree, "boot", "grub"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := buildEFIBoot(ctx, filepath.Join(tree, filepath.FromSlash(isoEFIBootPath)), loader, grubStub(isoStampPath)); err != nil {
		b.Fatal(err)
	}
	for src, dst := range map[string]string{kernel: "vmlinuz", ramdisk: "initrd"} {
		if err := os.Link(src, filepath.Join(tree, dst)); err != nil {
			b.Fatal(err)
		}
	}

	out := filepath.Join(dir, "out.iso")
	ours := func() time.Duration {
		start := time.Now()
		if err := WriteISO(ctx, out, opts); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	xorriso := func() time.Duration {
		start := time.Now()
		cmd := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", DefaultVolumeID, "-r",
			"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
			"-eltorito-alt-boot", "-e", isoEFIBootPath, "-no-emul-boot", tree)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("xorriso: %v\n%s", err, msg)
		}
		return time.Since(start)
	}
	plainCopy := func() time.Duration {
		start := time.Now()
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		for _, src := range []string{kernel, ramdisk} {
			in, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, in); err != nil {
				b.Fatal(err)
			}
			in.Close()
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}

	var tOurs, tX, tCopy []time.Duration
	b.SetBytes(16<<20 + 400<<20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// rotate the order so page-cache and writeback effects spread evenly
		steps := []func(){
			func() { b.StartTimer(); d := ours(); b.StopTimer(); tOurs = append(tOurs, d) },
			func() { tX = append(tX, xorriso()) },
			func() { tCopy = append(tCopy, plainCopy()) },
		}
		b.StopTimer()
		for j := range steps {
			// start every step with no dirty pages: no one pays for another's writeback
			syscall.Sync()
			steps[(i+j)%len(steps)]()
			if err := os.Remove(out); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	m := median(tOurs)
	b.ReportMetric(float64(m)/float64(median(tX)), "x_vs_xorriso")
	b.ReportMetric(float64(m)/float64(median(tCopy)), "x_vs_copy")
	b.ReportMetric(median(tX).Seconds(), "xorriso_s")
	b.ReportMetric(median(tCopy).Seconds(), "copy_s")
}

// BenchmarkFloppy: the 1.44 MB parameters floppy against Ironic's
// `mkfs.vfat` + `mcopy` (the parameters file written, then copied in).
func BenchmarkFloppy(b *testing.B) {
	testenv.RequireTools(b, "mkfs.vfat", "mcopy")
	dir := b.TempDir()
	params := map[string]string{"ipa-api-url": "http://127.0.0.1:6385", "ipa-agent-token": "0123456789abcdef0123456789abcdef",
		"boot_method": "vmedia", "BOOTIF": "01-52-54-00-12-34-56", "coreos.configdrive": "0"}
	ctx := context.Background()
	out := filepath.Join(dir, "floppy.img")
	ref := filepath.Join(dir, "ref.img")
	paramsFile := filepath.Join(dir, "parameters.txt")
	var tOurs, tRef []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := WriteFloppy(ctx, out, params, FloppyOptions{}); err != nil {
			b.Fatal(err)
		}
		tOurs = append(tOurs, time.Since(start))

		b.StopTimer()
		_ = os.Remove(ref)
		start = time.Now()
		data, _ := FormatParams(params)
		if err := os.WriteFile(paramsFile, data, 0o644); err != nil {
			b.Fatal(err)
		}
		if msg, err := exec.Command("mkfs.vfat", "-C", "-n", FloppyLabel, ref, "1440").CombinedOutput(); err != nil {
			b.Fatalf("mkfs.vfat: %v\n%s", err, msg)
		}
		if msg, err := exec.Command("mcopy", "-i", ref, paramsFile, "::/parameters.txt").CombinedOutput(); err != nil {
			b.Fatalf("mcopy: %v\n%s", err, msg)
		}
		tRef = append(tRef, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(median(tOurs))/float64(median(tRef)), "x_vs_mkfs_mcopy")
	b.ReportMetric(float64(median(tRef).Microseconds())/1000, "mkfs_mcopy_ms")
}
