package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Generation is an emulated ProLiant generation.
type Generation string

// Generations the simulator emulates.
const (
	Gen8  Generation = "gen8"  // iLO 4 < 2.30: RIBCL only
	Gen9  Generation = "gen9"  // iLO 4 >= 2.30: RIBCL + HP REST (/rest/v1) + Redfish with Oem.Hp
	Gen10 Generation = "gen10" // iLO 5: Redfish with Oem.Hpe + RIBCL
	Gen11 Generation = "gen11" // iLO 6: Redfish, UEFI only; RIBCL present but optional
	Gen12 Generation = "gen12" // iLO 7: Redfish only, UEFI only; /ribcl answers 404
)

// ParseGeneration accepts "gen8".."gen12" (case-insensitive).
func ParseGeneration(s string) (Generation, error) {
	switch g := Generation(strings.ToLower(strings.TrimSpace(s))); g {
	case Gen8, Gen9, Gen10, Gen11, Gen12:
		return g, nil
	}
	return "", fmt.Errorf("unknown generation %q: use gen8, gen9, gen10, gen11 or gen12", s)
}

// ribclMode is how /ribcl behaves: the hardware option, else the
// generation's default (iLO 7 has no RIBCL at all; iLO 6 has it, optional).
func (h *Hardware) ribclMode(g Generation) string {
	if h.RIBCL != "" {
		return h.RIBCL
	}
	if g == Gen12 {
		return "absent"
	}
	return "enabled"
}

// biosBootModeAttr reports whether the BIOS has a BootMode attribute: not
// on UEFI-only iLO 6/7 machines (the DL380a Gen11/Gen12 captures).
func (h *Hardware) biosBootModeAttr(g Generation) bool {
	if h.NoBIOSBootMode {
		return false
	}
	return !(h.SupportedBootModes == "UEFI_ONLY" && (g == Gen11 || g == Gen12))
}

// iloName is the manager type of the generation ("iLO 5").
func (g Generation) iloName() string {
	return map[Generation]string{Gen8: "iLO 4", Gen9: "iLO 4", Gen10: "iLO 5", Gen11: "iLO 6", Gen12: "iLO 7"}[g]
}
func (g Generation) rest() bool    { return g == Gen9 }
func (g Generation) redfish() bool { return g != Gen8 }

// oem is the vendor key of Redfish OEM sections: "Hp" on iLO 4, "Hpe" on iLO 5+.
func (g Generation) oem() string {
	if g == Gen9 {
		return "Hp"
	}
	return "Hpe"
}

// CPU is one processor socket.
type CPU struct {
	Model    string `json:"model"`
	Cores    int    `json:"cores"`
	Threads  int    `json:"threads"`
	SpeedMHz int    `json:"speed_mhz"`
}

// NIC is one network port. Embedded ports are reported by RIBCL inspection.
type NIC struct {
	MAC      string `json:"mac"`
	Embedded bool   `json:"embedded"`
	SpeedGb  int    `json:"speed_gb"`
	// Status is how Redfish shows the port: "" (Enabled, Health OK, link
	// up), "null" (Status {"Health": null, "State": null} and no link
	// status, as unconfigured ports on the iLO 5 capture) or "offline"
	// (State UnavailableOffline, Health null, link down).
	Status string `json:"status,omitempty"`
}

// GPU is one PCI display controller.
type GPU struct {
	Vendor string `json:"vendor"` // e.g. "NVIDIA"
	Name   string `json:"name"`   // e.g. "Tesla V100"
}

