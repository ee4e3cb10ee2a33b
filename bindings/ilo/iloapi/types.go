// Package iloapi holds what the iLO protocol packages (ribcl, redfish) and
// the routing package ilo share: the Client interface named after
// proliantutils' IloClient methods, the result types, the typed errors and
// the HTTPS transport (TLS verification and pinning, per-iLO limiter,
// retry with backoff inside client_timeout).
package iloapi

import (
	"context"
	"strings"
)

// Power states returned by GetHostPowerStatus and accepted by SetHostPower.
const (
	PowerOn  = "ON"
	PowerOff = "OFF"
)

// Boot devices for SetOneTimeBoot and UpdatePersistentBoot.
const (
	BootCDROM   = "CDROM"
	BootHDD     = "HDD"
	BootNetwork = "NETWORK"
	BootNormal  = "Normal"
)

// Boot modes.
const (
	BootModeLegacy = "LEGACY"
	BootModeUEFI   = "UEFI"
)

// Supported boot mode answers (proliantutils' strings).
const (
	SupportedLegacyOnly = "legacy bios only"
	SupportedUEFIOnly   = "uefi only"
	SupportedBoth       = "legacy bios and uefi"
)

// Virtual media devices.
const (
	DeviceFloppy = "FLOPPY"
	DeviceCDROM  = "CDROM"
)

// VMStatus is the state of one virtual media slot, with RIBCL's
// GET_VM_STATUS attribute values ("YES"/"NO", "BOOT_ONCE", ...).
type VMStatus struct {
	VMApplet      string // CONNECTED / DISCONNECTED
	Device        string // FLOPPY / CDROM
	BootOption    string // BOOT_ONCE / BOOT_ALWAYS / NO_BOOT
	WriteProtect  string // YES / NO
	ImageInserted string // YES / NO
	ImageURL      string
}

// Inserted reports whether an image is inserted.
func (s VMStatus) Inserted() bool { return s.ImageInserted == "YES" }

// EssentialProperties is what inspection needs (proliantutils
// get_essential_properties).
type EssentialProperties struct {
	MemoryMB int
	CPUs     int
	CPUArch  string
	LocalGB  int
	// MACs maps a port name ("Port 1") to its MAC address: the ports
	// proliantutils reports (Redfish: Status.Health OK).
	MACs map[string]string
	// NICs is every port with a MAC address, whatever its state (for the
	// node's ports: agent lookup may come from any of them).
	NICs []NIC
}

// NIC is one network port as the iLO reports it.
type NIC struct {
	Port   string // "Port 1"
	MAC    string // lower case
	State  string // Status.State ("Enabled", "UnavailableOffline", "" when null)
	Health string // Status.Health ("OK", "" when null)
}

// Sensor is one temperature, fan or power-supply reading.
type Sensor struct {
	Name     string
	Location string
	Status   string
	// Reading is the value with its unit as the iLO reports it
	// ("41 Celsius", "23 Percentage", "500 Watts"); empty when absent.
	Reading string
}

// HealthData is a summary of the embedded health data.
type HealthData struct {
	Temperatures  []Sensor
	Fans          []Sensor
	PowerSupplies []Sensor
	// PowerReading is the present power reading ("37 Watts"), if known.
	PowerReading string
}

// License is one installed iLO licence.
type License struct {
	Type        string
	Key         string
	InstallDate string
	Class       string
}

// Licence tiers (Ironic's get_ilo_license: ADVANCED, ESSENTIALS, STANDARD).
const (
	LicenseAdvanced   = "advanced"
	LicenseEssentials = "essentials"
	LicenseStandard   = "standard"
)

// LicenseInfo is the licence in force on an iLO and the iLO it is on.
type LicenseInfo struct {
	// Name is the licence as the iLO names it ("iLO Advanced", "iLO 4
	// Advanced", "iLO Standard").
	Name string
	// Tier is LicenseAdvanced, LicenseEssentials or LicenseStandard
	// (ClassifyLicense of Name).
	Tier string
	// ILO is the iLO generation (3, 4, 5, 6, 7), 0 when the iLO did not say.
	ILO int
}

