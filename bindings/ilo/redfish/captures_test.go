package redfish

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/internal/replaytest"
)

// The three captured trees in ../shared/fixtures/captures (see its README).
const (
	treeGen10Plus = "cray-xl675d-gen10plus-ilo5"
	treeGen11     = "hpe-dl380a-gen11-ilo6"
	treeGen12     = "hpe-dl380a-gen12-ilo7"
)

var allTrees = []string{treeGen10Plus, treeGen11, treeGen12}

// replayClient serves one captured tree and returns a Redfish client of it.
func replayClient(t *testing.T, tree string) (*Client, *replaytest.Server) {
	t.Helper()
	srv := replaytest.Start(t, filepath.Join(replaytest.CapturesDir(t), tree))
	o, err := iloapi.ParseDriverInfo(srv.DriverInfo())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := iloapi.NewTransport(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	c := New(tr)
	t.Cleanup(func() { c.Close(context.Background()) })
	return c, srv
}

// writes returns the non-GET, non-session requests the server saw.
func writes(srv *replaytest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		if r.Method == "GET" || strings.Contains(strings.ToLower(r.Path), "sessionservice") {
			continue
		}
		out = append(out, r.Method+" "+r.Path+" "+string(r.Body))
	}
	return out
}

// Boot mode on the captured trees. How the expected values were derived:
//   - gen10plus (iLO 5 v2.70): Systems/1/bios Attributes.BootMode is "Uefi"
//     and UefiOptimizedBoot "Enabled"; Oem.Hpe.Bios.UefiClass is 3.
//   - gen11 (iLO 6 v1.66) and gen12 (iLO 7 1.13): Systems/1/bios has no
//     BootMode and no UefiOptimizedBoot attribute; Oem.Hpe.Bios.UefiClass
//     is 3, so the machine is UEFI-only: current and pending are UEFI.
//   - all three: SecureBoot SecureBootCurrentBoot "Disabled", with a
//     #SecureBoot.ResetKeys action.
func TestCapturedBootModeAndSecureBoot(t *testing.T) {
	ctx := context.Background()
	for _, tree := range allTrees {
		t.Run(tree, func(t *testing.T) {
			c, srv := replayClient(t, tree)
			for name, get := range map[string]func(context.Context) (string, error){
				"current": c.GetCurrentBootMode, "pending": c.GetPendingBootMode,
			} {
				if got, err := get(ctx); err != nil || got != iloapi.BootModeUEFI {
					t.Errorf("%s boot mode = %q, %v; want UEFI", name, got, err)
				}
			}
			if got, err := c.GetSupportedBootMode(ctx); err != nil || got != iloapi.SupportedUEFIOnly {
				t.Errorf("supported boot mode = %q, %v; want %q", got, err, iloapi.SupportedUEFIOnly)
			}
			if err := c.SetPendingBootMode(ctx, "LEGACY"); !iloapi.IsNotSupported(err) {
				t.Errorf("set LEGACY on a UEFI-only machine: %v, want not_supported", err)
			}
			before := len(writes(srv))
			if err := c.SetPendingBootMode(ctx, "UEFI"); err != nil {
				t.Fatalf("set UEFI: %v", err)
			}
			w := writes(srv)[before:]
			if tree == treeGen10Plus {
				// BootMode and UefiOptimizedBoot exist there: both are written.
				if len(w) != 1 || !strings.Contains(w[0], `"BootMode":"Uefi"`) || !strings.Contains(w[0], `"UefiOptimizedBoot":"Enabled"`) {
					t.Errorf("set UEFI on iLO 5 sent %q", w)
				}
			} else if len(w) != 0 {
				t.Errorf("set UEFI on a UEFI-only BIOS without BootMode sent %q; want nothing", w)
			}

			on, err := c.GetSecureBootMode(ctx)
			if err != nil || on {
				t.Errorf("secure boot = %v, %v; want false (SecureBootCurrentBoot Disabled)", on, err)
			}
			for _, enable := range []bool{true, false} {
				if err := c.SetSecureBootMode(ctx, enable); err != nil {
					t.Fatalf("set secure boot %v: %v", enable, err)
				}
				sb := srv.Doc("/redfish/v1/Systems/1/SecureBoot")
				if sb["SecureBootEnable"] != enable {
					t.Errorf("after set %v SecureBootEnable = %v", enable, sb["SecureBootEnable"])
				}
			}
			for op, f := range map[string]func(context.Context) error{"ResetAllKeysToDefault": c.ResetSecureBootKeys, "DeleteAllKeys": c.ClearSecureBootKeys} {
				before := len(writes(srv))
				if err := f(ctx); err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				w := writes(srv)[before:]
				if len(w) != 1 || !strings.Contains(w[0], "SecureBoot.ResetKeys") || !strings.Contains(w[0], op) {
					t.Errorf("%s sent %q", op, w)
				}
			}
		})
	}
}

