package iscsi_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/iscsi"
)

const mib = int64(1) << 20

func TestPlanLayout(t *testing.T) {
	type part struct {
		role     string
		startMB  int64
		sizeMB   int64
		bootable bool
	}
	for _, tc := range []struct {
		name  string
		disk  int64
		p     iscsi.Partitioning
		label string
		want  []part
	}{
		{"bios netboot root only", 2048 * mib, iscsi.Partitioning{RootMB: 1024}, "msdos",
			[]part{{"root", 1, 1024, false}}},
		{"bios local: root bootable", 2048 * mib, iscsi.Partitioning{BootOption: "local", RootMB: 1024}, "msdos",
			[]part{{"root", 1, 1024, true}}},
		{"bios everything, root last", 4096 * mib, iscsi.Partitioning{RootMB: 1024, SwapMB: 512, EphemeralMB: 1024, ConfigDriveMB: 3}, "msdos",
			[]part{{"ephemeral", 1, 1024, false}, {"swap", 1025, 512, false}, {"configdrive", 1537, 3, false}, {"root", 1540, 1024, false}}},
		{"bios local on gpt: BIOS boot partition first", 2048 * mib, iscsi.Partitioning{BootOption: "local", DiskLabel: "gpt", RootMB: 1024, SwapMB: 8}, "gpt",
			[]part{{"bios_boot", 1, 1, false}, {"swap", 2, 8, false}, {"root", 10, 1024, false}}},
		{"uefi local: gpt, ESP first", 2048 * mib, iscsi.Partitioning{BootMode: "uefi", BootOption: "local", RootMB: 1024, SwapMB: 64, ConfigDriveMB: 1}, "gpt",
			[]part{{"efi", 1, 200, false}, {"swap", 201, 64, false}, {"configdrive", 265, 1, false}, {"root", 266, 1024, false}}},
		{"uefi netboot: gpt, no ESP", 2048 * mib, iscsi.Partitioning{BootMode: "UEFI", RootMB: 1024}, "gpt",
			[]part{{"root", 1, 1024, false}}},
		{"uefi local on msdos (disk_label): ESP, no boot flag", 2048 * mib, iscsi.Partitioning{BootMode: "uefi", BootOption: "local", DiskLabel: "msdos", RootMB: 1024}, "msdos",
			[]part{{"efi", 1, 200, false}, {"root", 201, 1024, false}}},
		{"msdos: root may reach the last sector", 1025 * mib, iscsi.Partitioning{RootMB: 1024}, "msdos",
			[]part{{"root", 1, 1024, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := iscsi.PlanLayout(tc.disk, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if l.DiskLabel != tc.label {
				t.Errorf("label %s, want %s", l.DiskLabel, tc.label)
			}
			if len(l.Partitions) != len(tc.want) {
				t.Fatalf("layout %s, want %v", l, tc.want)
			}
			for i, w := range tc.want {
				p := l.Partitions[i]
				if p.Role != w.role || p.Number != i+1 || p.Start != w.startMB*mib || p.Size != w.sizeMB*mib || p.Bootable != w.bootable {
					t.Errorf("partition %d = %+v, want %+v", i+1, p, w)
				}
			}
		})
	}
}

func TestPlanLayoutRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		disk int64
		p    iscsi.Partitioning
		kind iscsi.Kind
		want []string
	}{
		{"root alone too large", 1024 * mib, iscsi.Partitioning{RootMB: 1024}, iscsi.KindTooLarge,
			[]string{"need 1025 MiB", "disk has 1024 MiB", "instance_info.root_gb", "root 1024 MiB"}},
		{"gpt backup does not fit", 1025 * mib, iscsi.Partitioning{BootMode: "uefi", RootMB: 1024}, iscsi.KindTooLarge,
			[]string{"GPT backup header", "disk has 1025 MiB"}},
		{"swap and ephemeral push root off the disk", 2048 * mib, iscsi.Partitioning{RootMB: 1024, SwapMB: 512, EphemeralMB: 1024}, iscsi.KindTooLarge,
			[]string{"need 2561 MiB", "swap_mb", "ephemeral_gb", "ephemeral 1024 MiB, swap 512 MiB"}},
		{"ESP does not fit", 1100 * mib, iscsi.Partitioning{BootMode: "uefi", BootOption: "local", RootMB: 1024}, iscsi.KindTooLarge,
			[]string{"efi 200 MiB"}},
		{"no root_gb", 1024 * mib, iscsi.Partitioning{}, iscsi.KindInvalid, []string{"instance_info.root_gb"}},
		{"config drive too large", 4096 * mib, iscsi.Partitioning{RootMB: 1024, ConfigDriveMB: 65}, iscsi.KindInvalid,
			[]string{"Config drive size exceeds maximum limit of 64MiB"}},
		{"bad disk_label", 4096 * mib, iscsi.Partitioning{RootMB: 1024, DiskLabel: "dos"}, iscsi.KindInvalid,
			[]string{"instance_info.capabilities.disk_label"}},
		{"bad boot option", 4096 * mib, iscsi.Partitioning{RootMB: 1024, BootOption: "pxe"}, iscsi.KindInvalid,
			[]string{"instance_info.capabilities.boot_option"}},
		{"bad boot mode", 4096 * mib, iscsi.Partitioning{RootMB: 1024, BootMode: "legacy"}, iscsi.KindInvalid,
			[]string{"boot_mode"}},
		{"negative swap", 4096 * mib, iscsi.Partitioning{RootMB: 1024, SwapMB: -1}, iscsi.KindInvalid,
			[]string{"instance_info.swap_mb"}},
		{"msdos past 2 TiB", 3 << 40, iscsi.Partitioning{RootMB: 2200 * 1024}, iscsi.KindInvalid,
			[]string{"disk_label to gpt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iscsi.PlanLayout(tc.disk, tc.p)
			var e *iscsi.Error
			if !errors.As(err, &e) || e.Kind != tc.kind {
				t.Fatalf("err = %v, want kind %s", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Msg, w) {
					t.Errorf("%q lacks %q", e.Msg, w)
				}
			}
		})
	}
	// the same root fits on gpt once the disk leaves room for the backup
	if _, err := iscsi.PlanLayout(1026*mib, iscsi.Partitioning{BootMode: "uefi", RootMB: 1024}); err != nil {
		t.Fatal(err)
	}
}
