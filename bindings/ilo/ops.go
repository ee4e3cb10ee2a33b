package ilo

import (
	"context"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// Every iLO operation is spelled out once in this file: its Go method (on
// ops, which the router, the recorded client and the unrecorded client
// share) with what is recorded and how it is routed, and, in luaMethods
// (lua.go), its Lua face. Adding an operation: the iloapi.Client method and
// its RIBCL/Redfish implementations, one method here plus one Lua entry,
// and its LuaLS annotation in stdlib/types/ilo.lua (TestEveryOperationHasALuaFace
// fails when one is missing).

// pref says when RIBCL goes first on Gen9 and later (when it answers).
type pref int

const (
	redfishFirst pref = iota // Redfish, RIBCL as the fall-back
	ribclFirst               // RIBCL, Redfish as the fall-back
	ribclOnGen9              // RIBCL first on Gen9 only
)

// call describes one operation as it passes through a layer.
type call struct {
	op   string         // the operation, e.g. "set_host_power" (event "ilo.set_host_power")
	args map[string]any // recorded arguments: never a secret, URLs without their query
	// secret is an argument the run must mask everywhere (a new password,
	// a licence key); it is never recorded.
	secret string
	pref   pref
	// result picks what of a successful result is recorded; nil records
	// strings and booleans as they are and nothing else.
	result func(v any) any
}

// recordedResult is what c records of v.
func (c call) recordedResult(v any) any {
	if c.result != nil {
		return c.result(v)
	}
	switch v.(type) {
	case string, bool:
		return v
	}
	return nil
}

// layer runs one call on the client(s) below it: the router picks a
// protocol, the recorded client records an event, the unrecorded one only
// gives errors their Lua codes.
type layer interface {
	do(ctx context.Context, c call, fn func(inner Client, ctx context.Context) (any, error)) (any, error)
}

// ops implements Client over a layer.
type ops struct{ l layer }

var _ Client = ops{}

// invoke runs fn (a method expression such as Client.GetOneTimeBoot, or a
// closure over the arguments) through o's layer.
func invoke[T any](ctx context.Context, o ops, c call, fn func(inner Client, ctx context.Context) (T, error)) (T, error) {
	v, err := o.l.do(ctx, c, func(inner Client, ctx context.Context) (any, error) { return fn(inner, ctx) })
	t, _ := v.(T)
	return t, err
}

// invoke0 is invoke for an operation without a result.
func invoke0(ctx context.Context, o ops, c call, fn func(inner Client, ctx context.Context) error) error {
	_, err := o.l.do(ctx, c, func(inner Client, ctx context.Context) (any, error) { return nil, fn(inner, ctx) })
	return err
}

// GetProductName returns the product name (the router answers from its probe).
func (o ops) GetProductName(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_product_name"}, Client.GetProductName)
}

// GetHostPowerStatus returns ON or OFF.
func (o ops) GetHostPowerStatus(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_host_power_status"}, Client.GetHostPowerStatus)
}

// SetHostPower switches the power ON or OFF.
func (o ops) SetHostPower(ctx context.Context, power string) error {
	return invoke0(ctx, o, call{op: "set_host_power", args: map[string]any{"power": power}},
		func(c Client, ctx context.Context) error { return c.SetHostPower(ctx, power) })
}

// HoldPwrBtn presses and holds the power button.
func (o ops) HoldPwrBtn(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "hold_pwr_btn"}, Client.HoldPwrBtn)
}

// PressPwrBtn presses the power button.
func (o ops) PressPwrBtn(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "press_pwr_btn"}, Client.PressPwrBtn)
}

// ResetServer hard-resets the server.
func (o ops) ResetServer(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "reset_server"}, Client.ResetServer)
}

// GetOneTimeBoot returns the one-time boot device or "Normal".
func (o ops) GetOneTimeBoot(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_one_time_boot"}, Client.GetOneTimeBoot)
}

// SetOneTimeBoot sets the next boot device.
func (o ops) SetOneTimeBoot(ctx context.Context, device string) error {
	return invoke0(ctx, o, call{op: "set_one_time_boot", args: map[string]any{"device": device}},
		func(c Client, ctx context.Context) error { return c.SetOneTimeBoot(ctx, device) })
}

