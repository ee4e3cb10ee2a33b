package deployagent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

// The inventory of the fake sysfs/procfs tree in testdata/sysroot, in IPA's shape.
func TestReadInventoryFakeSysfs(t *testing.T) {
	inv, err := deployagent.ReadInventory("testdata/sysroot")
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Count != 2 || !strings.Contains(inv.CPU.ModelName, "Gold 6230") || inv.CPU.Frequency != "2100.000" || len(inv.CPU.Flags) != 4 {
		t.Errorf("cpu = %+v", inv.CPU)
	}
	if inv.Memory.Total != 3985528*1024 || inv.Memory.PhysicalMB != 256 {
		t.Errorf("memory = %+v (two online 128 MiB blocks)", inv.Memory)
	}
	want := []deployagent.Disk{
		{Name: "/dev/nvme0n1", Size: 1875385008 * 512, Model: "SAMSUNG MZQL2960HCJR-00A07", Serial: "S64FNE0R123456",
			WWN: "0x0025388b91b1e2a3", WWNWithExtension: "0x0025388b91b1e2a3"},
		{Name: "/dev/sda", Size: 1953525168 * 512, Model: "LOGICAL VOLUME", Vendor: "HPE", Serial: "PDNLH0BRH9V1", Rotational: true,
			WWN: "0x600508b1001c5f7e", WWNWithExtension: "0x600508b1001c5f7e2a9d3b0e8f1c2d3e", WWNVendorExtension: "0x2a9d3b0e8f1c2d3e"},
		{Name: "/dev/vda", Size: 2097152 * 512, Serial: "lightsout-disk-1", Rotational: true},
	}
	if len(inv.Disks) != len(want) {
		t.Fatalf("disks = %+v", inv.Disks)
	}
	for i, d := range inv.Disks {
		d.Path = ""
		if d != want[i] {
			t.Errorf("disk %d = %+v\nwant %+v", i, d, want[i])
		}
	}
	if len(inv.Interfaces) != 2 || inv.Interfaces[0].Name != "eth0" || inv.Interfaces[0].MACAddress != "52:54:00:aa:bb:01" ||
		!inv.Interfaces[0].HasCarrier || inv.Interfaces[1].HasCarrier || *inv.Interfaces[0].SpeedMbps != 1000 {
		t.Errorf("interfaces = %+v", inv.Interfaces)
	}
	if inv.Boot["current_boot_mode"] != "uefi" || inv.SystemVendor["manufacturer"] != "HPE" || inv.Hostname != "ramdisk" {
		t.Errorf("boot %v vendor %v host %q", inv.Boot, inv.SystemVendor, inv.Hostname)
	}
	// IPA's JSON keys
	b, _ := json.Marshal(inv)
	for _, k := range []string{`"interfaces"`, `"mac_address"`, `"has_carrier"`, `"physical_mb"`, `"wwn_with_extension"`, `"rotational"`, `"system_vendor"`, `"current_boot_mode"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("inventory JSON lacks %s", k)
		}
	}
	if strings.Contains(string(b), `"Path"`) {
		t.Error("device path leaked into the inventory")
	}
	if got := deployagent.Uptime("testdata/sysroot"); got != "3.52" {
		t.Errorf("uptime %q", got)
	}
}
