package ilo

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// Recorded wraps a Client so that every call becomes a "call" event of
// the run (operation, duration, outcome, protocol; never a secret). Go
// callers that get it from a Lua userdata (vmedia, agent) are recorded too.
// Each call is bounded by both its own ctx and the run's context.
type Recorded struct {
	inner  Client
	run    module.Run
	fields map[string]any
}

var _ Client = (*Recorded)(nil)

// NewRecorded wraps c for run; fields (e.g. node, address) go into every event.
func NewRecorded(c Client, run module.Run, fields map[string]any) *Recorded {
	return &Recorded{inner: c, run: run, fields: fields}
}

// Inner returns the wrapped client.
func (r *Recorded) Inner() Client { return r.inner }

// call runs fn as one recorded call named "ilo."+op.
func (r *Recorded) call(ctx context.Context, op string, args map[string]any, fn func(ctx context.Context) (any, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.run.Context(), cancel)
	defer stop()
	ci := &callInfo{}
	ctx = context.WithValue(ctx, callInfoKey{}, ci)
	start := time.Now()
	result, err := fn(ctx)
	err = luaError(err)
	if err != nil && r.run.Context().Err() != nil && ctx.Err() != nil {
		// The run itself ended: report that, not the transport's view of it.
		err = withRunErr(op, r.run.Context().Err(), err)
	}
	data := make(map[string]any, len(r.fields)+len(args)+6)
	for k, v := range r.fields {
		data[k] = v
	}
	for k, v := range args {
		data[k] = v
	}
	ci.mu.Lock()
	if ci.protocol != "" {
		data["protocol"] = ci.protocol
	}
	if ci.model != "" {
		data["model"] = ci.model
	}
	ci.mu.Unlock()
	if result != nil {
		data["result"] = result
	}
	data["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		data["outcome"] = module.CodeOf(err)
		data["error"] = r.run.Redact(err.Error())
	} else {
		data["outcome"] = "ok"
	}
	r.run.Event("call", "ilo."+op, data)
	return err
}

// luaCodes maps the iLO client's error kinds to the Lua error codes.
var luaCodes = map[iloapi.Kind]string{
	iloapi.KindOther:        module.CodeError,
	iloapi.KindNotSupported: module.CodeNotSupported,
	iloapi.KindLoginFailed:  module.CodeLoginFailed,
	iloapi.KindTransient:    module.CodeTransient,
	iloapi.KindILO:          module.CodeILOError,
	iloapi.KindTimeout:      module.CodeTimeout,
	iloapi.KindCancelled:    module.CodeCancelled,
	iloapi.KindInvalid:      module.CodeInvalid,
}

// luaCode is the Lua error code of err: a *module.Error's own code, else
// the code of its iLO client kind.
func luaCode(err error) string {
	var me *module.Error
	if err == nil {
		return ""
	}
	if errors.As(err, &me) {
		return me.Code
	}
	if c, ok := luaCodes[iloapi.KindOf(err)]; ok {
		return c
	}
	return module.CodeError
}

// luaError turns an iLO client error into the *module.Error the Lua face
// raises and records (code, operation, message; the original wrapped).
func luaError(err error) error {
	var me *module.Error
	if err == nil || errors.As(err, &me) {
		return err
	}
	out := &module.Error{Code: luaCode(err), Message: err.Error(), Err: err}
	var ie *iloapi.Error
	if errors.As(err, &ie) && ie.Op != "" {
		out.Operation, out.Message = ie.Op, ie.Message
	}
	return out
}

func withRunErr(op string, runErr, err error) error {
	code := module.CodeCancelled
	if runErr == context.DeadlineExceeded {
		code = module.CodeTimeout
	}
	return &module.Error{Code: code, Operation: op, Message: "run ended: " + err.Error(), Err: err}
}

func (r *Recorded) str(ctx context.Context, op string, args map[string]any, fn func(ctx context.Context) (string, error)) (string, error) {
	var out string
	err := r.call(ctx, op, args, func(ctx context.Context) (any, error) {
		v, err := fn(ctx)
		out = v
		if err != nil {
			return nil, err
		}
		return v, nil
	})
	return out, err
}

func (r *Recorded) none(ctx context.Context, op string, args map[string]any, fn func(ctx context.Context) error) error {
	return r.call(ctx, op, args, func(ctx context.Context) (any, error) { return nil, fn(ctx) })
}

// GetProductName implements Client.
func (r *Recorded) GetProductName(ctx context.Context) (string, error) {
	return r.str(ctx, "get_product_name", nil, r.inner.GetProductName)
}