// GetPersistentBootDevice returns the persistent boot device.
func (o ops) GetPersistentBootDevice(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_persistent_boot_device"}, Client.GetPersistentBootDevice)
}

// UpdatePersistentBoot sets the persistent boot devices.
func (o ops) UpdatePersistentBoot(ctx context.Context, devices []string) error {
	return invoke0(ctx, o, call{op: "update_persistent_boot", args: map[string]any{"devices": devices}},
		func(c Client, ctx context.Context) error { return c.UpdatePersistentBoot(ctx, devices) })
}

// GetCurrentBootMode returns LEGACY or UEFI.
func (o ops) GetCurrentBootMode(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_current_boot_mode"}, Client.GetCurrentBootMode)
}

// GetPendingBootMode returns the boot mode of the next boot.
func (o ops) GetPendingBootMode(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_pending_boot_mode"}, Client.GetPendingBootMode)
}

// SetPendingBootMode sets the boot mode applied at the next reset.
func (o ops) SetPendingBootMode(ctx context.Context, mode string) error {
	return invoke0(ctx, o, call{op: "set_pending_boot_mode", args: map[string]any{"mode": mode}},
		func(c Client, ctx context.Context) error { return c.SetPendingBootMode(ctx, mode) })
}

// GetSupportedBootMode returns the supported boot modes.
func (o ops) GetSupportedBootMode(ctx context.Context) (string, error) {
	return invoke(ctx, o, call{op: "get_supported_boot_mode"}, Client.GetSupportedBootMode)
}

// GetSecureBootMode reports whether secure boot is on.
func (o ops) GetSecureBootMode(ctx context.Context) (bool, error) {
	return invoke(ctx, o, call{op: "get_secure_boot_mode"}, Client.GetSecureBootMode)
}

// SetSecureBootMode switches secure boot.
func (o ops) SetSecureBootMode(ctx context.Context, enable bool) error {
	return invoke0(ctx, o, call{op: "set_secure_boot_mode", args: map[string]any{"enable": enable}},
		func(c Client, ctx context.Context) error { return c.SetSecureBootMode(ctx, enable) })
}

// ResetSecureBootKeys restores the default keys.
func (o ops) ResetSecureBootKeys(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "reset_secure_boot_keys"}, Client.ResetSecureBootKeys)
}

// ClearSecureBootKeys deletes all keys.
func (o ops) ClearSecureBootKeys(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "clear_secure_boot_keys"}, Client.ClearSecureBootKeys)
}

// InsertVirtualMedia inserts url into device. The URL is recorded without
// its query (temp-URL signatures) and through the run's redaction.
func (o ops) InsertVirtualMedia(ctx context.Context, url, device string) error {
	return invoke0(ctx, o, call{op: "insert_virtual_media", args: map[string]any{"device": device, "url": stripQuery(url)}},
		func(c Client, ctx context.Context) error { return c.InsertVirtualMedia(ctx, url, device) })
}

// EjectVirtualMedia ejects device (no-op when empty).
func (o ops) EjectVirtualMedia(ctx context.Context, device string) error {
	return invoke0(ctx, o, call{op: "eject_virtual_media", args: map[string]any{"device": device}},
		func(c Client, ctx context.Context) error { return c.EjectVirtualMedia(ctx, device) })
}

// GetVMStatus returns the state of device.
func (o ops) GetVMStatus(ctx context.Context, device string) (VMStatus, error) {
	return invoke(ctx, o, call{op: "get_vm_status", args: map[string]any{"device": device}, result: func(v any) any {
		s, _ := v.(VMStatus)
		return map[string]any{"image_inserted": s.ImageInserted, "boot_option": s.BootOption}
	}}, func(c Client, ctx context.Context) (VMStatus, error) { return c.GetVMStatus(ctx, device) })
}

