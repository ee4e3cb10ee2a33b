package deployagent_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

func TestPickRootDevice(t *testing.T) {
	const G = deployagent.GiB
	disks := []deployagent.Disk{
		{Name: "/dev/sda", Size: 500 * G, Model: "LOGICAL VOLUME", Vendor: "HPE", Serial: "PDNLH0BRH9V1", WWN: "0x600508b1001c5f7e", Rotational: true},
		{Name: "/dev/sdb", Size: 100 * G, Model: "MO0100JFFCF", Vendor: "HPE", Serial: "S3X1NA0K", WWN: "0x5002538c40a1b2c3", Rotational: false},
		{Name: "/dev/sdc", Size: 2 * G, Model: "Virtual Floppy", Serial: "vf1", Rotational: true},
		{Name: "/dev/sr0", Size: 1 * G, ReadOnly: true},
		{Name: "/dev/nvme0n1", Size: 960 * G, Model: "SAMSUNG MZQL2960", Serial: "S64FNE0R", Rotational: false},
	}
	for _, tc := range []struct {
		name  string
		hints map[string]any
		want  string // device name or error substring
	}{
		{"no hints: smallest >= 4 GiB", nil, "/dev/sdb"},
		{"size equal (GiB)", map[string]any{"size": 500}, "/dev/sda"},
		{"size from JSON number", map[string]any{"size": float64(960)}, "/dev/nvme0n1"},
		{"size >=", map[string]any{"size": ">= 600"}, "/dev/nvme0n1"},
		{"size <", map[string]any{"size": "< 200"}, "/dev/sdb"},
		{"size <or>", map[string]any{"size": "<or> 3 <or> 960"}, "/dev/nvme0n1"},
		{"serial case-insensitive", map[string]any{"serial": "s3x1na0k"}, "/dev/sdb"},
		{"model s==", map[string]any{"model": "s== SAMSUNG MZQL2960"}, "/dev/nvme0n1"},
		{"model <in>", map[string]any{"model": "<in> logical"}, "/dev/sda"},
		{"wwn", map[string]any{"wwn": "0x5002538c40a1b2c3"}, "/dev/sdb"},
		{"name without /dev", map[string]any{"name": "nvme0n1"}, "/dev/nvme0n1"},
		{"rotational false + vendor", map[string]any{"rotational": false, "vendor": "hpe"}, "/dev/sdb"},
		{"rotational string", map[string]any{"rotational": "true", "size": ">= 100"}, "/dev/sda"},
		{"all hints must match", map[string]any{"serial": "S3X1NA0K", "size": 500}, "no disk matches"},
		{"read-only never picked", map[string]any{"name": "/dev/sr0"}, "no disk matches"},
		{"unknown hint", map[string]any{"colour": "red"}, "is invalid"},
		{"bad size", map[string]any{"size": "big"}, "not an integer"},
		{"negative size", map[string]any{"size": -1}, "positive"},
		{"bad bool", map[string]any{"rotational": "maybe"}, "not a Boolean"},
		{"string hint given a number", map[string]any{"serial": 12}, "not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := deployagent.PickRootDevice(disks, tc.hints)
			if strings.HasPrefix(tc.want, "/dev/") {
				if err != nil || d.Name != tc.want {
					t.Fatalf("got %s, %v; want %s", d.Name, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %s, %v; want error %q", d.Name, err, tc.want)
			}
		})
	}
	// only small disks: the largest (small test VMs)
	d, err := deployagent.PickRootDevice(disks[2:3], nil)
	if err != nil || d.Name != "/dev/sdc" {
		t.Errorf("small disks: %s %v", d.Name, err)
	}
	if _, err := deployagent.PickRootDevice(disks[3:4], nil); !errors.Is(err, deployagent.ErrNoRootDevice) {
		t.Errorf("no writable disk: %v", err)
	}
}
