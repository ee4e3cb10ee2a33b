package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// grubModules are built into the standalone GRUB image made with
// grub-mkstandalone (what the ISO's grub.cfg and the stub need).
var grubModules = []string{"part_gpt", "part_msdos", "iso9660", "fat", "search", "search_fs_file",
	"configfile", "normal", "linux", "serial", "terminal", "echo", "all_video", "test"}

// grubInstallModules are copied into the image's memdisk, loadable with insmod.
var grubInstallModules = []string{"part_gpt", "part_msdos", "iso9660", "fat", "search", "search_fs_file",
	"search_label", "search_fs_uuid", "configfile", "normal", "linux", "serial", "terminal", "echo",
	"efi_gop", "efi_uga", "all_video", "video_fb", "test", "ls", "cat"}

// grubStub is the configuration embedded in a standalone GRUB image and put
// next to BOOTX64.EFI in efiboot.img: find the ISO by a stamp file that
// every lightsout boot ISO has and efiboot.img has not, then read the ISO's
// EFI/BOOT/grub.cfg.
func grubStub(stamp string) string {
	return fmt.Sprintf(`search --no-floppy --set=root --file /%s
set prefix=($root)/EFI/BOOT
configfile ($root)/EFI/BOOT/grub.cfg
`, stamp)
}

// grubConfig renders the ISO's grub.cfg (Ironic's grub_conf.template with
// serial console output and linux/initrd, which work with and without the
// distributions' linuxefi patches).
func grubConfig(cmdline string) string {
	return fmt.Sprintf(`if serial --unit=0 --speed=115200; then
  terminal_input serial console
  terminal_output serial console
fi
insmod all_video
set default=0
set timeout=0
set hidden_timeout_quiet=false

menuentry "boot_partition" {
  linux /vmlinuz %s
  initrd /initrd
}
`, cmdline)
}

// isolinuxConfig renders isolinux.cfg (Ironic's isolinux_config.template
// plus a serial console and no prompt).
func isolinuxConfig(cmdline string) string {
	return fmt.Sprintf(`SERIAL 0 115200
DEFAULT boot
PROMPT 0
TIMEOUT 0

LABEL boot
  KERNEL /vmlinuz
  APPEND initrd=/initrd %s
`, cmdline)
}

// makeGrubStandalone builds a standalone GRUB EFI image (BOOTX64.EFI) with
// the host's grub-mkstandalone (Debian grub-efi-amd64-bin) whose embedded
// configuration is stub. It returns the path of the image inside dir.
func makeGrubStandalone(ctx context.Context, tool, dir, stub string) (string, error) {
	if tool == "" {
		tool = "grub-mkstandalone"
	}
	bin, err := exec.LookPath(tool)
	if err != nil {
		return "", fmt.Errorf("UEFI boot needs an EFI loader: %s not found (install grub-efi-amd64-bin and grub-common), "+
			"or pass uefi_from (a deploy ISO) or efi_loader (a BOOTX64.EFI), or build BIOS-only", tool)
	}
	embed := filepath.Join(dir, "embed.cfg")
	if err := os.WriteFile(embed, []byte(stub), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "BOOTX64.EFI")
	cmd := exec.CommandContext(ctx, bin, "-O", "x86_64-efi", "-o", out,
		"--modules="+strings.Join(grubModules, " "),
		"--install-modules="+strings.Join(grubInstallModules, " "),
		"--locales=", "--fonts=", "--themes=",
		"boot/grub/grub.cfg="+embed)
	if msg, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// buildEFIBoot writes efiboot.img (FAT12) to dst holding
// EFI/BOOT/BOOTX64.EFI (from loader) and EFI/BOOT/grub.cfg (stub).
func buildEFIBoot(ctx context.Context, dst, loader, stub string) error {
	return buildEFIBootAt(ctx, dst, loader, stub, time.Time{})
}

// buildEFIBootAt is buildEFIBoot dating the image mtime (reproducible)
// when it is not zero.
func buildEFIBootAt(ctx context.Context, dst, loader, stub string, mtime time.Time) error {
	st, err := os.Stat(loader)
	if err != nil {
		return fmt.Errorf("EFI loader: %w", err)
	}
	if !st.Mode().IsRegular() {
		return invalidf("EFI loader %s is not a regular file", loader)
	}
	// payload + FATs/root/directories + slack, rounded up to 64 KiB
	size := (st.Size() + int64(len(stub)) + 256<<10 + 64<<10 - 1) / (64 << 10) * (64 << 10)
	if size > MaxFloppySize {
		return invalidf("EFI loader %s is %d bytes; efiboot.img holds at most about %d", loader, st.Size(), MaxFloppySize-256<<10)
	}
	img, err := buildFATAt(ctx, size, "EFIBOOT", []fatFile{
		{name: "EFI/BOOT/BOOTX64.EFI", source: loader},
		{name: "EFI/BOOT/grub.cfg", data: []byte(stub)},
	}, mtime)
	if err != nil {
		return fmt.Errorf("build efiboot.img: %w", err)
	}
	return os.WriteFile(dst, img, 0o644)
}

// deployISOFiles finds efiboot.img and grub.cfg in the deploy ISO at p (as
// Ironic did with a loop mount): efiboot.img is the first found in a
// depth-first sorted walk; grub.cfg prefers EFI/BOOT/grub.cfg, then
// boot/grub/grub.cfg, then the first found.
func deployISOFiles(p string) (tree *isoTree, closeFn func() error, efiboot, grubcfg string, err error) {
	tree, closeFn, err = openISOTree(p)
	if err != nil {
		return nil, nil, "", "", err
	}
	var efis, grubs []string
	for _, e := range tree.Entries { // depth-first, sorted
		switch {
		case e.Dir:
		case strings.EqualFold(path.Base(e.Path), "efiboot.img"):
			efis = append(efis, e.Path)
		case strings.EqualFold(path.Base(e.Path), "grub.cfg"):
			grubs = append(grubs, e.Path)
		}
	}
	if len(efis) == 0 || len(grubs) == 0 {
		closeFn()
		return nil, nil, "", "", invalidf("deploy ISO %s does not contain efiboot.img and grub.cfg (found %d efiboot.img, %d grub.cfg); "+
			"pass efi_loader instead", p, len(efis), len(grubs))
	}
	grubcfg = grubs[0]
	for _, pref := range []string{"efi/boot/grub.cfg", "boot/grub/grub.cfg"} {
		for _, g := range grubs {
			if strings.EqualFold(g, pref) {
				grubcfg = g
				goto found
			}
		}
	}
found:
	return tree, closeFn, efis[0], grubcfg, nil
}

// copyOutOfISO copies the file src of the ISO tree to dst.
func copyOutOfISO(ctx context.Context, tree *isoTree, src, dst string) error {
	e, ok := tree.Lookup(src)
	if !ok {
		return fmt.Errorf("open %s in ISO: %w", src, os.ErrNotExist)
	}
	in, err := e.Open()
	if err != nil {
		return fmt.Errorf("open %s in ISO: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		out.Close()
		return fmt.Errorf("copy %s out of ISO: %w", src, err)
	}
	return out.Close()
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
