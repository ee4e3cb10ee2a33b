package ipmi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the `ipmi` Lua module: require("ipmi").connect(node).
type Module struct{}

var _ module.Module = (*Module)(nil)

// NewModule returns the ipmi module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "ipmi" }

// ConfigRetryTimeout is the [ipmi] option bounding a call with its retries
// (Ironic's [ipmi] retry_timeout, seconds) where driver_info has no
// ipmi_retry_timeout.
const ConfigRetryTimeout = "retry_timeout"

// Recorded is a client whose every call is a recorded run event
// "ipmi.<operation>".
type Recorded struct {
	c      *Client
	run    module.Run
	fields map[string]any
}

// Connect builds a recorded client for run from driver_info (or a plain
// table's fields). The password becomes a run secret.
func (m *Module) Connect(run module.Run, info map[string]any, nodeName string) (*Recorded, error) {
	if _, set := info["ipmi_retry_timeout"]; !set && run.Config() != nil {
		if v, ok := run.Config().Get("ipmi", ConfigRetryTimeout); ok && strings.TrimSpace(v) != "" {
			info = withKey(info, "ipmi_retry_timeout", strings.TrimSpace(v))
		}
	}
	o, err := ParseDriverInfo(info)
	if o.Password != "" {
		run.AddSecret(o.Password)
	}
	if err != nil {
		return nil, module.Errorf(module.CodeInvalid, "ipmi.connect", "%s", err.Error())
	}
	c, err := New(o)
	if err != nil {
		return nil, toModuleError(err)
	}
	fields := map[string]any{"address": o.Address()}
	if nodeName != "" {
		fields["node"] = nodeName
	}
	return &Recorded{c: c, run: run, fields: fields}, nil
}

// Client returns the unrecorded client.
func (r *Recorded) Client() *Client { return r.c }

// call records fn as "ipmi.<op>" with extra fields.
func (r *Recorded) call(op string, extra map[string]any, fn func(ctx context.Context) error) error {
	f := make(map[string]any, len(r.fields)+len(extra))
	for k, v := range r.fields {
		f[k] = v
	}
	for k, v := range extra {
		f[k] = v
	}
	return module.Record(r.run, "ipmi."+op, f, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return toModuleError(err)
		}
		return nil
	})
}

// toModuleError maps an *Error to the module's error codes.
func toModuleError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	code := module.CodeIPMIError
	switch e.Kind {
	case KindLoginFailed:
		code = module.CodeLoginFailed
	case KindTimeout:
		code = module.CodeTimeout
	case KindInvalid:
		code = module.CodeInvalid
	case KindCancelled:
		code = module.CodeCancelled
	case KindUnsupported:
		code = module.CodeNotSupported
	}
	return &module.Error{Code: code, Operation: "ipmi." + e.Op, Message: e.Error(), Err: e}
}

const clientType = "ipmi.client"

