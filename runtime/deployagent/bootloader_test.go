package deployagent_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/agent"
	"github.com/lightsout/lightsout/runtime/deployagent"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestInstallBootloaderArguments drives image.install_bootloader through the
// agent's API against a file-backed disk holding a GPT and an ext4 file
// system with a known UUID in partition 2: the argument checks, a root_uuid
// on no partition (the error names it and what was found), the EFI system
// partition lookup (by FAT serial, by partition GUID, by type; without a
// FAT file system) and a root_uuid found (partition 2; a regular file has
// no partition device node, so the install stops there with a message).
func TestInstallBootloaderArguments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	testenv.RequireTools(t, "sgdisk", "mkfs.ext4", "mkfs.vfat")
	e := start(t, ctx, 64<<20)
	const fsUUID = "4c494748-5453-4f55-8000-0000000000c7"
	sh(t, "sgdisk", "-n", "1:2048:+8M", "-t", "1:ef00", "-n", "2:0:0", "-t", "2:8300", e.disk)
	off := int64(2048+8*2048) * 512
	sh(t, "mkfs.ext4", "-q", "-F", "-U", fsUUID, "-E", "offset="+strconv.FormatInt(off, 10), e.disk, "32M")

	espGUID := strings.ToUpper(strings.TrimSpace(sh(t, "sgdisk", "-i", "1", e.disk)))
	if i := strings.Index(espGUID, "PARTITION UNIQUE GUID: "); i >= 0 {
		espGUID = strings.Fields(espGUID[i+len("PARTITION UNIQUE GUID: "):])[0]
	} else {
		t.Fatalf("sgdisk -i 1: %s", espGUID)
	}
	makeFAT := func() { sh(t, "mkfs.vfat", "-i", "1234ABCD", "--offset", "2048", e.disk, "8192") }
	for _, tc := range []struct {
		name   string
		before func()
		params map[string]any
		want   []string
	}{
		{"no root_uuid", nil, map[string]any{"target_boot_mode": "bios"}, []string{"root_uuid is required"}},
		{"bad boot mode", nil, map[string]any{"root_uuid": fsUUID, "target_boot_mode": "legacy"}, []string{`target_boot_mode "legacy"`, "bios or uefi"}},
		{"uefi: no such ESP", nil, map[string]any{"root_uuid": fsUUID, "efi_system_part_uuid": "1234-ABCD", "target_boot_mode": "uefi"},
			[]string{"no partition with efi_system_part_uuid 1234-ABCD"}},
		{"uefi: ESP without FAT", nil, map[string]any{"root_uuid": fsUUID, "target_boot_mode": "uefi"},
			[]string{"EFI system partition 1 holds no FAT file system"}},
		{"uefi: ESP by FAT serial", makeFAT, map[string]any{"root_uuid": fsUUID, "efi_system_part_uuid": "1234-abcd", "target_boot_mode": "uefi"},
			[]string{"partition 2:", "is not a block device"}},
		{"uefi: ESP by partition GUID", nil, map[string]any{"root_uuid": fsUUID, "efi_system_part_uuid": espGUID, "target_boot_mode": "uefi"},
			[]string{"partition 2:", "is not a block device"}},
		{"uefi: ESP by type", nil, map[string]any{"root_uuid": fsUUID, "target_boot_mode": "uefi"},
			[]string{"partition 2:", "is not a block device"}},
		{"root_uuid not found", nil, map[string]any{"root_uuid": "4C494748-5453-4F55-8000-00000000DEAD"},
			[]string{"no partition with root_uuid 4c494748-5453-4f55-8000-00000000dead", "partition 2: ext UUID " + fsUUID, "/dev/vda"}},
		{"root_uuid found", nil, map[string]any{"root_uuid": fsUUID, "target_boot_mode": "bios"},
			[]string{"partition 2:", "is not a block device"}},
	} {
		if tc.before != nil {
			tc.before()
		}
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.client.Run(ctx, e.agentURL, token, "image.install_bootloader", tc.params, true)
			if err != nil {
				if re := err.Error(); !containsAll(re, tc.want) {
					t.Fatalf("error %q, want %q", re, tc.want)
				}
				return
			}
			if res.CommandStatus != agent.StatusFailed || !containsAll(res.ErrorMessage(), tc.want) {
				t.Fatalf("status %s error %q, want FAILED with %q", res.CommandStatus, res.ErrorMessage(), tc.want)
			}
		})
	}
	if strings.Contains(e.console.String(), deployagent.ConsoleBootloader+" installed") {
		t.Errorf("console reports an install that failed:\n%s", e.console.String())
	}
}

func containsAll(s string, subs []string) bool {
	for _, w := range subs {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