// Hardware is the configurable inventory and health of one server. Zero
// fields are filled with generation defaults by [DefaultHardware].
type Hardware struct {
	Model        string `json:"model"`
	SerialNumber string `json:"serial_number"`
	UUID         string `json:"uuid"`
	ILOFirmware  string `json:"ilo_firmware"` // e.g. "2.20 May 20 2015" (RIBCL style)
	ROMFirmware  string `json:"rom_firmware"` // e.g. "P70 05/21/2018"
	// SupportedBootModes is LEGACY_ONLY, UEFI_ONLY or LEGACY_UEFI.
	SupportedBootModes string `json:"supported_boot_modes"`
	MemoryMB           int    `json:"memory_mb"`
	CPUs               []CPU  `json:"cpus"`
	// LogicalDrivesGB lists RAID logical drives; empty means no RAID volume.
	LogicalDrivesGB []int `json:"logical_drives_gb"`
	NICs            []NIC `json:"nics"`
	GPUs            []GPU `json:"gpus"`
	Fans            int   `json:"fans"`
	PowerSupplies   int   `json:"power_supplies"`
	// UnconfiguredDisksGB are physical disks in no logical drive (shown
	// under UnconfiguredDrives and as standard Storage drives).
	UnconfiguredDisksGB []int `json:"unconfigured_disks_gb,omitempty"`
	// RIBCL overrides the generation's RIBCL behaviour: "enabled",
	// "disabled" (answers "RIBCLI is disabled."), "absent" (/ribcl is 404,
	// as iLO 7), "error" (HTTP 500) or "hang" (never answers). Empty: the
	// generation's default (gen12 absent, the others enabled).
	RIBCL string `json:"ribcl,omitempty"`
	// NoBIOSBootMode drops the BootMode BIOS attribute (what UEFI-only
	// iLO 6/7 machines do; the default on gen11 and gen12).
	NoBIOSBootMode bool `json:"no_bios_boot_mode,omitempty"`
	// AssetTag is the SMBIOS asset tag (empty: none set).
	AssetTag string `json:"asset_tag,omitempty"`
	// Health is the overall health reported everywhere ("OK", "Degraded", "Critical").
	Health string `json:"health"`
	// PowerWatts is the present power reading while powered on.
	PowerWatts int `json:"power_watts"`
	// License is the iLO licence the server starts with: "iLO Advanced"
	// (the default: virtual media works), or e.g. "iLO Standard" for an
	// iLO 4 owner without Advanced (the pxe_ilo case). Once the state
	// holds licences (activate_license, a saved state) they count.
	License string `json:"license,omitempty"`
}

// TotalThreads is what proliantutils reports as cpus.
func (h *Hardware) TotalThreads() int {
	n := 0
	for _, c := range h.CPUs {
		n += c.Threads
	}
	return n
}

// LocalGB is proliantutils' local_gb: the smallest logical drive minus 1, or 0.
func (h *Hardware) LocalGB() int {
	if len(h.LogicalDrivesGB) == 0 {
		return 0
	}
	m := h.LogicalDrivesGB[0]
	for _, v := range h.LogicalDrivesGB[1:] {
		m = min(m, v)
	}
	return m - 1
}

// MACs lists the MACs of all NICs (lower case).
func (h *Hardware) MACs() []string {
	out := make([]string, len(h.NICs))
	for i, n := range h.NICs {
		out[i] = n.MAC
	}
	return out
}