// GetHostPowerStatus implements Client.
func (r *Recorded) GetHostPowerStatus(ctx context.Context) (string, error) {
	return r.str(ctx, "get_host_power_status", nil, r.inner.GetHostPowerStatus)
}

// SetHostPower implements Client.
func (r *Recorded) SetHostPower(ctx context.Context, power string) error {
	return r.none(ctx, "set_host_power", map[string]any{"power": power}, func(ctx context.Context) error { return r.inner.SetHostPower(ctx, power) })
}

// HoldPwrBtn implements Client.
func (r *Recorded) HoldPwrBtn(ctx context.Context) error {
	return r.none(ctx, "hold_pwr_btn", nil, r.inner.HoldPwrBtn)
}

// PressPwrBtn implements Client.
func (r *Recorded) PressPwrBtn(ctx context.Context) error {
	return r.none(ctx, "press_pwr_btn", nil, r.inner.PressPwrBtn)
}

// ResetServer implements Client.
func (r *Recorded) ResetServer(ctx context.Context) error {
	return r.none(ctx, "reset_server", nil, r.inner.ResetServer)
}

// GetOneTimeBoot implements Client.
func (r *Recorded) GetOneTimeBoot(ctx context.Context) (string, error) {
	return r.str(ctx, "get_one_time_boot", nil, r.inner.GetOneTimeBoot)
}

// SetOneTimeBoot implements Client.
func (r *Recorded) SetOneTimeBoot(ctx context.Context, device string) error {
	return r.none(ctx, "set_one_time_boot", map[string]any{"device": device}, func(ctx context.Context) error { return r.inner.SetOneTimeBoot(ctx, device) })
}

// GetPersistentBootDevice implements Client.
func (r *Recorded) GetPersistentBootDevice(ctx context.Context) (string, error) {
	return r.str(ctx, "get_persistent_boot_device", nil, r.inner.GetPersistentBootDevice)
}

// UpdatePersistentBoot implements Client.
func (r *Recorded) UpdatePersistentBoot(ctx context.Context, devices []string) error {
	return r.none(ctx, "update_persistent_boot", map[string]any{"devices": devices}, func(ctx context.Context) error { return r.inner.UpdatePersistentBoot(ctx, devices) })
}

// GetCurrentBootMode implements Client.
func (r *Recorded) GetCurrentBootMode(ctx context.Context) (string, error) {
	return r.str(ctx, "get_current_boot_mode", nil, r.inner.GetCurrentBootMode)
}

// GetPendingBootMode implements Client.
func (r *Recorded) GetPendingBootMode(ctx context.Context) (string, error) {
	return r.str(ctx, "get_pending_boot_mode", nil, r.inner.GetPendingBootMode)
}

// SetPendingBootMode implements Client.
func (r *Recorded) SetPendingBootMode(ctx context.Context, mode string) error {
	return r.none(ctx, "set_pending_boot_mode", map[string]any{"mode": mode}, func(ctx context.Context) error { return r.inner.SetPendingBootMode(ctx, mode) })
}

// GetSupportedBootMode implements Client.
func (r *Recorded) GetSupportedBootMode(ctx context.Context) (string, error) {
	return r.str(ctx, "get_supported_boot_mode", nil, r.inner.GetSupportedBootMode)
}

// GetSecureBootMode implements Client.
func (r *Recorded) GetSecureBootMode(ctx context.Context) (bool, error) {
	var out bool
	err := r.call(ctx, "get_secure_boot_mode", nil, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetSecureBootMode(ctx)
		out = v
		if err != nil {
			return nil, err
		}
		return v, nil
	})
	return out, err
}

// SetSecureBootMode implements Client.
func (r *Recorded) SetSecureBootMode(ctx context.Context, enable bool) error {
	return r.none(ctx, "set_secure_boot_mode", map[string]any{"enable": enable}, func(ctx context.Context) error { return r.inner.SetSecureBootMode(ctx, enable) })
}

// ResetSecureBootKeys implements Client.
func (r *Recorded) ResetSecureBootKeys(ctx context.Context) error {
	return r.none(ctx, "reset_secure_boot_keys", nil, r.inner.ResetSecureBootKeys)
}

// ClearSecureBootKeys implements Client.
func (r *Recorded) ClearSecureBootKeys(ctx context.Context) error {
	return r.none(ctx, "clear_secure_boot_keys", nil, r.inner.ClearSecureBootKeys)
}

