package runtime

import (
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/inventory"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/store"
)

// newState builds a fresh LState for r: safe libraries only, require
// resolving site then bundled scripts, bindings preloaded, globals set.
func (e *Engine) newState(r *Run) *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 200, RegistrySize: 256 * 20, RegistryMaxSize: 256 * 1024})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}, {lua.OsLibName, lua.OpenOs},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	// The run's limits: memory, coroutines, bounded string builders and
	// interruptible pattern functions (limits.go, limits_lib.go).
	r.guard = e.newGuard(r.ctx, L)
	r.guard.bound(L)

	g := L.G.Global
	// No file or process access: dofile/loadfile and the os functions that
	// touch the host are removed.
	g.RawSetString("dofile", lua.LNil)
	g.RawSetString("loadfile", lua.LNil)
	osOld := L.GetGlobal("os").(*lua.LTable)
	osNew := L.NewTable()
	for _, f := range []string{"time", "clock", "date", "difftime"} {
		osNew.RawSetString(f, osOld.RawGetString(f))
	}
	L.SetGlobal("os", osNew)
	L.SetGlobal("print", L.NewFunction(r.print))

	pkg := L.GetGlobal("package").(*lua.LTable)
	pkg.RawSetString("path", lua.LString(""))
	pkg.RawSetString("cpath", lua.LString(""))
	// require reads the registry's _LOADERS (the same table as
	// package.loaders): keep the preload searcher, replace the file one.
	loaders := pkg.RawGetString("loaders").(*lua.LTable)
	loaders.RawSetInt(2, L.NewFunction(func(L *lua.LState) int { return e.loadModule(L, r) }))

	for _, m := range e.mods {
		m := m
		L.PreloadModule(m.Name(), func(L *lua.LState) int {
			L.Push(m.Open(L, r))
			return 1
		})
	}

	if r.node != nil {
		L.SetGlobal("node", r.nodeTable(L))
	}
	L.SetGlobal("params", r.paramsTable(L))
	L.SetGlobal("config", r.configTable(L))
	L.SetGlobal("run", r.runTable(L))
	return L
}

// loadModule is the require searcher for Lua modules: site dirs first, then
// the bundled scripts and stdlib.
func (e *Engine) loadModule(L *lua.LState, r *Run) int {
	name := L.CheckString(1)
	sc, err := e.scripts.Find(name)
	if err != nil {
		L.Push(lua.LString("\n\t" + err.Error()))
		return 1
	}
	chunk := sc.Path
	if sc.Origin == "bundled" {
		chunk = sc.Name + ".lua"
	}
	proto, _, err := e.compile(chunk, sc.Source)
	if err != nil {
		L.RaiseError("require %q: %s", name, err.Error())
	}
	r.Event(store.EventLog, "require", map[string]any{"msg": "loaded " + name, "origin": sc.Origin, "path": sc.Path})
	L.Push(L.NewFunctionFromProto(proto))
	return 1
}