// DefaultHardware returns the default inventory of server index idx of
// generation g. MACs and UUIDs are derived from (g, idx), so they are stable
// across restarts and distinct between servers.
func DefaultHardware(g Generation, idx int) Hardware {
	h := Hardware{Fans: 6, PowerSupplies: 2, Health: "OK", PowerWatts: 180}
	h.MemoryMB = 65536
	cpu := CPU{Cores: 8, Threads: 16, SpeedMHz: 2100}
	switch g {
	case Gen8:
		h.Model = "ProLiant DL380p Gen8"
		h.ILOFirmware = "2.20 May 20 2015"
		h.ROMFirmware = "P70 02/10/2014"
		h.SupportedBootModes = "LEGACY_ONLY"
		cpu.Model = "Intel(R) Xeon(R) CPU E5-2650 v2 @ 2.60GHz"
		cpu.SpeedMHz = 2600
		h.MemoryMB = 32768
	case Gen9:
		h.Model = "ProLiant DL380 Gen9"
		h.ILOFirmware = "2.61 Jul 27 2018"
		h.ROMFirmware = "P89 v2.60 (05/21/2018)"
		h.SupportedBootModes = "LEGACY_UEFI"
		cpu.Model = "Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz"
	case Gen10:
		h.Model = "ProLiant DL360 Gen10"
		h.ILOFirmware = "2.72 Sep 04 2022"
		h.ROMFirmware = "U32 v2.68 (07/14/2022)"
		h.SupportedBootModes = "LEGACY_UEFI"
		cpu.Model = "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"
		cpu.Cores, cpu.Threads = 16, 32
		h.MemoryMB = 131072
	case Gen11:
		h.Model = "ProLiant DL360 Gen11"
		h.ILOFirmware = "1.55 Nov 02 2023"
		h.ROMFirmware = "U54 v2.16 (03/01/2024)"
		h.SupportedBootModes = "UEFI_ONLY"
		cpu.Model = "Intel(R) Xeon(R) Gold 5415+"
		cpu.Cores, cpu.Threads = 8, 16
		h.MemoryMB = 131072
	case Gen12:
		// Modelled on the iLO 7 1.13.01 DL380a Gen12 capture: the model name
		// starts with "HPE ProLiant Compute", the firmware string has no "iLO 7".
		h.Model = "HPE ProLiant Compute DL360 Gen12"
		h.ILOFirmware = "1.13.01 Jul 15 2025"
		h.ROMFirmware = "U68 v1.30 (05/09/2025)"
		h.SupportedBootModes = "UEFI_ONLY"
		cpu.Model = "Intel(R) Xeon(R) 6787P"
		cpu.Cores, cpu.Threads = 16, 32
		h.MemoryMB = 262144
	}
	h.CPUs = []CPU{cpu, cpu}
	h.LogicalDrivesGB = []int{300}
	gn := map[Generation]byte{Gen8: 8, Gen9: 9, Gen10: 10, Gen11: 11, Gen12: 12}[g]
	for p := 0; p < 4; p++ {
		h.NICs = append(h.NICs, NIC{
			MAC:      fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", gn, byte(idx>>8), byte(idx), p),
			Embedded: true,
			SpeedGb:  1,
		})
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("lightsout-sim/%s/%d", g, idx)))
	h.UUID = fmt.Sprintf("%X-%X-%X-%X-%X", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	h.SerialNumber = fmt.Sprintf("SIM%02d%05d", gn, idx)
	return h
}

// fillDefaults completes a partially configured Hardware with the defaults.
func (h *Hardware) fillDefaults(def Hardware) {
	if h.Model == "" {
		h.Model = def.Model
	}
	if h.License == "" {
		h.License = def.License
	}
	if h.SerialNumber == "" {
		h.SerialNumber = def.SerialNumber
	}
	if h.UUID == "" {
		h.UUID = def.UUID
	}
	if h.ILOFirmware == "" {
		h.ILOFirmware = def.ILOFirmware
	}
	if h.ROMFirmware == "" {
		h.ROMFirmware = def.ROMFirmware
	}
	if h.SupportedBootModes == "" {
		h.SupportedBootModes = def.SupportedBootModes
	}
	if h.MemoryMB == 0 {
		h.MemoryMB = def.MemoryMB
	}
	if h.CPUs == nil {
		h.CPUs = def.CPUs
	}
	if h.LogicalDrivesGB == nil {
		h.LogicalDrivesGB = def.LogicalDrivesGB
	}
	if h.NICs == nil {
		h.NICs = def.NICs
	}
	if h.Fans == 0 {
		h.Fans = def.Fans
	}
	if h.PowerSupplies == 0 {
		h.PowerSupplies = def.PowerSupplies
	}
	if h.Health == "" {
		h.Health = def.Health
	}
	if h.PowerWatts == 0 {
		h.PowerWatts = def.PowerWatts
	}
}