// A BIOS without BootMode on a machine that also boots legacy: the mode is
// unknown and no attribute is invented.
func TestSetPendingBootModeWithoutAttribute(t *testing.T) {
	system := map[string]any{"Oem": map[string]any{"Hpe": map[string]any{"Bios": map[string]any{"UefiClass": json.Number("2")}}}}
	bios := map[string]any{"Attributes": map[string]any{"Other": "x"}}
	if got := EffectiveBootMode(system, bios); got != "UNKNOWN" {
		t.Errorf("EffectiveBootMode = %q, want UNKNOWN", got)
	}
	system["Oem"].(map[string]any)["Hpe"].(map[string]any)["Bios"].(map[string]any)["UefiClass"] = json.Number("3")
	if got := EffectiveBootMode(system, bios); got != iloapi.BootModeUEFI {
		t.Errorf("EffectiveBootMode (UefiClass 3) = %q, want UEFI", got)
	}
}

// Inspection on the captured trees, with the values derived from the raw
// JSON by proliantutils' rules (docs/ilo.md, "Inspection rules"):
//   - memory_mb: Systems/1 MemorySummary.TotalSystemMemoryGiB x 1024
//     (256, 512, 1536 GiB).
//   - cpus: sum of TotalThreads over Systems/1/Processors members
//     (2 x 128; 4 members summing 128; 6 members summing 344).
//   - local_gb: largest Storage volume / SmartStorage logical drive, in
//     GiB rounded down, minus 1: gen10plus Volumes/1 960163569664 B
//     (= LogicalDrives/1 915683 MiB) -> 894 - 1; gen11 Volumes/239
//     1599774654464 B -> 1489 - 1; gen12 DE010000 Volumes/1 480036519936 B
//     -> 447 - 1 (the 3.2 TB NVMe drives are not volumes).
//   - macs: EthernetInterfaces with Status.Health "OK": gen10plus 1 and 2
//     (3-6 have a null Status), gen11 77 and 78, gen12 all six.
//   - pci_gpu_devices: PCIDevices with ClassCode 3 and SubclassCode 0, 1,
//     2 or 128 (the onboard VGA counts too): 9, 3, 5.
//   - persistent boot device: first PersistentBootConfigOrder entry of
//     bios/oem/hpe/boot: "HD.Slot.25.3" (BootString "sle_hpc-secureboot")
//     -> HDD; "Generic.USB.1.1" -> NONE; "NVMe.Slot.1.1" ("Ubuntu") -> HDD.
func TestCapturedInspection(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		tree              string
		memoryMB, cpus    int
		localGB           int
		macs              map[string]string
		nics              int
		gpus, persistent  string
		model, iloFW, rom string
	}{
		{treeGen10Plus, 262144, 256, 893,
			map[string]string{"Port 1": "98:03:9b:7f:c3:38", "Port 2": "98:03:9b:1e:de:fc"}, 6, "9", "HDD",
			"ProLiant XL675d Gen10 Plus", "iLO 5 v2.70", "A47 v2.58 (05/19/2022)"},
		{treeGen11, 524288, 128, 1488,
			map[string]string{"Port 77": "58:a2:e1:03:96:f2", "Port 78": "58:a2:e1:03:96:f3"}, 2, "3", "NONE",
			"ProLiant DL380a Gen11 -- SIMULATED", "iLO 6 v1.66", "U58 v2.44 (01/17/2025)"},
		{treeGen12, 1572864, 344, 446,
			map[string]string{"Port 141": "58:a2:e1:03:a8:e2", "Port 142": "58:a2:e1:03:a8:e3", "Port 397": "88:e9:a4:45:45:f2",
				"Port 461": "88:e9:a4:4c:4e:f8", "Port 1549": "88:e9:a4:45:35:de", "Port 1613": "88:e9:a4:4c:5e:08"}, 6, "5", "HDD",
			"HPE ProLiant Compute DL380a Gen12 -- SIMULATED", "1.13.01 May 13 2025", "U72 v1.34 (04/18/2025)"},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			c, _ := replayClient(t, tc.tree)
			p, err := c.GetEssentialProperties(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p.MemoryMB != tc.memoryMB || p.CPUs != tc.cpus || p.LocalGB != tc.localGB || p.CPUArch != "x86_64" {
				t.Errorf("memory %d cpus %d local_gb %d arch %s; want %d %d %d x86_64", p.MemoryMB, p.CPUs, p.LocalGB, p.CPUArch, tc.memoryMB, tc.cpus, tc.localGB)
			}
			if len(p.MACs) != len(tc.macs) {
				t.Errorf("macs %v, want %v", p.MACs, tc.macs)
			}
			for k, v := range tc.macs {
				if p.MACs[k] != v {
					t.Errorf("macs[%s] = %q, want %q", k, p.MACs[k], v)
				}
			}
			if len(p.NICs) != tc.nics {
				t.Errorf("%d NICs kept, want %d: %+v", len(p.NICs), tc.nics, p.NICs)
			}
			caps, err := c.GetServerCapabilities(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]string{"pci_gpu_devices": tc.gpus, "server_model": tc.model, "ilo_firmware_version": tc.iloFW,
				"rom_firmware_version": tc.rom, "boot_mode_uefi": "true", "boot_mode_bios": "false"} {
				if caps[k] != want {
					t.Errorf("capability %s = %q, want %q", k, caps[k], want)
				}
			}
			if got, err := c.GetPersistentBootDevice(ctx); err != nil || got != tc.persistent {
				t.Errorf("persistent boot device %q, %v; want %s", got, err, tc.persistent)
			}
		})
	}
}

