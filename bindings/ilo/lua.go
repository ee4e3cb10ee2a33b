package ilo

import (
	"context"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// luaMethod is the Lua face of one operation: it reads the arguments from
// L (the client is argument 1), calls c and pushes the result.
type luaMethod func(L *lua.LState, c Client, ctx context.Context) int

func pushOrRaise(L *lua.LState, op string, v lua.LValue, err error) int {
	if err != nil {
		module.Raise(L, op, err)
		return 0
	}
	L.Push(v)
	return 1
}

func vmStatusTable(L *lua.LState, s VMStatus) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("vm_applet", lua.LString(s.VMApplet))
	t.RawSetString("device", lua.LString(s.Device))
	t.RawSetString("boot_option", lua.LString(s.BootOption))
	t.RawSetString("write_protect", lua.LString(s.WriteProtect))
	t.RawSetString("image_inserted", lua.LString(s.ImageInserted))
	t.RawSetString("image_url", lua.LString(s.ImageURL))
	t.RawSetString("inserted", lua.LBool(s.Inserted()))
	return t
}

func sensorsTable(L *lua.LState, ss []Sensor) *lua.LTable {
	t := L.CreateTable(len(ss), 0)
	for _, s := range ss {
		e := L.NewTable()
		e.RawSetString("name", lua.LString(s.Name))
		e.RawSetString("location", lua.LString(s.Location))
		e.RawSetString("status", lua.LString(s.Status))
		e.RawSetString("reading", lua.LString(s.Reading))
		t.Append(e)
	}
	return t
}