// ClassifyLicense maps an iLO licence name to its tier as Ironic does
// (a name ending in "Advanced" is advanced, "Essentials" essentials, any
// other standard), also counting the longer names of the Advanced tier
// ("iLO Advanced Premium Security Edition") as advanced.
func ClassifyLicense(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	switch {
	case strings.Contains(n, "advanced"):
		return LicenseAdvanced
	case strings.Contains(n, "essentials"):
		return LicenseEssentials
	}
	return LicenseStandard
}

// ILOGeneration reads the iLO generation from a management processor or
// manager model name ("iLO4", "iLO 5", "Integrated Lights-Out 4"); 0 when
// there is none.
func ILOGeneration(s string) int {
	s = strings.ToLower(s)
	for _, p := range []string{"ilo", "lights-out"} {
		if i := strings.Index(s, p); i >= 0 {
			rest := strings.TrimLeft(s[i+len(p):], " ")
			if len(rest) > 0 && rest[0] >= '1' && rest[0] <= '9' {
				return int(rest[0] - '0')
			}
		}
	}
	return 0
}

// Client is every iLO operation the playbooks use, named after
// proliantutils' IloClient methods. Every method is bounded by ctx and by
// the client's client_timeout. Errors are *Error values of one [Kind]
// (or context errors, KindOf timeout/cancelled).
type Client interface {
	GetProductName(ctx context.Context) (string, error)
	// GetHostPowerStatus returns "ON" or "OFF".
	GetHostPowerStatus(ctx context.Context) (string, error)
	// SetHostPower switches power "ON" or "OFF" (no-op when already there).
	SetHostPower(ctx context.Context, power string) error
	HoldPwrBtn(ctx context.Context) error
	PressPwrBtn(ctx context.Context) error
	ResetServer(ctx context.Context) error
	// GetOneTimeBoot returns CDROM, HDD, NETWORK, ... or "Normal".
	GetOneTimeBoot(ctx context.Context) (string, error)
	// SetOneTimeBoot sets the next boot device: CDROM, HDD, NETWORK or Normal.
	SetOneTimeBoot(ctx context.Context, device string) error
	GetPersistentBootDevice(ctx context.Context) (string, error)
	UpdatePersistentBoot(ctx context.Context, devices []string) error
	GetCurrentBootMode(ctx context.Context) (string, error)
	GetPendingBootMode(ctx context.Context) (string, error)
	// SetPendingBootMode sets the boot mode applied at the next reset: LEGACY or UEFI.
	SetPendingBootMode(ctx context.Context, mode string) error
	GetSupportedBootMode(ctx context.Context) (string, error)
	GetSecureBootMode(ctx context.Context) (bool, error)
	SetSecureBootMode(ctx context.Context, enable bool) error
	ResetSecureBootKeys(ctx context.Context) error
	ClearSecureBootKeys(ctx context.Context) error
	// InsertVirtualMedia inserts the image at url into device (FLOPPY or CDROM).
	InsertVirtualMedia(ctx context.Context, url, device string) error
	// EjectVirtualMedia ejects device; a no-op when nothing is inserted.
	EjectVirtualMedia(ctx context.Context, device string) error
	GetVMStatus(ctx context.Context, device string) (VMStatus, error)
	// SetVMStatus sets the boot option (BOOT_ONCE, BOOT_ALWAYS, NO_BOOT,
	// CONNECT, DISCONNECT) and write protection (YES/NO) of device.
	SetVMStatus(ctx context.Context, device, bootOption, writeProtect string) error
	// ResetILO resets the iLO and waits until it answers again.
	ResetILO(ctx context.Context) error
	ResetBIOSToDefault(ctx context.Context) error
	ResetILOCredential(ctx context.Context, newPassword string) error
	GetEssentialProperties(ctx context.Context) (EssentialProperties, error)
	// GetServerCapabilities returns ilo_firmware_version, rom_firmware_version,
	// server_model, secure_boot (Redfish only), pci_gpu_devices,
	// boot_mode_bios and boot_mode_uefi as strings.
	GetServerCapabilities(ctx context.Context) (map[string]string, error)
	GetHostHealthData(ctx context.Context) (HealthData, error)
	GetAllLicenses(ctx context.Context) ([]License, error)
	// GetLicense returns the licence in force and the iLO generation.
	GetLicense(ctx context.Context) (LicenseInfo, error)
	ActivateLicense(ctx context.Context, key string) error
}
