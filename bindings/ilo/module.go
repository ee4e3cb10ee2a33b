package ilo

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/runtime/module"
)

// Keys in driver_internal_info.
const (
	InternalProbe   = "ilo_probe"
	InternalCertPin = "ilo_cert_pin"
)

// ConfigMaxRequests is the [ilo] option for requests in flight per iLO.
const ConfigMaxRequests = "max_requests_per_ilo"

// Module is the `ilo` Lua module. One value lives for the whole process:
// it holds the per-iLO limiters shared by every run.
type Module struct {
	// MaxRequests overrides [ilo] max_requests_per_ilo when > 0.
	MaxRequests int

	once     sync.Once
	limiters *iloapi.Limiters
}

var _ module.Module = (*Module)(nil)

// NewModule returns the ilo module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "ilo" }

// Limiters returns the shared limiters, configured from cfg on first use.
func (m *Module) Limiters(cfg module.Config) *iloapi.Limiters {
	m.once.Do(func() {
		n := m.MaxRequests
		if n <= 0 && cfg != nil {
			if v, ok := cfg.Get("ilo", ConfigMaxRequests); ok {
				if i, err := strconv.Atoi(v); err == nil && i > 0 {
					n = i
				}
			}
		}
		if n <= 0 {
			n = iloapi.DefaultMaxRequests
		}
		m.limiters = iloapi.NewLimiters(n)
	})
	return m.limiters
}

// Connect builds a recorded client for run from driver_info (or a plain
// table's fields). When node is non-nil the probe and the TOFU pin are
// cached in its driver_internal_info.
func (m *Module) Connect(run module.Run, info map[string]any, node module.Node) (*Recorded, *Router, error) {
	o, err := iloapi.ParseDriverInfo(withConfigDefaults(info, run.Config()))
	if err != nil {
		return nil, nil, &module.Error{Code: module.CodeInvalid, Operation: "ilo.connect", Message: err.Error()}
	}
	run.AddSecret(o.Password)
	cfg := Config{Limiter: m.Limiters(run.Config()).Get(o.Address()), ResetSettle: resetSettle(run.Config())}
	name := ""
	if node != nil {
		name = node.Name()
		internal := node.Internal()
		if p, ok := ProbeFromMap(asMap(internal[InternalProbe])); ok {
			cfg.Probe = &p
		}
		if o.TOFU && o.CertPin == "" {
			if s, ok := internal[InternalCertPin].(string); ok && s != "" {
				if fp, err := iloapi.NormalizeFingerprint(s); err == nil {
					o.CertPin = fp
				}
			}
		}
		cfg.OnProbe = func(p Probe) {
			if err := node.SetInternal(InternalProbe, p.Map()); err != nil {
				run.Log(slog.LevelWarn, "cannot cache the iLO probe", map[string]any{"error": err.Error()})
			}
		}
		cfg.OnPin = func(fp string) {
			if err := node.SetInternal(InternalCertPin, fp); err != nil {
				run.Log(slog.LevelWarn, "cannot store the iLO certificate pin", map[string]any{"error": err.Error()})
			}
			run.Event("state", "ilo.cert_pinned", map[string]any{"address": o.Address(), "fingerprint": fp})
		}
	}
	r, err := Connect(o, cfg)
	if err != nil {
		return nil, nil, &module.Error{Code: module.CodeInvalid, Operation: "ilo.connect", Message: err.Error(), Err: err}
	}
	fields := map[string]any{"address": o.Address()}
	if name != "" {
		fields["node"] = name
	}
	return NewRecorded(r, run, fields), r, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

const clientType = "ilo.client"

// Open implements module.Module: require("ilo") gives {connect = fn}.
func (m *Module) Open(L *lua.LState, run module.Run) lua.LValue {
	mt := L.NewTypeMetatable(clientType)
	methods := L.NewTable()
	for name, fn := range luaMethods() {
		fn := fn
		methods.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			ud := L.CheckUserData(1)
			c, ok := ud.Value.(*Recorded)
			if !ok {
				L.ArgError(1, "ilo client expected (call methods with a colon: bmc:method())")
				return 0
			}
			return fn(L, c, run.Context())
		}))
	}
	mt.RawSetString("__index", methods)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		ud := L.CheckUserData(1)
		if c, ok := ud.Value.(*Recorded); ok {
			L.Push(lua.LString(fmt.Sprintf("ilo.client(%v)", c.fields["address"])))
			return 1
		}
		L.Push(lua.LString("ilo.client"))
		return 1
	}))

	t := L.NewTable()
	t.RawSetString("connect", L.NewFunction(func(L *lua.LState) int {
		info, node, err := connectArgs(L, run)
		if err != nil {
			module.Raise(L, "ilo.connect", err)
			return 0
		}
		c, _, err := m.Connect(run, info, node)
		if err != nil {
			module.Raise(L, "ilo.connect", err)
			return 0
		}
		ud := L.NewUserData()
		ud.Value = c
		L.SetMetatable(ud, mt)
		L.Push(ud)
		return 1
	}))
	return t
}