// runTable builds the `run` global.
func (r *Run) runTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("id", lua.LNumber(r.id))
	t.RawSetString("script", lua.LString(r.script.Name))
	L.SetFuncs(t, map[string]lua.LGFunction{
		"log": func(L *lua.LState) int {
			lvl, err := logLevel(L.CheckString(1))
			if err != nil {
				L.ArgError(1, err.Error())
			}
			msg := L.ToStringMeta(L.Get(2)).String()
			var fields map[string]any
			if tb, ok := L.Get(3).(*lua.LTable); ok {
				fields, _ = module.FromLua(tb).(map[string]any)
			}
			r.Log(lvl, msg, fields)
			return 0
		},
		"step": r.step,
		"artifact": func(L *lua.LState) int {
			if err := checkArtifact(r, L.CheckString(2)); err != nil {
				module.Raise(L, "run.artifact", err)
			}
			if err := r.Artifact(L.CheckString(1), L.CheckString(2)); err != nil {
				module.Raise(L, "run.artifact", err)
			}
			return 0
		},
		"sleep": r.sleep,
		// run.on_abort(fn|nil): fn(cause) runs when the run is cancelled
		// (signal, `node abort`, timeout), with a fresh context bounded by
		// [lightsout] abort_grace: the playbook's failure path.
		//
		// Clearing it once the run is already cancelled raises the
		// cancellation instead: a binding can see the run's context done
		// a moment before the Lua state's own context is (Go cancels
		// child contexts after closing the parent's), so a script's pcall
		// may catch the cancellation and reach on_abort(nil) with its
		// failure path still owed.
		"on_abort": func(L *lua.LState) int {
			fn := L.OptFunction(1, nil)
			r.mu.Lock()
			ctx := r.ctx
			if fn == nil && r.onAbort != nil && ctx.Err() != nil {
				r.mu.Unlock()
				module.Raise(L, "run.on_abort", ctx.Err())
				return 0
			}
			r.onAbort = fn
			r.mu.Unlock()
			return 0
		},
		"fail": func(L *lua.LState) int {
			L.Error(module.ErrorValue(L, L.CheckString(1), "", L.CheckString(2)), 1)
			return 0
		},
	})
	return t
}

// nodeTable builds the `node` global: fields from the store plus methods
// that persist.
func (r *Run) nodeTable(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	r.fillNode(L, t)
	mt := L.NewTable()
	methods := L.NewTable()
	set := func(op string, apply func(n *store.Node, k string, v any)) lua.LGFunction {
		return func(L *lua.LState) int {
			k := L.CheckString(2)
			if r.eng.redactor.Holds(k) {
				// Values are encrypted at rest when they hold a secret; keys cannot be.
				module.Raise(L, "node:"+op, &module.Error{Code: module.CodeInvalid,
					Message: "the key holds a secret value (a password or a URL credential): use a plain key name"})
			}
			v := module.FromLua(L.Get(3))
			r.mutate(L, t, "node:"+op, func(n *store.Node) error {
				apply(n, k, v)
				return nil
			})
			return 0
		}
	}
	putOrDelete := func(m map[string]any, k string, v any) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	L.SetFuncs(methods, map[string]lua.LGFunction{
		"set_property":      set("set_property", func(n *store.Node, k string, v any) { putOrDelete(n.Properties, k, v) }),
		"set_driver_info":   set("set_driver_info", func(n *store.Node, k string, v any) { putOrDelete(n.DriverInfo, k, v) }),
		"set_instance_info": set("set_instance_info", func(n *store.Node, k string, v any) { putOrDelete(n.InstanceInfo, k, v) }),
		"set_internal":      set("set_internal", func(n *store.Node, k string, v any) { putOrDelete(n.DriverInternalInfo, k, v) }),
		"add_port": func(L *lua.LState) int {
			mac := strings.ToLower(strings.TrimSpace(L.CheckString(2)))
			if err := inventory.ValidateMAC(mac); err != nil {
				module.Raise(L, "node:add_port", &module.Error{Code: module.CodeInvalid, Message: err.Error()})
			}
			var name, state string
			if opts, ok := L.Get(3).(*lua.LTable); ok {
				name, state = lua.LVAsString(opts.RawGetString("name")), lua.LVAsString(opts.RawGetString("state"))
			}
			r.mutate(L, t, "node:add_port", func(n *store.Node) error {
				for i, p := range n.Ports {
					if strings.EqualFold(p.Address, mac) {
						if name != "" {
							n.Ports[i].Name = name
						}
						if state != "" {
							n.Ports[i].State = state
						}
						return nil
					}
				}
				n.Ports = append(n.Ports, store.Port{Address: mac, Name: name, State: state})
				return nil
			})
			return 0
		},
		"transition": func(L *lua.LState) int {
			ev := L.CheckString(2)
			var from string
			r.mutateWith(L, t, "node:transition", func() (*store.Node, error) {
				from = r.node.ProvisionState
				return r.eng.st.TransitionAs(r.ctx, r.id, r.node.UUID, ev)
			})
			r.Event(store.EventState, "provision_state", map[string]any{"event": ev, "from": from, "to": r.node.ProvisionState})
			L.Push(lua.LString(r.node.ProvisionState))
			return 1
		},
		"set_last_error": func(L *lua.LState) int {
			msg := r.eng.redactor.String(L.OptString(2, ""))
			r.mutate(L, t, "node:set_last_error", func(n *store.Node) error { n.LastError = msg; return nil })
			return 0
		},
		"set_power_state": func(L *lua.LState) int {
			s := L.CheckString(2)
			r.mutate(L, t, "node:set_power_state", func(n *store.Node) error { n.PowerState = s; return nil })
			return 0
		},
		"set_maintenance": func(L *lua.LState) int {
			on := L.ToBool(2)
			reason := r.eng.redactor.String(L.OptString(3, ""))
			r.mutate(L, t, "node:set_maintenance", func(n *store.Node) error {
				n.Maintenance, n.MaintenanceReason = on, reason
				if !on {
					n.MaintenanceReason = ""
				}
				return nil
			})
			return 0
		},
		"clear_instance_info": func(L *lua.LState) int {
			r.mutate(L, t, "node:clear_instance_info", func(n *store.Node) error { n.InstanceInfo = map[string]any{}; return nil })
			return 0
		},
		"refresh": func(L *lua.LState) int {
			r.mutateWith(L, t, "node:refresh", func() (*store.Node, error) { return r.eng.st.GetNode(r.ctx, r.node.UUID) })
			return 0
		},
	})
	mt.RawSetString("__index", methods)
	L.SetMetatable(t, mt)
	return t
}

