package deployagent

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// ext superblock fields (the superblock starts 1024 bytes into the file system).
const (
	extSuperOffset = 1024
	extMagicOffset = 0x38 // le16 0xEF53
	extUUIDOffset  = 0x68 // 16 bytes
)

// extUUID returns the file system UUID of the ext2/3/4 file system starting
// at byte off of f, or "" when there is none.
func extUUID(f *os.File, off int64) string {
	sb := make([]byte, 0x78)
	if n, _ := f.ReadAt(sb, off+extSuperOffset); n < len(sb) || binary.LittleEndian.Uint16(sb[extMagicOffset:]) != 0xEF53 {
		return ""
	}
	u := sb[extUUIDOffset : extUUIDOffset+16]
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// findRootPartition finds the partition of the disk at path whose ext2/3/4
// file system UUID (or, failing that, GPT partition GUID) is uuid, as IPA
// finds root_uuid. The error names uuid and the file systems found.
func findRootPartition(path, uuid string) (Partition, error) {
	want := strings.ToLower(strings.TrimSpace(uuid))
	pt, err := ReadPartitions(path)
	if err != nil {
		return Partition{}, fmt.Errorf("reading the partition table: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return Partition{}, err
	}
	defer f.Close()
	var seen []string
	for _, p := range pt.Partitions {
		fs := extUUID(f, p.Start)
		if fs == want {
			return p, nil
		}
		if fs != "" {
			seen = append(seen, fmt.Sprintf("partition %d: ext UUID %s", p.Number, fs))
		}
	}
	for _, p := range pt.Partitions {
		if p.GUID != "" && p.GUID == want {
			if extUUID(f, p.Start) == "" {
				return Partition{}, fmt.Errorf("partition %d (GUID %s) holds no ext2/3/4 file system: the lightsout agent mounts ext4 roots only", p.Number, want)
			}
			return p, nil
		}
	}
	if pt.Kind == "" {
		return Partition{}, fmt.Errorf("no partition with root_uuid %s: the disk has no partition table", want)
	}
	if len(seen) == 0 {
		seen = []string{"none"}
	}
	return Partition{}, fmt.Errorf("no partition with root_uuid %s (the ext2/3/4 file system UUID of the image's root; found %s)", want, strings.Join(seen, ", "))
}

// installBootloader is IPA's image.install_bootloader(root_uuid,
// efi_system_part_uuid=None, prep_boot_part_uuid=None, target_boot_mode=
// 'bios') for the BIOS case (extensions/image.py _install_grub2): the
// partition holding the file system root_uuid on the disk the image went
// to is mounted, /dev, /proc, /sys and /run are bind-mounted into it, and
// the image's own grub-install (or grub2-install) --target=i386-pc <disk>
// and grub-mkconfig run chrooted into it. Everything is unmounted on every
// path. UEFI is refused (see installBootloaderUEFI).
func (a *Agent) installBootloader(ctx context.Context, params map[string]any) (any, *RESTError) {
	rootUUID, _ := params["root_uuid"].(string)
	if strings.TrimSpace(rootUUID) == "" {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters",
			Details: "root_uuid is required: the file system UUID of the partition image's root (get_partition_uuids or the deploy's root_uuid_or_disk_id)"}
	}
	mode, _ := params["target_boot_mode"].(string)
	if mode == "" {
		mode = "bios"
	}
	switch mode {
	case "bios":
	case "uefi":
		return nil, execError("image.install_bootloader with target_boot_mode uefi is not supported by the lightsout agent yet " +
			"(BIOS only: grub-install --target=i386-pc); use boot_mode bios, boot_option netboot, a whole-disk image, " +
			"or an ironic-python-agent ramdisk for UEFI local boot of a partition image")
	default:
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters",
			Details: fmt.Sprintf("target_boot_mode %q: want bios or uefi", mode)}
	}
	a.stopISCSITarget() // IPA cleans up the iSCSI target first
	a.mu.Lock()
	dev := a.rootDisk
	a.mu.Unlock()
	if dev == nil {
		d, err := a.RootDevice()
		if err != nil {
			return nil, execError("finding the root device: %v", err)
		}
		dev = &d
	}
	if f, err := os.Open(dev.Path); err == nil { // the partitions were written from outside (iSCSI)
		rereadPartitions(f)
		f.Close()
	}
	part, err := findRootPartition(dev.Path, rootUUID)
	if err != nil {
		return nil, execError("installing the boot loader on %s: %v", dev.Name, err)
	}
	a.Console("%s start root_uuid=%s disk=%s partition=%d mode=%s", ConsoleBootloader, strings.ToLower(rootUUID), dev.Name, part.Number, mode)
	if err := installGrubBIOS(ctx, *dev, part, strings.ToLower(rootUUID)); err != nil {
		return nil, execError("installing the boot loader (GRUB, BIOS) on %s: %s", dev.Name, a.redact(err.Error()))
	}
	a.Console("%s installed root_uuid=%s disk=%s mode=%s", ConsoleBootloader, strings.ToLower(rootUUID), dev.Name, mode)
	return nil, nil
}

// tailLines is the last n lines of s (a tool's stderr in error messages).
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