// connectArgs reads ilo.connect's argument: nothing (the run's node), a
// node table with driver_info, or a plain table with address/username/....
func connectArgs(L *lua.LState, run module.Run) (map[string]any, module.Node, error) {
	v := L.Get(1)
	runNode := run.Node()
	switch t := v.(type) {
	case *lua.LNilType:
		if runNode == nil {
			return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "this run has no node: pass a node table or {address=..., username=..., password=...}")
		}
		return runNode.DriverInfo(), runNode, nil
	case *lua.LTable:
		uuid := lua.LVAsString(t.RawGetString("uuid"))
		name := lua.LVAsString(t.RawGetString("name"))
		_, isNode := t.RawGetString("driver_info").(*lua.LTable)
		if isNode || uuid != "" || name != "" {
			// A node table: only the run's node (the persisted driver_info
			// is authoritative, decrypted in memory).
			ref := uuid
			if ref == "" {
				ref = name
			}
			if ref == "" {
				return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "the node table has no uuid or name")
			}
			if _, err := module.RunNode(run, "ilo.connect", ref); err != nil {
				return nil, nil, err
			}
			return runNode.DriverInfo(), runNode, nil
		}
		// Credentials the script brings itself: a BMC, not a node.
		return tableMap(t), nil, nil
	}
	return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "argument must be a node table or {address=..., username=..., password=...}, got %s", v.Type())
}

func tableMap(t *lua.LTable) map[string]any {
	out := map[string]any{}
	t.ForEach(func(k, v lua.LValue) {
		if ks, ok := k.(lua.LString); ok {
			out[string(ks)] = module.FromLua(v)
		}
	})
	return out
}

