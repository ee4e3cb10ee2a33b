package ipmi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// luaMethod is the Lua face of one operation: it reads the arguments
// through a (the client is argument 1), calls c and pushes the result.
type luaMethod = module.Func[*Recorded]

// luaMethods is the Lua face of every operation: the methods of an
// ipmi.client (b:power_status()). Each call is recorded once as
// "ipmi.<operation>" and bounded by the run's context; its error is raised
// as the method the script called ("ipmi.<method>").
func luaMethods() module.API[*Recorded] {
	// value runs a call returning a value and pushes it: a string (nil when
	// empty) or a table.
	value := func(op string, fn func(ctx context.Context, c *Client) (any, error)) luaMethod {
		return func(r *Recorded, a *module.Args) int {
			var out any
			a.Check(r.call(op, nil, func(ctx context.Context) error {
				v, err := fn(ctx, r.c)
				out = v
				return err
			}))
			if s, ok := out.(string); ok {
				if s == "" {
					a.L.Push(lua.LNil)
				} else {
					a.L.Push(lua.LString(s))
				}
				return 1
			}
			a.L.Push(toTable(a.L, out))
			return 1
		}
	}
	// none runs a call with no result.
	none := func(op string, fn func(ctx context.Context, c *Client) error) luaMethod {
		return func(r *Recorded, a *module.Args) int {
			a.Check(r.call(op, nil, func(ctx context.Context) error { return fn(ctx, r.c) }))
			return 0
		}
	}
	power := func(action string) luaMethod {
		return none("power_"+action, func(ctx context.Context, c *Client) error { return c.Power(ctx, action) })
	}
	return module.API[*Recorded]{
		"power_status": value("power_status", func(ctx context.Context, c *Client) (any, error) { return c.PowerStatus(ctx) }),
		"power_on":     power("on"),
		"power_off":    power("off"),
		"power_cycle":  power("cycle"),
		"power_reset":  power("reset"),
		"power_soft":   power("soft"),
		// b:power(action): recorded as "ipmi.power_<action>".
		"power": func(r *Recorded, a *module.Args) int {
			action := strings.ToLower(a.String(2, "action"))
			if _, ok := powerActions[action]; !ok {
				a.Invalid("argument #1 (action) must be on, off, cycle, reset, soft or diag, got %q", action)
			}
			return power(action)(r, a)
		},
		"chassis_status": value("chassis_status", func(ctx context.Context, c *Client) (any, error) { return c.ChassisStatus(ctx) }),
		"get_boot_device": value("get_boot_device", func(ctx context.Context, c *Client) (any, error) {
			return c.GetBootDevice(ctx)
		}),
		// b:set_boot_device(device[, {persistent = bool, efi = bool}])
		"set_boot_device": func(r *Recorded, a *module.Args) int {
			b := BootDevice{Device: strings.ToLower(a.String(2, "device"))}
			if _, ok := bootDevices[b.Device]; !ok {
				a.Invalid("argument #1 (device) must be pxe, disk, cdrom, bios, safe, diag, floppy or none, got %q", b.Device)
			}
			opts := a.Opts(3)
			b.Persistent = opts.Bool("persistent", false)
			b.EFI = opts.Bool("efi", false)
			extra := map[string]any{"device": b.Device, "persistent": b.Persistent, "efi": b.EFI}
			a.Check(r.call("set_boot_device", extra, func(ctx context.Context) error { return r.c.SetBootDevice(ctx, b) }))
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
		"clear_sel": none("clear_sel", func(ctx context.Context, c *Client) error { return c.ClearSEL(ctx) }),
	}
}

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
