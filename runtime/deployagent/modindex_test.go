package deployagent_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/deployagent"
)

const (
	ixLoad = `/m/virtio.ko
/m/virtio_ring.ko
/m/virtio_net.ko
/m/usbcore.ko
/m/xhci_pci.ko
/m/usb_storage.ko
/m/sd_mod.ko
/m/vfat.ko
`
	ixDep = `/m/virtio.ko:
/m/virtio_ring.ko:
/m/virtio_net.ko: /m/virtio.ko /m/virtio_ring.ko
/m/usbcore.ko:
/m/xhci_pci.ko: /m/usbcore.ko
/m/usb_storage.ko: /m/usbcore.ko
/m/sd_mod.ko:
/m/vfat.ko:
`
	ixAlias = `alias virtio:d00000001v* /m/virtio_net.ko
alias pci:v*d*sv*sd*bc0Csc03i30* /m/xhci_pci.ko
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* /m/usb_storage.ko
`
	ixBoot = "/m/sd_mod.ko\n/m/vfat.ko\n"
)

func TestModuleIndex(t *testing.T) {
	ix, err := deployagent.ParseModuleIndex([]byte(ixLoad), []byte(ixDep), []byte(ixAlias), []byte(ixBoot))
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Boot(); !slices.Equal(got, []string{"/m/sd_mod.ko", "/m/vfat.ko"}) {
		t.Errorf("boot %v", got)
	}
	tests := []struct {
		modalias string
		want     []string
	}{
		{"virtio:d00000001v00001AF4", []string{"/m/virtio.ko", "/m/virtio_ring.ko", "/m/virtio_net.ko"}},
		{"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", []string{"/m/usbcore.ko", "/m/xhci_pci.ko"}},
		{"usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", []string{"/m/usbcore.ko", "/m/usb_storage.ko"}},
		{"virtio:d00000002v00001AF4", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := ix.Match(tt.modalias); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%q) = %v, want %v", tt.modalias, got, tt.want)
		}
	}
}

// TestModuleIndexRefusesBadFiles: a broken index is an error naming the
// file and line, so init falls back to loading every module.
func TestModuleIndexRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, dep, alias, boot, want string
	}{
		{"dep line without colon", "/m/vfat.ko /m/sd_mod.ko\n", ixAlias, ixBoot, "modules.dep line 1"},
		{"dep on an unknown module", "/m/vfat.ko: /m/fat.ko\n", ixAlias, ixBoot, "/m/fat.ko is not in"},
		{"alias of an unknown module", ixDep, "alias pci:v* /m/e1000.ko\n", ixBoot, "modules.alias line 1: /m/e1000.ko"},
		{"alias without a module", ixDep, "alias pci:v*\n", ixBoot, "expected \"alias PATTERN path\""},
		{"bad pattern", ixDep, "alias pci:v[ /m/xhci_pci.ko\n", ixBoot, "pattern \"pci:v[\""},
		{"boot module unknown", ixDep, ixAlias, "/m/nls.ko\n", "modules.boot line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deployagent.ParseModuleIndex([]byte(ixLoad), []byte(tt.dep), []byte(tt.alias), []byte(tt.boot))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseUevent(t *testing.T) {
	tests := []struct {
		msg, action, modalias string
	}{
		{"add@/devices/pci0000:00/0000:00:03.0/usb2/2-1/2-1:1.0\x00ACTION=add\x00DEVPATH=/devices/x\x00SUBSYSTEM=usb\x00" +
			"MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\x00SEQNUM=812\x00", "add",
			"usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"},
		{"remove@/devices/x\x00ACTION=remove\x00MODALIAS=pci:v1\x00", "remove", "pci:v1"},
		{"bind@/devices/x\x00ACTION=bind\x00DRIVER=e1000\x00", "bind", ""},
		{"libudev\x00\xfe\xed\xca\xfe", "", ""},
	}
	for _, tt := range tests {
		if a, m := deployagent.ParseUevent([]byte(tt.msg)); a != tt.action || m != tt.modalias {
			t.Errorf("ParseUevent(%q) = %q %q, want %q %q", tt.msg, a, m, tt.action, tt.modalias)
		}
	}
}