// mutate persists fn on the node and refreshes the Lua table.
func (r *Run) mutate(L *lua.LState, t *lua.LTable, op string, fn func(n *store.Node) error) {
	r.mutateWith(L, t, op, func() (*store.Node, error) { return r.updateNode(fn) })
}

func (r *Run) mutateWith(L *lua.LState, t *lua.LTable, op string, fn func() (*store.Node, error)) {
	if err := r.ctx.Err(); err != nil {
		module.Raise(L, op, err)
	}
	n, err := fn()
	if err != nil {
		module.Raise(L, op, err)
	}
	r.mu.Lock()
	r.node = n
	r.mu.Unlock()
	r.eng.redactor.AddFromMap(n.DriverInfo)
	r.fillNode(L, t)
}

// fillNode (re)sets the data fields of the node table.
func (r *Run) fillNode(L *lua.LState, t *lua.LTable) {
	n := r.node
	t.RawSetString("name", lua.LString(n.Name))
	t.RawSetString("uuid", lua.LString(n.UUID))
	t.RawSetString("driver", lua.LString(n.Driver))
	t.RawSetString("driver_info", module.ToLua(L, n.DriverInfo))
	t.RawSetString("properties", module.ToLua(L, n.Properties))
	caps, _ := inventory.ParseCapabilities(n.Properties["capabilities"])
	t.RawSetString("capabilities", module.ToLua(L, caps))
	t.RawSetString("instance_info", module.ToLua(L, n.InstanceInfo))
	t.RawSetString("driver_internal_info", module.ToLua(L, n.DriverInternalInfo))
	t.RawSetString("provision_state", lua.LString(n.ProvisionState))
	t.RawSetString("power_state", lua.LString(n.PowerState))
	t.RawSetString("last_error", lua.LString(n.LastError))
	t.RawSetString("maintenance", lua.LBool(n.Maintenance))
	ports := L.CreateTable(len(n.Ports), 0)
	for _, p := range n.Ports {
		pt := L.NewTable()
		pt.RawSetString("address", lua.LString(p.Address))
		ports.Append(pt)
	}
	t.RawSetString("ports", ports)
}
