//go:build linux

package deployagent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSysModaliases reads a sysfs tree as init's coldplug pass does: every
// bus device's modalias, and a PNP device's ids as udev turns them into one.
func TestSysModaliases(t *testing.T) {
	sys := t.TempDir()
	files := map[string]string{
		"bus/pci/devices/0000:00:03.0/modalias":    "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n",
		"bus/virtio/devices/virtio0/modalias":      "virtio:d00000001v00001AF4\n",
		"bus/acpi/devices/PNP0700:00/modalias":     "acpi:PNP0700:\n",
		"bus/pnp/devices/00:03/id":                 "PNP0700\nPNP0701\n",
		"bus/platform/devices/serial8250/modalias": "\n",
		"bus/pci/devices/0000:00:04.0/vendor":      "0x8086\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(sys, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := sysModaliases(sys)
	slices.Sort(got)
	want := []string{"acpi:PNP0700:", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "pnp:dPNP0700", "pnp:dPNP0701",
		"virtio:d00000001v00001AF4"}
	if !slices.Equal(got, want) {
		t.Fatalf("modaliases %q, want %q", got, want)
	}
}