func luaMethods() map[string]luaMethod {
	str := func(op string, fn func(c Client, ctx context.Context) (string, error)) luaMethod {
		return func(L *lua.LState, c Client, ctx context.Context) int {
			v, err := fn(c, ctx)
			return pushOrRaise(L, op, lua.LString(v), err)
		}
	}
	none := func(op string, fn func(L *lua.LState, c Client, ctx context.Context) error) luaMethod {
		return func(L *lua.LState, c Client, ctx context.Context) int {
			if err := fn(L, c, ctx); err != nil {
				module.Raise(L, op, err)
			}
			return 0
		}
	}
	return map[string]luaMethod{
		"get_product_name": str("get_product_name", func(c Client, ctx context.Context) (string, error) { return c.GetProductName(ctx) }),
		"get_host_power_status": str("get_host_power_status", func(c Client, ctx context.Context) (string, error) {
			return c.GetHostPowerStatus(ctx)
		}),
		"set_host_power": none("set_host_power", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.SetHostPower(ctx, L.CheckString(2))
		}),
		"hold_pwr_btn":  none("hold_pwr_btn", func(_ *lua.LState, c Client, ctx context.Context) error { return c.HoldPwrBtn(ctx) }),
		"press_pwr_btn": none("press_pwr_btn", func(_ *lua.LState, c Client, ctx context.Context) error { return c.PressPwrBtn(ctx) }),
		"reset_server":  none("reset_server", func(_ *lua.LState, c Client, ctx context.Context) error { return c.ResetServer(ctx) }),
		"get_one_time_boot": str("get_one_time_boot", func(c Client, ctx context.Context) (string, error) {
			return c.GetOneTimeBoot(ctx)
		}),
		"set_one_time_boot": none("set_one_time_boot", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.SetOneTimeBoot(ctx, L.CheckString(2))
		}),
		"get_persistent_boot_device": str("get_persistent_boot_device", func(c Client, ctx context.Context) (string, error) {
			return c.GetPersistentBootDevice(ctx)
		}),
		"update_persistent_boot": none("update_persistent_boot", func(L *lua.LState, c Client, ctx context.Context) error {
			var devs []string
			switch v := L.Get(2).(type) {
			case lua.LString:
				devs = []string{string(v)}
			case *lua.LTable:
				for i := 1; i <= v.Len(); i++ {
					devs = append(devs, lua.LVAsString(v.RawGetInt(i)))
				}
			default:
				L.ArgError(2, "boot device string or list of devices expected")
			}
			return c.UpdatePersistentBoot(ctx, devs)
		}),
		"get_current_boot_mode": str("get_current_boot_mode", func(c Client, ctx context.Context) (string, error) {
			return c.GetCurrentBootMode(ctx)
		}),
		"get_pending_boot_mode": str("get_pending_boot_mode", func(c Client, ctx context.Context) (string, error) {
			return c.GetPendingBootMode(ctx)
		}),
		"set_pending_boot_mode": none("set_pending_boot_mode", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.SetPendingBootMode(ctx, L.CheckString(2))
		}),
		"get_supported_boot_mode": str("get_supported_boot_mode", func(c Client, ctx context.Context) (string, error) {
			return c.GetSupportedBootMode(ctx)
		}),
		"get_secure_boot_mode": func(L *lua.LState, c Client, ctx context.Context) int {
			v, err := c.GetSecureBootMode(ctx)
			return pushOrRaise(L, "get_secure_boot_mode", lua.LBool(v), err)
		},
		"set_secure_boot_mode": none("set_secure_boot_mode", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.SetSecureBootMode(ctx, L.CheckBool(2))
		}),
		"reset_secure_boot_keys": none("reset_secure_boot_keys", func(_ *lua.LState, c Client, ctx context.Context) error {
			return c.ResetSecureBootKeys(ctx)
		}),
		"clear_secure_boot_keys": none("clear_secure_boot_keys", func(_ *lua.LState, c Client, ctx context.Context) error {
			return c.ClearSecureBootKeys(ctx)
		}),
		"insert_virtual_media": none("insert_virtual_media", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.InsertVirtualMedia(ctx, L.CheckString(2), L.OptString(3, iloapi.DeviceCDROM))
		}),
		"eject_virtual_media": none("eject_virtual_media", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.EjectVirtualMedia(ctx, L.OptString(2, iloapi.DeviceCDROM))
		}),
		"get_vm_status": func(L *lua.LState, c Client, ctx context.Context) int {
			v, err := c.GetVMStatus(ctx, L.OptString(2, iloapi.DeviceFloppy))
			if err != nil {
				module.Raise(L, "get_vm_status", err)
				return 0
			}
			L.Push(vmStatusTable(L, v))
			return 1
		},
		"set_vm_status": none("set_vm_status", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.SetVMStatus(ctx, L.OptString(2, iloapi.DeviceFloppy), L.OptString(3, "BOOT_ONCE"), L.OptString(4, "YES"))
		}),
		"reset_ilo":             none("reset_ilo", func(_ *lua.LState, c Client, ctx context.Context) error { return c.ResetILO(ctx) }),
		"reset_bios_to_default": none("reset_bios_to_default", func(_ *lua.LState, c Client, ctx context.Context) error { return c.ResetBIOSToDefault(ctx) }),
		"reset_ilo_credential": none("reset_ilo_credential", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.ResetILOCredential(ctx, L.CheckString(2))
		}),
		"get_essential_properties": func(L *lua.LState, c Client, ctx context.Context) int {
			p, err := c.GetEssentialProperties(ctx)
			if err != nil {
				module.Raise(L, "get_essential_properties", err)
				return 0
			}
			props := L.NewTable()
			props.RawSetString("memory_mb", lua.LNumber(p.MemoryMB))
			props.RawSetString("cpus", lua.LNumber(p.CPUs))
			props.RawSetString("cpu_arch", lua.LString(p.CPUArch))
			props.RawSetString("local_gb", lua.LNumber(p.LocalGB))
			macs := L.NewTable()
			for k, v := range p.MACs {
				macs.RawSetString(k, lua.LString(v))
			}
			nics := L.NewTable()
			for _, n := range p.NICs {
				e := L.NewTable()
				e.RawSetString("port", lua.LString(n.Port))
				e.RawSetString("mac", lua.LString(n.MAC))
				e.RawSetString("state", lua.LString(n.State))
				e.RawSetString("health", lua.LString(n.Health))
				nics.Append(e)
			}
			t := L.NewTable()
			t.RawSetString("properties", props)
			t.RawSetString("macs", macs)
			t.RawSetString("nics", nics)
			L.Push(t)
			return 1
		},
		"get_server_capabilities": func(L *lua.LState, c Client, ctx context.Context) int {
			caps, err := c.GetServerCapabilities(ctx)
			if err != nil {
				module.Raise(L, "get_server_capabilities", err)
				return 0
			}
			L.Push(module.ToLua(L, caps))
			return 1
		},
		"get_host_health_data": func(L *lua.LState, c Client, ctx context.Context) int {
			h, err := c.GetHostHealthData(ctx)
			if err != nil {
				module.Raise(L, "get_host_health_data", err)
				return 0
			}
			t := L.NewTable()
			t.RawSetString("temperatures", sensorsTable(L, h.Temperatures))
			t.RawSetString("fans", sensorsTable(L, h.Fans))
			t.RawSetString("power_supplies", sensorsTable(L, h.PowerSupplies))
			t.RawSetString("power_reading", lua.LString(h.PowerReading))
			L.Push(t)
			return 1
		},
		"get_all_licenses": func(L *lua.LState, c Client, ctx context.Context) int {
			ls, err := c.GetAllLicenses(ctx)
			if err != nil {
				module.Raise(L, "get_all_licenses", err)
				return 0
			}
			t := L.CreateTable(len(ls), 0)
			for _, l := range ls {
				e := L.NewTable()
				e.RawSetString("type", lua.LString(l.Type))
				e.RawSetString("key", lua.LString(l.Key))
				e.RawSetString("install_date", lua.LString(l.InstallDate))
				e.RawSetString("class", lua.LString(l.Class))
				t.Append(e)
			}
			L.Push(t)
			return 1
		},
		"activate_license": none("activate_license", func(L *lua.LState, c Client, ctx context.Context) error {
			return c.ActivateLicense(ctx, L.CheckString(2))
		}),
	}
}