type luaMethod func(L *lua.LState, c *Recorded, ctx context.Context) int

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
	str := func(op string, fn func(c *Recorded, ctx context.Context) (string, error)) luaMethod {
		return func(L *lua.LState, c *Recorded, ctx context.Context) int {
			v, err := fn(c, ctx)
			return pushOrRaise(L, op, lua.LString(v), err)
		}
	}
	none := func(op string, fn func(L *lua.LState, c *Recorded, ctx context.Context) error) luaMethod {
		return func(L *lua.LState, c *Recorded, ctx context.Context) int {
			if err := fn(L, c, ctx); err != nil {
				module.Raise(L, op, err)
			}
			return 0
		}
	}
	return map[string]luaMethod{
		"get_product_name": str("get_product_name", func(c *Recorded, ctx context.Context) (string, error) { return c.GetProductName(ctx) }),
		"get_host_power_status": str("get_host_power_status", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetHostPowerStatus(ctx)
		}),
		"set_host_power": none("set_host_power", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.SetHostPower(ctx, L.CheckString(2))
		}),
		"hold_pwr_btn":  none("hold_pwr_btn", func(_ *lua.LState, c *Recorded, ctx context.Context) error { return c.HoldPwrBtn(ctx) }),
		"press_pwr_btn": none("press_pwr_btn", func(_ *lua.LState, c *Recorded, ctx context.Context) error { return c.PressPwrBtn(ctx) }),
		"reset_server":  none("reset_server", func(_ *lua.LState, c *Recorded, ctx context.Context) error { return c.ResetServer(ctx) }),
		"get_one_time_boot": str("get_one_time_boot", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetOneTimeBoot(ctx)
		}),
		"set_one_time_boot": none("set_one_time_boot", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.SetOneTimeBoot(ctx, L.CheckString(2))
		}),
		"get_persistent_boot_device": str("get_persistent_boot_device", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetPersistentBootDevice(ctx)
		}),
		"update_persistent_boot": none("update_persistent_boot", func(L *lua.LState, c *Recorded, ctx context.Context) error {
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
		"get_current_boot_mode": str("get_current_boot_mode", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetCurrentBootMode(ctx)
		}),
		"get_pending_boot_mode": str("get_pending_boot_mode", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetPendingBootMode(ctx)
		}),
		"set_pending_boot_mode": none("set_pending_boot_mode", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.SetPendingBootMode(ctx, L.CheckString(2))
		}),
		"get_supported_boot_mode": str("get_supported_boot_mode", func(c *Recorded, ctx context.Context) (string, error) {
			return c.GetSupportedBootMode(ctx)
		}),
		"get_secure_boot_mode": func(L *lua.LState, c *Recorded, ctx context.Context) int {
			v, err := c.GetSecureBootMode(ctx)
			return pushOrRaise(L, "get_secure_boot_mode", lua.LBool(v), err)
		},
		"set_secure_boot_mode": none("set_secure_boot_mode", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.SetSecureBootMode(ctx, L.CheckBool(2))
		}),
		"reset_secure_boot_keys": none("reset_secure_boot_keys", func(_ *lua.LState, c *Recorded, ctx context.Context) error {
			return c.ResetSecureBootKeys(ctx)
		}),
		"clear_secure_boot_keys": none("clear_secure_boot_keys", func(_ *lua.LState, c *Recorded, ctx context.Context) error {
			return c.ClearSecureBootKeys(ctx)
		}),
		"insert_virtual_media": none("insert_virtual_media", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.InsertVirtualMedia(ctx, L.CheckString(2), L.OptString(3, iloapi.DeviceCDROM))
		}),
		"eject_virtual_media": none("eject_virtual_media", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.EjectVirtualMedia(ctx, L.OptString(2, iloapi.DeviceCDROM))
		}),
		"get_vm_status": func(L *lua.LState, c *Recorded, ctx context.Context) int {
			v, err := c.GetVMStatus(ctx, L.OptString(2, iloapi.DeviceFloppy))
			if err != nil {
				module.Raise(L, "get_vm_status", err)
				return 0
			}
			L.Push(vmStatusTable(L, v))
			return 1
		},
		"set_vm_status": none("set_vm_status", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.SetVMStatus(ctx, L.OptString(2, iloapi.DeviceFloppy), L.OptString(3, "BOOT_ONCE"), L.OptString(4, "YES"))
		}),
		"reset_ilo":             none("reset_ilo", func(_ *lua.LState, c *Recorded, ctx context.Context) error { return c.ResetILO(ctx) }),
		"reset_bios_to_default": none("reset_bios_to_default", func(_ *lua.LState, c *Recorded, ctx context.Context) error { return c.ResetBIOSToDefault(ctx) }),
		"reset_ilo_credential": none("reset_ilo_credential", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.ResetILOCredential(ctx, L.CheckString(2))
		}),
		"get_essential_properties": func(L *lua.LState, c *Recorded, ctx context.Context) int {
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
			t := L.NewTable()
			t.RawSetString("properties", props)
			t.RawSetString("macs", macs)
			L.Push(t)
			return 1
		},
		"get_server_capabilities": func(L *lua.LState, c *Recorded, ctx context.Context) int {
			caps, err := c.GetServerCapabilities(ctx)
			if err != nil {
				module.Raise(L, "get_server_capabilities", err)
				return 0
			}
			L.Push(module.ToLua(L, caps))
			return 1
		},
		"get_host_health_data": func(L *lua.LState, c *Recorded, ctx context.Context) int {
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
		"get_all_licenses": func(L *lua.LState, c *Recorded, ctx context.Context) int {
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
		"activate_license": none("activate_license", func(L *lua.LState, c *Recorded, ctx context.Context) error {
			return c.ActivateLicense(ctx, L.CheckString(2))
		}),
	}
}

// withConfigDefaults returns info with [ilo] client_timeout and client_port
// (validated at config load) filled in where driver_info sets neither name,
// as Ironic uses them as the defaults of driver_info's.
func withConfigDefaults(info map[string]any, c module.Config) map[string]any {
	if c == nil {
		return info
	}
	out, copied := info, false
	for _, k := range [][2]string{{"client_timeout", "timeout"}, {"client_port", "port"}} {
		if _, set := info[k[0]]; set {
			continue
		}
		if _, set := info[k[1]]; set {
			continue
		}
		v, ok := c.Get("ilo", k[0])
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if !copied {
			copied = true
			out = make(map[string]any, len(info)+2)
			for kk, vv := range info {
				out[kk] = vv
			}
		}
		out[k[0]] = strings.TrimSpace(v)
	}
	return out
}

// resetSettle reads [ilo] reset_ilo_settle (seconds; unset: the default).
func resetSettle(c module.Config) time.Duration {
	v, ok := c.Get("ilo", "reset_ilo_settle")
	if !ok || v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}
