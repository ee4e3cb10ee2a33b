package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BootISOOptions describes an instance boot ISO (Ironic's netboot of a
// partition image, ironic-ilo-behaviour §4.3): the instance's kernel and
// ramdisk booting the root filesystem RootUUID.
type BootISOOptions struct {
	// ISO carries the kernel, ramdisk, boot loaders and modes; its Append is
	// the extra kernel parameters put after root=UUID=<RootUUID>.
	ISO ISOOptions
	// RootUUID is the UUID of the deployed root filesystem.
	RootUUID string
	// CacheDir keeps the GRUB EFI loader built from the host's
	// grub-mkstandalone (whose output differs on every run) so that boot
	// ISOs are reproducible; default DefaultCacheDir().
	CacheDir string
}

// BootCmdline returns the kernel command line of an instance boot ISO:
// root=UUID=<rootUUID>, then params (Ironic K/L: root=UUID=… plus
// [pxe] pxe_append_params; M: plus kernel_append_params).
func BootCmdline(rootUUID, params string) (string, error) {
	if err := checkRootUUID(rootUUID); err != nil {
		return "", err
	}
	if strings.ContainsAny(params, "\r\n") {
		return "", invalidf("append: the kernel command line must be a single line")
	}
	for _, f := range strings.Fields(params) {
		if strings.HasPrefix(f, "root=") {
			return "", invalidf("append: %q conflicts with root=UUID=%s: drop root= from the kernel parameters"+
				" (instance_info.kernel_append_params)", f, rootUUID)
		}
	}
	return strings.TrimSpace("root=UUID=" + rootUUID + " " + strings.Join(strings.Fields(params), " ")), nil
}

// checkRootUUID accepts the forms blkid prints for UUID=: hex digits and
// dashes (ext4/xfs 8-4-4-4-12, vfat XXXX-XXXX, ...).
func checkRootUUID(u string) error {
	if u == "" {
		return invalidf("root_uuid: the root filesystem UUID is required (the deploy records it as driver_internal_info.root_uuid_or_disk_id)")
	}
	if len(u) > 64 {
		return invalidf("root_uuid %q: longer than 64 characters", u)
	}
	for _, r := range u {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return invalidf("root_uuid %q: expected hex digits and dashes as blkid prints a filesystem UUID", u)
		}
	}
	return nil
}

// WriteBootISO builds the instance boot ISO at path: opts.ISO with the
// kernel command line BootCmdline(opts.RootUUID, opts.ISO.Append) in both
// isolinux.cfg (BIOS) and grub.cfg (UEFI). The build is reproducible: every
// date in the ISO is opts.ISO.ModTime, or $SOURCE_DATE_EPOCH, or 1980-01-01
// UTC (the FAT epoch), so the same kernel, ramdisk and command line give
// the same bytes.
func WriteBootISO(ctx context.Context, path string, opts BootISOOptions) error {
	cmdline, err := BootCmdline(opts.RootUUID, opts.ISO.Append)
	if err != nil {
		return err
	}
	o := opts.ISO
	o.Append = cmdline
	if o.ModTime.IsZero() {
		epoch, err := sourceDateEpoch()
		if err != nil {
			return err
		}
		o.ModTime = time.Unix(epoch, 0)
		if epoch == 0 {
			o.ModTime = fatEpoch // the earliest date efiboot.img's FAT can hold
		}
	}
	if !o.BIOSOnly && o.EFILoader == "" && o.UEFIFrom == "" {
		if o.EFILoader, err = cachedGrubLoader(ctx, o.GrubMkstandalone, opts.CacheDir, o.TempDir); err != nil {
			return err
		}
	}
	return WriteISO(ctx, path, o)
}

// fatEpoch is 1980-01-01 00:00:00 UTC, the first date FAT can store.
var fatEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// grubLoaderWitness is a file of the host's GRUB EFI platform whose size
// and time stand for the installed GRUB version in the cache key.
const grubLoaderWitness = "/usr/lib/grub/x86_64-efi/kernel.img"

// cachedGrubLoader returns a standalone GRUB EFI loader with the ISO stub
// embedded, built once per GRUB version, stub and module list and kept in
// cacheDir/grub (grub-mkstandalone's output carries build times, so two
// builds differ even from the same inputs).
func cachedGrubLoader(ctx context.Context, tool, cacheDir, tempDir string) (string, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	stub := grubStub(isoStampPath)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", tool, stub, strings.Join(grubModules, " "), strings.Join(grubInstallModules, " "))
	if st, err := os.Stat(grubLoaderWitness); err == nil {
		fmt.Fprintf(h, "%d\x00%d", st.Size(), st.ModTime().UnixNano())
	}
	dir := filepath.Join(cacheDir, "grub")
	out := filepath.Join(dir, "BOOTX64-"+hex.EncodeToString(h.Sum(nil))[:16]+".EFI")
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("GRUB loader cache: %w", err)
	}
	scratch, err := os.MkdirTemp(tempDir, "lightsout-grub-")
	if err != nil {
		return "", fmt.Errorf("GRUB loader: %w", err)
	}
	defer os.RemoveAll(scratch)
	built, err := makeGrubStandalone(ctx, tool, scratch, stub)
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(out)+"."+filepath.Base(scratch))
	if err := copyLocal(built, tmp); err != nil {
		return "", fmt.Errorf("GRUB loader cache: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil { // another build may have won: same content
		os.Remove(tmp)
		return "", fmt.Errorf("GRUB loader cache: %w", err)
	}
	return out, nil
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH (0 when unset).
func sourceDateEpoch() (int64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return 0, nil
	}
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil || t < 0 || t > 1<<32-1 {
		return 0, invalidf("SOURCE_DATE_EPOCH %q: expected seconds since 1970 (a 32-bit count)", s)
	}
	return t, nil
}