// SetVMStatus sets the boot option and write protection of device.
func (o ops) SetVMStatus(ctx context.Context, device, bootOption, writeProtect string) error {
	return invoke0(ctx, o, call{op: "set_vm_status", args: map[string]any{"device": device, "boot_option": bootOption, "write_protect": writeProtect}},
		func(c Client, ctx context.Context) error { return c.SetVMStatus(ctx, device, bootOption, writeProtect) })
}

// ResetILO resets the iLO (RESET_RIB when RIBCL answers, as proliantutils
// does on every generation) and waits until it answers again.
func (o ops) ResetILO(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "reset_ilo", pref: ribclFirst}, Client.ResetILO)
}

// ResetBIOSToDefault restores the BIOS defaults.
func (o ops) ResetBIOSToDefault(ctx context.Context) error {
	return invoke0(ctx, o, call{op: "reset_bios_to_default"}, Client.ResetBIOSToDefault)
}

// ResetILOCredential changes the login user's password; the new password
// is a secret of the run and never recorded.
func (o ops) ResetILOCredential(ctx context.Context, newPassword string) error {
	return invoke0(ctx, o, call{op: "reset_ilo_credential", secret: newPassword},
		func(c Client, ctx context.Context) error { return c.ResetILOCredential(ctx, newPassword) })
}

// GetEssentialProperties inspects the server (RIBCL first on Gen9, as
// proliantutils).
func (o ops) GetEssentialProperties(ctx context.Context) (EssentialProperties, error) {
	return invoke(ctx, o, call{op: "get_essential_properties", pref: ribclOnGen9, result: func(v any) any {
		p, _ := v.(EssentialProperties)
		return map[string]any{"memory_mb": p.MemoryMB, "cpus": p.CPUs, "cpu_arch": p.CPUArch, "local_gb": p.LocalGB, "macs": len(p.MACs)}
	}}, Client.GetEssentialProperties)
}

// GetServerCapabilities returns the capabilities map.
func (o ops) GetServerCapabilities(ctx context.Context) (map[string]string, error) {
	return invoke(ctx, o, call{op: "get_server_capabilities"}, Client.GetServerCapabilities)
}

// GetHostHealthData returns sensors (RIBCL GET_EMBEDDED_HEALTH when it answers).
func (o ops) GetHostHealthData(ctx context.Context) (HealthData, error) {
	return invoke(ctx, o, call{op: "get_host_health_data", pref: ribclFirst}, Client.GetHostHealthData)
}

// GetAllLicenses lists the installed licences (RIBCL when it answers); only
// their count is recorded.
func (o ops) GetAllLicenses(ctx context.Context) ([]License, error) {
	return invoke(ctx, o, call{op: "get_all_licenses", pref: ribclFirst, result: func(v any) any {
		l, _ := v.([]License)
		return map[string]any{"count": len(l)}
	}}, Client.GetAllLicenses)
}

// GetLicense returns the licence in force (name, tier) and the iLO
// generation: RIBCL GET_FW_VERSION or the Redfish manager's Oem.Hpe.License.
func (o ops) GetLicense(ctx context.Context) (LicenseInfo, error) {
	return invoke(ctx, o, call{op: "get_license", result: func(v any) any {
		l, _ := v.(LicenseInfo)
		return map[string]any{"name": l.Name, "tier": l.Tier, "ilo": l.ILO}
	}}, Client.GetLicense)
}

// ActivateLicense installs a licence key; the key is a secret of the run.
func (o ops) ActivateLicense(ctx context.Context, key string) error {
	return invoke0(ctx, o, call{op: "activate_license", secret: key},
		func(c Client, ctx context.Context) error { return c.ActivateLicense(ctx, key) })
}

// unrecordedLayer runs the call on inner and gives its error the Lua code:
// for bindings that record the BMC step themselves (vmedia).
type unrecordedLayer struct{ inner Client }

func (u unrecordedLayer) do(ctx context.Context, c call, fn func(inner Client, ctx context.Context) (any, error)) (any, error) {
	v, err := fn(u.inner, ctx)
	return v, luaError(c.op, err)
}

var _ iloapi.Client = ops{l: unrecordedLayer{}}
