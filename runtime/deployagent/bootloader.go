package deployagent

import (
	"context"
	"encoding/binary"
	"errors"
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

// openPartitions reads the partition table of the disk at path and opens
// the disk to read the file systems of its partitions (close it).
func openPartitions(path string) (PartitionTable, *os.File, error) {
	pt, err := ReadPartitions(path)
	if err != nil {
		return PartitionTable{}, nil, fmt.Errorf("reading the partition table: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return PartitionTable{}, nil, err
	}
	return pt, f, nil
}

// findRootPartition finds the partition of the disk at path whose ext2/3/4
// file system UUID (or, failing that, GPT partition GUID) is uuid, as IPA
// finds root_uuid. The error names uuid and the file systems found.
func findRootPartition(path, uuid string) (Partition, error) {
	want := strings.ToLower(strings.TrimSpace(uuid))
	pt, f, err := openPartitions(path)
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

// fatSerial returns the volume serial ("ABCD-1234", as blkid prints it) of
// the FAT file system starting at byte off of f, or "" when there is none.
func fatSerial(f *os.File, off int64) string {
	b := make([]byte, 512)
	if n, _ := f.ReadAt(b, off); n < len(b) || b[510] != 0x55 || b[511] != 0xAA {
		return ""
	}
	var v uint32
	switch {
	case string(b[0x52:0x57]) == "FAT32":
		v = binary.LittleEndian.Uint32(b[0x43:])
	case string(b[0x36:0x39]) == "FAT":
		v = binary.LittleEndian.Uint32(b[0x27:])
	default:
		return ""
	}
	return fmt.Sprintf("%04X-%04X", v>>16, v&0xFFFF)
}

// findESP finds the EFI system partition of the disk at path: the one
// whose GPT partition GUID or FAT volume serial is uuid, or with uuid ""
// the first partition typed as an ESP. It must hold a FAT file system.
func findESP(path, uuid string) (Partition, error) {
	want := strings.TrimSpace(uuid)
	pt, f, err := openPartitions(path)
	if err != nil {
		return Partition{}, err
	}
	defer f.Close()
	for _, p := range pt.Partitions {
		serial := fatSerial(f, p.Start)
		match := p.ESP
		if want != "" {
			match = strings.EqualFold(p.GUID, want) || strings.EqualFold(serial, want)
		}
		if !match {
			continue
		}
		if serial == "" {
			return Partition{}, fmt.Errorf("the EFI system partition %d holds no FAT file system", p.Number)
		}
		return p, nil
	}
	if want == "" {
		return Partition{}, errors.New("no EFI system partition on the disk (pass efi_system_part_uuid)")
	}
	return Partition{}, fmt.Errorf("no partition with efi_system_part_uuid %s (its GPT partition GUID or FAT volume serial)", want)
}

// installBootloader is IPA's image.install_bootloader(root_uuid,
// efi_system_part_uuid=None, prep_boot_part_uuid=None, target_boot_mode=
// 'bios') (extensions/image.py _install_grub2): the partition holding the
// file system root_uuid on the disk the image went to is mounted, /dev,
// /proc, /sys and /run are bind-mounted into it, and the image's own
// grub-install (or grub2-install) and grub-mkconfig run chrooted into it:
// --target=i386-pc <disk> for BIOS; for UEFI, with the ESP mounted on
// /boot/efi, --target=x86_64-efi --removable --no-nvram (the fallback path
// \EFI\BOOT\BOOTX64.EFI: the ramdisk has no efibootmgr to add a boot
// entry). Everything is unmounted on every path. prep_boot_part_uuid (PowerPC)
// is ignored.
func (a *Agent) installBootloader(ctx context.Context, params map[string]any) (any, *RESTError) {
	rootUUID, _ := params["root_uuid"].(string)
	rootUUID = strings.ToLower(strings.TrimSpace(rootUUID))
	if rootUUID == "" {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters",
			Details: "root_uuid is required: the file system UUID of the partition image's root (get_partition_uuids or the deploy's root_uuid_or_disk_id)"}
	}
	mode, _ := params["target_boot_mode"].(string)
	if mode == "" {
		mode = "bios"
	}
	if mode != "bios" && mode != "uefi" {
		return nil, &RESTError{Type: "InvalidCommandParamsError", Code: 400, Message: "Invalid command parameters",
			Details: fmt.Sprintf("target_boot_mode %q: want bios or uefi", mode)}
	}
	espUUID, _ := params["efi_system_part_uuid"].(string)
	a.stopISCSITarget() // IPA cleans up the iSCSI target first
	dev, rerr := a.imageDisk()
	if rerr != nil {
		return nil, rerr
	}
	if f, err := os.Open(dev.Path); err == nil { // the partitions were written from outside (iSCSI)
		rereadPartitions(f)
		f.Close()
	}
	part, err := findRootPartition(dev.Path, rootUUID)
	if err != nil {
		return nil, execError("installing the boot loader on %s: %v", dev.Name, err)
	}
	var esp *Partition
	if mode == "uefi" {
		p, err := findESP(dev.Path, espUUID)
		if err != nil {
			return nil, execError("installing the boot loader (UEFI) on %s: %v", dev.Name, err)
		}
		esp = &p
	}
	a.Console("%s start root_uuid=%s disk=%s partition=%d mode=%s", ConsoleBootloader, rootUUID, dev.Name, part.Number, mode)
	if err := installGrub(ctx, *dev, part, rootUUID, esp); err != nil {
		return nil, execError("installing the boot loader (GRUB, %s) on %s: %s", mode, dev.Name, a.redact(err.Error()))
	}
	a.Console("%s installed root_uuid=%s disk=%s mode=%s", ConsoleBootloader, rootUUID, dev.Name, mode)
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
