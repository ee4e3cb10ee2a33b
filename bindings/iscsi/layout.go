package iscsi

import (
	"fmt"
	"strings"
)

// The partition layout of a partition-image deploy (ironic-ilo-behaviour
// §5.1, `work_on_disk` / ironic-lib `make_partitions`):
//
//   - disk label: instance_info.capabilities.disk_label when set (msdos or
//     gpt), else gpt for UEFI and msdos for BIOS (ironic-lib; K/L chose gpt
//     only for UEFI local boot);
//   - then, each only when asked for and in this order: an EFI System
//     partition (UEFI local boot, 200 MiB, [deploy] efi_system_partition_size),
//     a BIOS boot partition (BIOS local boot on gpt, 1 MiB, for GRUB's core
//     image), ephemeral, swap, configdrive;
//   - root last, root_gb in size, so that cloud-init's growpart can grow it
//     to the end of the disk (the reason ironic-lib gives for the order).
//
// Partitions start at 1 MiB and follow each other without gaps (parted's
// MiB units, as Ironic's DiskPartitioner). The configdrive partition is
// the config drive rounded up to a MiB, at most 64 MiB (ironic-lib's
// MAX_CONFIG_DRIVE_SIZE_MB).

// Partition roles, as keys of the result's partitions table.
const (
	RoleESP         = "efi"
	RoleBIOSBoot    = "bios_boot"
	RoleEphemeral   = "ephemeral"
	RoleSwap        = "swap"
	RoleConfigDrive = "configdrive"
	RoleRoot        = "root"
)

// Sizes of the fixed partitions and limits, in MiB.
const (
	ESPSizeMB        = 200 // [deploy] efi_system_partition_size
	BIOSBootSizeMB   = 1   // ironic-lib bios_boot_partition_size
	MaxConfigDriveMB = 64  // ironic-lib MAX_CONFIG_DRIVE_SIZE_MB
)

const (
	mib          = int64(1) << 20
	sectorSize   = 512
	gptTailBytes = 33 * sectorSize // backup partition entries (32 sectors) + backup header
	msdosMaxLBA  = int64(1) << 32  // msdos partitions address 2^32 sectors (2 TiB)
)

// Partitioning is what the node asks of a partition-image deploy.
type Partitioning struct {
	BootMode      string // "bios" (default) or "uefi"
	BootOption    string // "netboot" (default, Ironic K/L) or "local"
	DiskLabel     string // "" (by boot mode), "msdos" or "gpt"
	RootMB        int64  // instance_info.root_gb * 1024, required
	SwapMB        int64  // instance_info.swap_mb
	EphemeralMB   int64  // instance_info.ephemeral_gb * 1024
	ConfigDriveMB int64  // size of the config drive, rounded up to a MiB
}

// Partition is one partition of a Layout.
type Partition struct {
	Role     string
	Number   int   // 1-based, as the kernel names it
	Start    int64 // bytes from the start of the disk
	Size     int64 // bytes
	Bootable bool  // msdos boot flag (BIOS local boot: root)
	PartUUID string
}

// End is the first byte after the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Layout is a computed partition table.
type Layout struct {
	BootMode   string // "bios" or "uefi", defaults applied
	BootOption string // "local" or "netboot", defaults applied
	DiskLabel  string // "msdos" or "gpt"
	DiskSize   int64
	Partitions []Partition
}

// Find returns the partition with the role, if any.
func (l Layout) Find(role string) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Role == role {
			return p, true
		}
	}
	return Partition{}, false
}

// PlanLayout computes the partition layout of a disk of diskSize bytes.
// Errors are *Error of kind invalid_args or too_large and name the
// instance_info field to change.
func PlanLayout(diskSize int64, p Partitioning) (Layout, error) {
	bad := func(format string, a ...any) (Layout, error) {
		return Layout{}, &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, a...)}
	}
	mode := strings.ToLower(p.BootMode)
	switch mode {
	case "":
		mode = "bios"
	case "bios", "uefi":
	default:
		return bad("boot mode %q: want bios or uefi (instance_info.capabilities.boot_mode)", p.BootMode)
	}
	option := strings.ToLower(p.BootOption)
	switch option {
	case "":
		option = "netboot"
	case "local", "netboot":
	default:
		return bad("boot option %q: want local or netboot (instance_info.capabilities.boot_option)", p.BootOption)
	}
	label := strings.ToLower(p.DiskLabel)
	switch label {
	case "":
		label = "msdos"
		if mode == "uefi" {
			label = "gpt"
		}
	case "msdos", "gpt":
	default:
		return bad("disk label %q: want msdos or gpt (instance_info.capabilities.disk_label)", p.DiskLabel)
	}
	switch {
	case p.RootMB <= 0:
		return bad("instance_info.root_gb must be set (> 0) for a partition image: it is the size of the root partition")
	case p.SwapMB < 0:
		return bad("instance_info.swap_mb %d must not be negative", p.SwapMB)
	case p.EphemeralMB < 0:
		return bad("instance_info.ephemeral_gb must not be negative (%d MiB)", p.EphemeralMB)
	case p.ConfigDriveMB < 0:
		return bad("config drive size %d MiB must not be negative", p.ConfigDriveMB)
	case p.ConfigDriveMB > MaxConfigDriveMB:
		return bad("Config drive size exceeds maximum limit of %dMiB (instance_info.configdrive is %d MiB)", MaxConfigDriveMB, p.ConfigDriveMB)
	}

	l := Layout{BootMode: mode, BootOption: option, DiskLabel: label, DiskSize: diskSize}
	next := mib
	add := func(role string, sizeMB int64, bootable bool) {
		l.Partitions = append(l.Partitions, Partition{Role: role, Number: len(l.Partitions) + 1, Start: next, Size: sizeMB * mib, Bootable: bootable})
		next += sizeMB * mib
	}
	if mode == "uefi" && option == "local" {
		add(RoleESP, ESPSizeMB, false)
	}
	if mode == "bios" && option == "local" && label == "gpt" {
		add(RoleBIOSBoot, BIOSBootSizeMB, false)
	}
	if p.EphemeralMB > 0 {
		add(RoleEphemeral, p.EphemeralMB, false)
	}
	if p.SwapMB > 0 {
		add(RoleSwap, p.SwapMB, false)
	}
	if p.ConfigDriveMB > 0 {
		add(RoleConfigDrive, p.ConfigDriveMB, false)
	}
	add(RoleRoot, p.RootMB, option == "local" && mode == "bios" && label == "msdos")

	usable := diskSize
	if label == "gpt" {
		usable -= gptTailBytes
	}
	if next > usable {
		var parts []string
		for _, q := range l.Partitions {
			parts = append(parts, fmt.Sprintf("%s %d", q.Role, q.Size/mib))
		}
		return Layout{}, &Error{Kind: KindTooLarge, Msg: fmt.Sprintf(
			"the partitions need %d MiB (1 MiB alignment, %s MiB%s) but the disk has %d MiB: lower instance_info.root_gb (root %d MiB)"+
				", swap_mb or ephemeral_gb, or choose a larger root disk with properties.root_device",
			MB(next+diskSize-usable), strings.Join(parts, " MiB, "), gptNote(label), diskSize/mib, p.RootMB)}
	}
	if label == "msdos" && next > msdosMaxLBA*sectorSize {
		return bad("the partitions end past 2 TiB, which an msdos label cannot address: set instance_info.capabilities.disk_label to gpt")
	}
	return l, nil
}

func gptNote(label string) string {
	if label == "gpt" {
		return ", GPT backup header"
	}
	return ""
}