// The virtual media and power round trips on each captured tree.
func TestCapturedVirtualMediaAndPower(t *testing.T) {
	ctx := context.Background()
	const img = "https://images.example/boot.iso"
	for _, tree := range allTrees {
		t.Run(tree, func(t *testing.T) {
			c, srv := replayClient(t, tree)
			// Managers/1/VirtualMedia/2: MediaTypes CD/DVD, Inserted false, Image "".
			st, err := c.GetVMStatus(ctx, "CDROM")
			if err != nil || st.ImageInserted != "NO" {
				t.Fatalf("empty CD: %+v, %v", st, err)
			}
			if err := c.InsertVirtualMedia(ctx, img, "CDROM"); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if st, err := c.GetVMStatus(ctx, "CDROM"); err != nil || st.ImageInserted != "YES" || st.ImageURL != img {
				t.Fatalf("after insert: %+v, %v", st, err)
			}
			if err := c.EjectVirtualMedia(ctx, "CDROM"); err != nil {
				t.Fatalf("eject: %v", err)
			}
			if st, err := c.GetVMStatus(ctx, "CDROM"); err != nil || st.ImageInserted != "NO" {
				t.Fatalf("after eject: %+v, %v", st, err)
			}
			// Systems/1 PowerState "On" in all three captures.
			if p, err := c.GetHostPowerStatus(ctx); err != nil || p != iloapi.PowerOn {
				t.Fatalf("power %q, %v; want ON", p, err)
			}
			if err := c.SetHostPower(ctx, "OFF"); err != nil {
				t.Fatal(err)
			}
			if p, _ := c.GetHostPowerStatus(ctx); p != iloapi.PowerOff {
				t.Fatalf("power after OFF: %q (%v)", p, writes(srv))
			}
		})
	}
}

// TestCapturedLicense reads the licence of each captured tree: every one
// names "iLO Advanced" in Managers/1 Oem.Hpe.License.LicenseString (and
// LicenseTier ADV in LicenseService/1); the iLO generation comes from the
// manager's Model ("iLO 5", "iLO 6", "iLO 7").
func TestCapturedLicense(t *testing.T) {
	for tree, ilo := range map[string]int{treeGen10Plus: 5, treeGen11: 6, treeGen12: 7} {
		t.Run(tree, func(t *testing.T) {
			c, srv := replayClient(t, tree)
			l, err := c.GetLicense(context.Background())
			if err != nil || l.Name != "iLO Advanced" || l.Tier != iloapi.LicenseAdvanced || l.ILO != ilo {
				t.Fatalf("%+v %v, want iLO Advanced (advanced) on iLO %d", l, err, ilo)
			}
			all, err := c.GetAllLicenses(context.Background())
			if err != nil || len(all) != 1 || all[0].Type != l.Name {
				t.Errorf("get_all_licenses %+v %v disagrees with get_license %q", all, err, l.Name)
			}
			if w := writes(srv); len(w) != 0 {
				t.Errorf("reading the licence wrote: %v", w)
			}
		})
	}
}

// TestClassifyLicense is Ironic's get_ilo_license table, plus the longer
// Advanced names.
func TestClassifyLicense(t *testing.T) {
	for name, want := range map[string]string{
		"iLO Advanced": "advanced", "iLO 4 Advanced": "advanced", "iLO 3 Advanced": "advanced",
		"iLO Advanced Premium Security Edition": "advanced", "iLO Essentials": "essentials",
		"iLO Standard": "standard", "iLO Standard Blade Edition": "standard", "": "standard",
	} {
		if got := iloapi.ClassifyLicense(name); got != want {
			t.Errorf("ClassifyLicense(%q) = %q, want %q", name, got, want)
		}
	}
	for s, want := range map[string]int{"iLO4": 4, "iLO 5": 5, "iLO 7": 7, "Integrated Lights-Out 3": 3, "1.13.01 May 13 2025": 0, "BMC": 0} {
		if got := iloapi.ILOGeneration(s); got != want {
			t.Errorf("ILOGeneration(%q) = %d, want %d", s, got, want)
		}
	}
}