func (h *Hardware) validate() error {
	switch h.RIBCL {
	case "", "enabled", "disabled", "absent", "error", "hang":
	default:
		return fmt.Errorf("hardware.ribcl %q: use enabled, disabled, absent, error or hang", h.RIBCL)
	}
	for i, n := range h.NICs {
		switch n.Status {
		case "", "null", "offline":
		default:
			return fmt.Errorf("hardware.nics[%d].status %q: use \"\", null or offline", i, n.Status)
		}
	}
	for i, gb := range h.UnconfiguredDisksGB {
		if gb < 1 {
			return fmt.Errorf("hardware.unconfigured_disks_gb[%d] = %d: must be at least 1", i, gb)
		}
	}
	switch h.SupportedBootModes {
	case "LEGACY_ONLY", "UEFI_ONLY", "LEGACY_UEFI":
	default:
		return fmt.Errorf("hardware.supported_boot_modes %q: use LEGACY_ONLY, UEFI_ONLY or LEGACY_UEFI", h.SupportedBootModes)
	}
	for i, c := range h.CPUs {
		if c.Threads <= 0 || c.Cores <= 0 {
			return fmt.Errorf("hardware.cpus[%d]: cores and threads must be positive", i)
		}
	}
	for i, gb := range h.LogicalDrivesGB {
		if gb < 2 {
			return fmt.Errorf("hardware.logical_drives_gb[%d] = %d: must be at least 2", i, gb)
		}
	}
	if h.MemoryMB < 1024 || h.MemoryMB%1024 != 0 {
		return fmt.Errorf("hardware.memory_mb = %d: must be a positive multiple of 1024", h.MemoryMB)
	}
	if len(h.CPUs) == 0 {
		return fmt.Errorf("hardware.cpus: at least one CPU is needed")
	}
	for i, n := range h.NICs {
		if len(n.MAC) != 17 {
			return fmt.Errorf("hardware.nics[%d].mac %q: want aa:bb:cc:dd:ee:ff", i, n.MAC)
		}
	}
	return nil
}

// uefiClass is the Oem.Hp(e).Bios.UefiClass proliantutils decodes.
func (h *Hardware) uefiClass() int {
	switch h.SupportedBootModes {
	case "UEFI_ONLY":
		return 3
	case "LEGACY_UEFI":
		return 2
	}
	return 0
}

func (h *Hardware) supportsMode(mode string) bool {
	switch mode {
	case "UEFI":
		return h.SupportedBootModes != "LEGACY_ONLY"
	case "LEGACY":
		return h.SupportedBootModes != "UEFI_ONLY"
	}
	return false
}

// iloMajorMinor returns "2.20" from "2.20 May 20 2015".
func (h *Hardware) iloVersion() string {
	v, _, _ := strings.Cut(h.ILOFirmware, " ")
	return v
}

// overlay copies the fields set in o over h (a nil slice keeps h's; an
// empty one, e.g. "logical_drives_gb": [], clears it).
func (h *Hardware) overlay(o Hardware) {
	def := *h
	*h = o
	h.fillDefaults(def)
	if o.GPUs == nil {
		h.GPUs = def.GPUs
	}
}

// LoadHardwareFile reads per-server inventory overrides for Options.Hardware:
// a JSON object whose keys are generations ("gen10") or server names
// ("gen10-1", applied after the generation's entry) and whose values are
// Hardware objects with only the fields to change, e.g.
//
//	{"gen10": {"memory_mb": 262144}, "gen8-0": {"logical_drives_gb": [], "gpus": [{"vendor": "NVIDIA", "name": "Tesla K80"}]}}
//
// Options modelled on the captured trees: "ribcl" ("disabled", "absent",
// "error", "hang"), "nics" entries with "status" "null" or "offline",
// "unconfigured_disks_gb", "no_bios_boot_mode", "asset_tag", e.g.
//
//	{"gen10-1": {"ribcl": "error", "unconfigured_disks_gb": [1200], "nics": [{"mac": "52:54:0a:00:01:00", "embedded": true, "speed_gb": 1}, {"mac": "52:54:0a:00:01:01", "status": "null"}]}}
func LoadHardwareFile(path string) (func(name string, g Generation, idx int, hw *Hardware), error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--hardware: %w", err)
	}
	var m map[string]Hardware
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("--hardware %s: %w (want {\"gen10\": {\"memory_mb\": 65536}, \"gen8-0\": {...}})", path, err)
	}
	return func(name string, g Generation, idx int, hw *Hardware) {
		if o, ok := m[string(g)]; ok {
			hw.overlay(o)
		}
		if o, ok := m[name]; ok {
			hw.overlay(o)
		}
	}, nil
}