// Open implements module.Module: require("ipmi") gives {connect = fn}.
func (m *Module) Open(L *lua.LState, run module.Run) lua.LValue {
	mt := L.NewTypeMetatable(clientType)
	methods := L.NewTable()
	for name, fn := range luaMethods() {
		fn := fn
		methods.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			ud := L.CheckUserData(1)
			c, ok := ud.Value.(*Recorded)
			if !ok {
				L.ArgError(1, "ipmi client expected (call methods with a colon: bmc:method())")
				return 0
			}
			return fn(L, c)
		}))
	}
	mt.RawSetString("__index", methods)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		if c, ok := L.CheckUserData(1).Value.(*Recorded); ok {
			L.Push(lua.LString(fmt.Sprintf("ipmi.client(%v)", c.fields["address"])))
			return 1
		}
		L.Push(lua.LString("ipmi.client"))
		return 1
	}))
	t := L.NewTable()
	t.RawSetString("connect", L.NewFunction(func(L *lua.LState) int {
		info, name, err := connectArgs(L, run)
		if err != nil {
			module.Raise(L, "ipmi.connect", err)
			return 0
		}
		// connect(node, {retry_timeout = seconds}): a caller that can do
		// without IPMI (inspection) caps its wait; a shorter
		// ipmi_retry_timeout in driver_info still wins.
		if opts, ok := L.Get(2).(*lua.LTable); ok {
			if v, ok := opts.RawGetString("retry_timeout").(lua.LNumber); ok && v > 0 {
				cur, err := strconv.ParseFloat(asString(info["ipmi_retry_timeout"]), 64)
				if err != nil || cur <= 0 || float64(v) < cur {
					info = withKey(info, "ipmi_retry_timeout", int(math.Ceil(float64(v))))
				}
			}
		}
		c, err := m.Connect(run, info, name)
		if err != nil {
			module.Raise(L, "ipmi.connect", err)
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

// connectArgs reads connect's argument: nothing (the run's node), the run's
// node as a table, UUID or name, or a plain table of credentials.
func connectArgs(L *lua.LState, run module.Run) (map[string]any, string, error) {
	v := L.Get(1)
	if t, ok := v.(*lua.LTable); ok {
		_, isNode := t.RawGetString("driver_info").(*lua.LTable)
		uuid := lua.LVAsString(t.RawGetString("uuid"))
		name := lua.LVAsString(t.RawGetString("name"))
		if !isNode && uuid == "" && name == "" {
			out := map[string]any{}
			t.ForEach(func(k, v lua.LValue) {
				if ks, ok := k.(lua.LString); ok {
					out[string(ks)] = module.FromLua(v)
				}
			})
			return out, "", nil
		}
	}
	if v == lua.LNil && run.Node() == nil {
		return nil, "", module.Errorf(module.CodeInvalid, "ipmi.connect", "this run has no node: run it with --node, or pass {address=..., username=..., password=...}")
	}
	module.NodeArg(L, run, 1, "ipmi.connect") // raises forbidden for any node but the run's
	n := run.Node()
	return n.DriverInfo(), n.Name(), nil
}

// luaMethod is the Lua face of one operation (the client is argument 1).
type luaMethod func(L *lua.LState, c *Recorded) int

// toTable converts a struct (through its JSON form) to a Lua value.
func toTable(L *lua.LState, v any) lua.LValue {
	b, err := json.Marshal(v)
	if err != nil {
		return lua.LNil
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return lua.LNil
	}
	return module.ToLua(L, x)
}

func luaMethods() map[string]luaMethod {
	// value runs a call returning a value and pushes it as a table/string.
	value := func(op string, fn func(ctx context.Context, c *Client) (any, error)) luaMethod {
		return func(L *lua.LState, r *Recorded) int {
			var out any
			err := r.call(op, nil, func(ctx context.Context) error {
				v, err := fn(ctx, r.c)
				out = v
				return err
			})
			if err != nil {
				module.Raise(L, "ipmi."+op, err)
				return 0
			}
			if s, ok := out.(string); ok {
				if s == "" {
					L.Push(lua.LNil)
				} else {
					L.Push(lua.LString(s))
				}
				return 1
			}
			L.Push(toTable(L, out))
			return 1
		}
	}
	power := func(action string) luaMethod {
		return func(L *lua.LState, r *Recorded) int {
			if err := r.call("power_"+action, nil, func(ctx context.Context) error { return r.c.Power(ctx, action) }); err != nil {
				module.Raise(L, "ipmi.power_"+action, err)
			}
			return 0
		}
	}
	return map[string]luaMethod{
		"power_status": value("power_status", func(ctx context.Context, c *Client) (any, error) { return c.PowerStatus(ctx) }),
		"power_on":     power("on"),
		"power_off":    power("off"),
		"power_cycle":  power("cycle"),
		"power_reset":  power("reset"),
		"power_soft":   power("soft"),
		"power": func(L *lua.LState, r *Recorded) int {
			action := strings.ToLower(L.CheckString(2))
			if err := r.call("power_"+action, nil, func(ctx context.Context) error { return r.c.Power(ctx, action) }); err != nil {
				module.Raise(L, "ipmi.power", err)
			}
			return 0
		},
		"chassis_status": value("chassis_status", func(ctx context.Context, c *Client) (any, error) { return c.ChassisStatus(ctx) }),
		"get_boot_device": value("get_boot_device", func(ctx context.Context, c *Client) (any, error) {
			return c.GetBootDevice(ctx)
		}),
		"set_boot_device": func(L *lua.LState, r *Recorded) int {
			b := BootDevice{Device: strings.ToLower(L.CheckString(2))}
			if opts := (&module.Args{L: L, Op: "ipmi.set_boot_device"}).OptTable(3, "opts"); opts != nil {
				b.Persistent = lua.LVAsBool(opts.RawGetString("persistent"))
				b.EFI = lua.LVAsBool(opts.RawGetString("efi"))
			}
			extra := map[string]any{"device": b.Device, "persistent": b.Persistent, "efi": b.EFI}
			if err := r.call("set_boot_device", extra, func(ctx context.Context) error { return r.c.SetBootDevice(ctx, b) }); err != nil {
				module.Raise(L, "ipmi.set_boot_device", err)
			}
			return 0
		},
		"sensors":  value("sensors", func(ctx context.Context, c *Client) (any, error) { return orEmpty(c.Sensors(ctx)) }),
		"fru":      value("fru", func(ctx context.Context, c *Client) (any, error) { return orEmpty(c.FRUs(ctx)) }),
		"sel":      value("sel", func(ctx context.Context, c *Client) (any, error) { return selOut(c.SEL(ctx)) }),
		"bmc_info": value("bmc_info", func(ctx context.Context, c *Client) (any, error) { return c.BMCInfo(ctx) }),
		"nic_capacity": value("nic_capacity", func(ctx context.Context, c *Client) (any, error) {
			frus, err := c.FRUs(ctx)
			if err != nil {
				return "", err
			}
			return NICCapacity(frus), nil
		}),
		"clear_sel": func(L *lua.LState, r *Recorded) int {
			if err := r.call("clear_sel", nil, func(ctx context.Context) error { return r.c.ClearSEL(ctx) }); err != nil {
				module.Raise(L, "ipmi.clear_sel", err)
			}
			return 0
		},
	}
}

func orEmpty[T any](v []T, err error) (any, error) {
	if v == nil {
		v = []T{}
	}
	return v, err
}

// selOut renders SEL entries with times as RFC 3339 strings and data as hex.
func selOut(es []SELEntry, err error) (any, error) {
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		out = append(out, map[string]any{
			"id": int(e.ID), "record_type": int(e.RecordType), "time": e.Time.Format(time.RFC3339),
			"sensor_type": e.SensorType, "sensor_number": int(e.SensorNum), "event_type": int(e.EventType),
			"asserted": e.Asserted, "event": e.Event,
			"data":   fmt.Sprintf("%02x%02x%02x", e.Data[0], e.Data[1], e.Data[2]),
			"id_hex": "0x" + strconv.FormatUint(uint64(e.ID), 16),
		})
	}
	return out, err
}
