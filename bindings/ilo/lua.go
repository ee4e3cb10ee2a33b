package ilo

import (
	"context"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// luaMethod is the Lua face of one operation: it reads the arguments
// through a (the client is argument 1), calls c and pushes the result.
type luaMethod = module.Func[*Recorded]

func pushOrRaise(a *module.Args, v lua.LValue, err error) int {
	a.Check(err)
	a.L.Push(v)
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

// luaMethods is the Lua face of every operation: the methods of an
// ilo.client (bmc:get_host_power_status()). Each call is bounded by the
// run's context (see Recorded).
func luaMethods() module.API[*Recorded] {
	str := func(fn func(c Client, ctx context.Context) (string, error)) luaMethod {
		return func(c *Recorded, a *module.Args) int {
			v, err := fn(c, c.run.Context())
			return pushOrRaise(a, lua.LString(v), err)
		}
	}
	none := func(fn func(a *module.Args, c Client, ctx context.Context) error) luaMethod {
		return func(c *Recorded, a *module.Args) int {
			a.Check(fn(a, c, c.run.Context()))
			return 0
		}
	}
	return module.API[*Recorded]{
		"get_product_name": str(func(c Client, ctx context.Context) (string, error) { return c.GetProductName(ctx) }),
		"get_host_power_status": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetHostPowerStatus(ctx)
		}),
		"set_host_power": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.SetHostPower(ctx, a.String(2, "state"))
		}),
		"hold_pwr_btn":  none(func(_ *module.Args, c Client, ctx context.Context) error { return c.HoldPwrBtn(ctx) }),
		"press_pwr_btn": none(func(_ *module.Args, c Client, ctx context.Context) error { return c.PressPwrBtn(ctx) }),
		"reset_server":  none(func(_ *module.Args, c Client, ctx context.Context) error { return c.ResetServer(ctx) }),
		"get_one_time_boot": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetOneTimeBoot(ctx)
		}),
		"set_one_time_boot": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.SetOneTimeBoot(ctx, a.String(2, "device"))
		}),
		"get_persistent_boot_device": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetPersistentBootDevice(ctx)
		}),
		"update_persistent_boot": none(func(a *module.Args, c Client, ctx context.Context) error {
			var devs []string
			switch v := a.L.Get(2).(type) {
			case lua.LString:
				devs = []string{string(v)}
			case *lua.LTable:
				for i := 1; i <= v.Len(); i++ {
					devs = append(devs, lua.LVAsString(v.RawGetInt(i)))
				}
			default:
				a.Invalid("argument #1 (devices) must be a boot device string or a list of devices, got %s", a.L.Get(2).Type())
			}
			return c.UpdatePersistentBoot(ctx, devs)
		}),
		"get_current_boot_mode": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetCurrentBootMode(ctx)
		}),
		"get_pending_boot_mode": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetPendingBootMode(ctx)
		}),
		"set_pending_boot_mode": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.SetPendingBootMode(ctx, a.String(2, "mode"))
		}),
		"get_supported_boot_mode": str(func(c Client, ctx context.Context) (string, error) {
			return c.GetSupportedBootMode(ctx)
		}),
		"get_secure_boot_mode": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			v, err := c.GetSecureBootMode(ctx)
			return pushOrRaise(a, lua.LBool(v), err)
		},
		"set_secure_boot_mode": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.SetSecureBootMode(ctx, a.Bool(2, "enable"))
		}),
		"reset_secure_boot_keys": none(func(_ *module.Args, c Client, ctx context.Context) error {
			return c.ResetSecureBootKeys(ctx)
		}),
		"clear_secure_boot_keys": none(func(_ *module.Args, c Client, ctx context.Context) error {
			return c.ClearSecureBootKeys(ctx)
		}),
		"insert_virtual_media": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.InsertVirtualMedia(ctx, a.String(2, "url"), a.OptString(3, "device", iloapi.DeviceCDROM))
		}),
		"eject_virtual_media": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.EjectVirtualMedia(ctx, a.OptString(2, "device", iloapi.DeviceCDROM))
		}),
		"get_vm_status": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			v, err := c.GetVMStatus(ctx, a.OptString(2, "device", iloapi.DeviceFloppy))
			if err != nil {
				a.Raise(err)
			}
			a.L.Push(vmStatusTable(a.L, v))
			return 1
		},
		"set_vm_status": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.SetVMStatus(ctx, a.OptString(2, "device", iloapi.DeviceFloppy), a.OptString(3, "boot_option", "BOOT_ONCE"), a.OptString(4, "write_protect", "YES"))
		}),
		"reset_ilo":             none(func(_ *module.Args, c Client, ctx context.Context) error { return c.ResetILO(ctx) }),
		"reset_bios_to_default": none(func(_ *module.Args, c Client, ctx context.Context) error { return c.ResetBIOSToDefault(ctx) }),
		"reset_ilo_credential": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.ResetILOCredential(ctx, a.String(2, "password"))
		}),
		"get_essential_properties": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			p, err := c.GetEssentialProperties(ctx)
			if err != nil {
				a.Raise(err)
			}
			props := a.L.NewTable()
			props.RawSetString("memory_mb", lua.LNumber(p.MemoryMB))
			props.RawSetString("cpus", lua.LNumber(p.CPUs))
			props.RawSetString("cpu_arch", lua.LString(p.CPUArch))
			props.RawSetString("local_gb", lua.LNumber(p.LocalGB))
			macs := a.L.NewTable()
			for k, v := range p.MACs {
				macs.RawSetString(k, lua.LString(v))
			}
			nics := a.L.NewTable()
			for _, n := range p.NICs {
				e := a.L.NewTable()
				e.RawSetString("port", lua.LString(n.Port))
				e.RawSetString("mac", lua.LString(n.MAC))
				e.RawSetString("state", lua.LString(n.State))
				e.RawSetString("health", lua.LString(n.Health))
				nics.Append(e)
			}
			t := a.L.NewTable()
			t.RawSetString("properties", props)
			t.RawSetString("macs", macs)
			t.RawSetString("nics", nics)
			a.L.Push(t)
			return 1
		},
		"get_server_capabilities": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			caps, err := c.GetServerCapabilities(ctx)
			if err != nil {
				a.Raise(err)
			}
			a.L.Push(module.ToLua(a.L, caps))
			return 1
		},
		"get_host_health_data": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			h, err := c.GetHostHealthData(ctx)
			if err != nil {
				a.Raise(err)
			}
			t := a.L.NewTable()
			t.RawSetString("temperatures", sensorsTable(a.L, h.Temperatures))
			t.RawSetString("fans", sensorsTable(a.L, h.Fans))
			t.RawSetString("power_supplies", sensorsTable(a.L, h.PowerSupplies))
			t.RawSetString("power_reading", lua.LString(h.PowerReading))
			a.L.Push(t)
			return 1
		},
		"get_all_licenses": func(c *Recorded, a *module.Args) int {
			ctx := c.run.Context()
			ls, err := c.GetAllLicenses(ctx)
			if err != nil {
				a.Raise(err)
			}
			t := a.L.CreateTable(len(ls), 0)
			for _, l := range ls {
				e := a.L.NewTable()
				e.RawSetString("type", lua.LString(l.Type))
				e.RawSetString("key", lua.LString(l.Key))
				e.RawSetString("install_date", lua.LString(l.InstallDate))
				e.RawSetString("class", lua.LString(l.Class))
				t.Append(e)
			}
			a.L.Push(t)
			return 1
		},
		"get_license": func(c *Recorded, a *module.Args) int {
			l, err := c.GetLicense(c.run.Context())
			if err != nil {
				a.Raise(err)
			}
			t := a.L.NewTable()
			t.RawSetString("name", lua.LString(l.Name))
			t.RawSetString("tier", lua.LString(l.Tier))
			t.RawSetString("ilo", lua.LNumber(l.ILO))
			a.L.Push(t)
			return 1
		},
		"activate_license": none(func(a *module.Args, c Client, ctx context.Context) error {
			return c.ActivateLicense(ctx, a.String(2, "key"))
		}),
	}
}