// InsertVirtualMedia implements Client. The URL is recorded through the
// run's redaction (temp-URL signatures registered as secrets are hidden).
func (r *Recorded) InsertVirtualMedia(ctx context.Context, url, device string) error {
	return r.none(ctx, "insert_virtual_media", map[string]any{"device": device, "url": r.run.Redact(stripQuery(url))}, func(ctx context.Context) error {
		return r.inner.InsertVirtualMedia(ctx, url, device)
	})
}

// EjectVirtualMedia implements Client.
func (r *Recorded) EjectVirtualMedia(ctx context.Context, device string) error {
	return r.none(ctx, "eject_virtual_media", map[string]any{"device": device}, func(ctx context.Context) error { return r.inner.EjectVirtualMedia(ctx, device) })
}

// GetVMStatus implements Client.
func (r *Recorded) GetVMStatus(ctx context.Context, device string) (VMStatus, error) {
	var out VMStatus
	err := r.call(ctx, "get_vm_status", map[string]any{"device": device}, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetVMStatus(ctx, device)
		out = v
		if err != nil {
			return nil, err
		}
		return map[string]any{"image_inserted": v.ImageInserted, "boot_option": v.BootOption}, nil
	})
	return out, err
}

// SetVMStatus implements Client.
func (r *Recorded) SetVMStatus(ctx context.Context, device, bootOption, writeProtect string) error {
	return r.none(ctx, "set_vm_status", map[string]any{"device": device, "boot_option": bootOption, "write_protect": writeProtect}, func(ctx context.Context) error {
		return r.inner.SetVMStatus(ctx, device, bootOption, writeProtect)
	})
}

// ResetILO implements Client.
func (r *Recorded) ResetILO(ctx context.Context) error {
	return r.none(ctx, "reset_ilo", nil, r.inner.ResetILO)
}

// ResetBIOSToDefault implements Client.
func (r *Recorded) ResetBIOSToDefault(ctx context.Context) error {
	return r.none(ctx, "reset_bios_to_default", nil, r.inner.ResetBIOSToDefault)
}

// ResetILOCredential implements Client; the new password is registered as
// a run secret and never recorded.
func (r *Recorded) ResetILOCredential(ctx context.Context, newPassword string) error {
	r.run.AddSecret(newPassword)
	return r.none(ctx, "reset_ilo_credential", nil, func(ctx context.Context) error { return r.inner.ResetILOCredential(ctx, newPassword) })
}

// GetEssentialProperties implements Client.
func (r *Recorded) GetEssentialProperties(ctx context.Context) (EssentialProperties, error) {
	var out EssentialProperties
	err := r.call(ctx, "get_essential_properties", nil, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetEssentialProperties(ctx)
		out = v
		if err != nil {
			return nil, err
		}
		return map[string]any{"memory_mb": v.MemoryMB, "cpus": v.CPUs, "cpu_arch": v.CPUArch, "local_gb": v.LocalGB, "macs": len(v.MACs)}, nil
	})
	return out, err
}

// GetServerCapabilities implements Client.
func (r *Recorded) GetServerCapabilities(ctx context.Context) (map[string]string, error) {
	var out map[string]string
	err := r.call(ctx, "get_server_capabilities", nil, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetServerCapabilities(ctx)
		out = v
		return nil, err
	})
	return out, err
}

// GetHostHealthData implements Client.
func (r *Recorded) GetHostHealthData(ctx context.Context) (HealthData, error) {
	var out HealthData
	err := r.call(ctx, "get_host_health_data", nil, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetHostHealthData(ctx)
		out = v
		return nil, err
	})
	return out, err
}

// GetAllLicenses implements Client (keys are not recorded).
func (r *Recorded) GetAllLicenses(ctx context.Context) ([]License, error) {
	var out []License
	err := r.call(ctx, "get_all_licenses", nil, func(ctx context.Context) (any, error) {
		v, err := r.inner.GetAllLicenses(ctx)
		out = v
		if err != nil {
			return nil, err
		}
		return map[string]any{"count": len(v)}, nil
	})
	return out, err
}

// ActivateLicense implements Client; the key is a secret of the run.
func (r *Recorded) ActivateLicense(ctx context.Context, key string) error {
	r.run.AddSecret(key)
	return r.none(ctx, "activate_license", nil, func(ctx context.Context) error { return r.inner.ActivateLicense(ctx, key) })
}

// stripQuery drops the query of a URL for recording: temp URLs carry their
// signature (a bearer credential) there.
func stripQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
