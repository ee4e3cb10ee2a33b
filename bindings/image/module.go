package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the Lua module `image`: image.floppy, image.iso and
// image.inspect. Create it once per process with NewModule. Every path a
// script gives goes through the run's sandbox (module.Run.Paths):
// sources must be readable, outputs new files in writable directories;
// relative paths are relative to the run's work directory.
type Module struct{}

// NewModule returns the `image` module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "image" }

// Open implements module.Module.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	b := &binding{m: m, r: r}
	t := L.NewTable()
	t.RawSetString("floppy", L.NewFunction(b.floppy))
	t.RawSetString("iso", L.NewFunction(b.iso))
	t.RawSetString("inspect", L.NewFunction(b.inspect))
	return t
}

type binding struct {
	m *Module
	r module.Run
}

// readPath checks that the script may read p and returns it resolved.
func (b *binding) readPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return b.r.Paths().Read(p)
}

// createPath checks that the script may create p and returns it resolved.
func (b *binding) createPath(p string) (string, error) {
	return b.r.Paths().Create(p)
}

// raise raises err with a code derived from it.
func raise(L *lua.LState, op string, err error) {
	code := module.CodeOf(err)
	switch {
	case errors.Is(err, ErrInvalid):
		code = module.CodeInvalid
	case errors.Is(err, fs.ErrNotExist):
		code = module.CodeNotFound
	}
	var me *module.Error
	if errors.As(err, &me) {
		module.Raise(L, op, err)
	}
	module.Raise(L, op, &module.Error{Code: code, Operation: op, Message: err.Error(), Err: err})
}

func checkPath(L *lua.LState, n int, op, what string) string {
	v, ok := L.Get(n).(lua.LString)
	if !ok || v == "" {
		L.Error(module.ErrorValue(L, module.CodeInvalid, op,
			fmt.Sprintf("argument #%d (%s) must be a non-empty path string, got %s", n, what, L.Get(n).Type())), 1)
	}
	return string(v)
}

func optString(L *lua.LState, t *lua.LTable, key, op string) string {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	default:
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("opts.%s must be a string, got %s", key, v.Type())), 1)
	}
	return ""
}

func optBool(L *lua.LState, t *lua.LTable, key, op string) bool {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return false
	case lua.LBool:
		return bool(v)
	default:
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("opts.%s must be a boolean, got %s", key, v.Type())), 1)
	}
	return false
}

// optFiles reads opts.files ({name = source path}) resolving sources.
func (b *binding) optFiles(L *lua.LState, t *lua.LTable, op string) map[string]string {
	v := t.RawGetString("files")
	if v == lua.LNil {
		return nil
	}
	ft, ok := v.(*lua.LTable)
	if !ok {
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("opts.files must be a table {name = path}, got %s", v.Type())), 1)
	}
	out := map[string]string{}
	var bad string
	ft.ForEach(func(k, val lua.LValue) {
		ks, ok1 := k.(lua.LString)
		vs, ok2 := val.(lua.LString)
		if !ok1 || !ok2 {
			bad = fmt.Sprintf("opts.files must map names to path strings, got %s = %s", k.Type(), val.Type())
			return
		}
		out[string(ks)] = string(vs)
	})
	if bad != "" {
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, bad), 1)
	}
	for k, src := range out {
		p, err := b.readPath(src)
		if err != nil {
			raise(L, op, err)
		}
		out[k] = p
	}
	return out
}

// paramMap converts a Lua table of parameters to strings: strings as they
// are, integral numbers without exponent (1000000, not 1e+06), other numbers
// with %g, booleans as true/false. Anything else is reported in bad.
func paramMap(t *lua.LTable) (out map[string]string, bad string) {
	out = map[string]string{}
	t.ForEach(func(k, v lua.LValue) {
		ks, ok := k.(lua.LString)
		if !ok {
			bad = fmt.Sprintf("params keys must be strings, got %s", k.Type())
			return
		}
		switch x := v.(type) {
		case lua.LString:
			out[string(ks)] = string(x)
		case lua.LNumber:
			f := float64(x)
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				out[string(ks)] = strconv.FormatInt(int64(f), 10)
			} else {
				out[string(ks)] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		case lua.LBool:
			out[string(ks)] = strconv.FormatBool(bool(x))
		default:
			bad = fmt.Sprintf("params.%s must be a string, number or boolean, got %s", ks, v.Type())
		}
	})
	return out, bad
}

// floppy implements image.floppy(path, params, {size=, label=, files=}) -> path.
func (b *binding) floppy(L *lua.LState) int {
	const op = "image.floppy"
	path := checkPath(L, 1, op, "path")
	var params map[string]string
	switch v := L.Get(2).(type) {
	case *lua.LTable:
		var bad string
		params, bad = paramMap(v)
		if bad != "" {
			L.Error(module.ErrorValue(L, module.CodeInvalid, op, bad), 1)
		}
	case *lua.LNilType:
		params = map[string]string{}
	default:
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("argument #2 (params) must be a table, got %s", v.Type())), 1)
	}
	opts := module.OptTable(L, 3, op)
	fo := FloppyOptions{Label: optString(L, opts, "label", op), Files: b.optFiles(L, opts, op)}
	switch v := opts.RawGetString("size").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		fo.Size = int64(v)
	default:
		L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("opts.size must be a number of bytes, got %s", v.Type())), 1)
	}
	path, err := b.createPath(path)
	if err != nil {
		raise(L, op, err)
	}
	// parameter values may be secrets (ipa-agent-token): record the keys only
	fields := map[string]any{"path": path, "params": module.SortedKeys(params), "files": module.SortedKeys(fo.Files)}
	err = module.Record(b.r, op, fields, func(ctx context.Context) error {
		return WriteFloppy(ctx, path, params, fo)
	})
	if err != nil {
		raise(L, op, err)
	}
	L.Push(lua.LString(path))
	return 1
}

// iso implements image.iso(path, opts) -> path.
func (b *binding) iso(L *lua.LState) int {
	const op = "image.iso"
	path := checkPath(L, 1, op, "path")
	t, ok := L.Get(2).(*lua.LTable)
	if !ok {
		L.Error(module.ErrorValue(L, module.CodeInvalid, op,
			fmt.Sprintf("argument #2 (opts) must be a table {kernel=, ramdisk=, ...}, got %s", L.Get(2).Type())), 1)
	}
	o := ISOOptions{
		Kernel:    optString(L, t, "kernel", op),
		Ramdisk:   optString(L, t, "ramdisk", op),
		Append:    optString(L, t, "append", op),
		UEFIFrom:  optString(L, t, "uefi_from", op),
		EFILoader: optString(L, t, "efi_loader", op),
		BIOSOnly:  optBool(L, t, "bios_only", op),
		UEFIOnly:  optBool(L, t, "uefi_only", op),
		VolumeID:  optString(L, t, "volume_id", op),
		Files:     b.optFiles(L, t, op),
	}
	var err error
	for _, p := range []*string{&o.Kernel, &o.Ramdisk, &o.UEFIFrom, &o.EFILoader} {
		if *p, err = b.readPath(*p); err != nil {
			raise(L, op, err)
		}
	}
	if path, err = b.createPath(path); err != nil {
		raise(L, op, err)
	}
	mode := "hybrid"
	switch {
	case o.BIOSOnly:
		mode = "bios"
	case o.UEFIOnly:
		mode = "uefi"
	}
	// the command line may carry secrets (ipa-agent-token): not recorded
	fields := map[string]any{"path": path, "kernel": o.Kernel, "ramdisk": o.Ramdisk, "mode": mode,
		"uefi_from": o.UEFIFrom, "efi_loader": o.EFILoader, "files": module.SortedKeys(o.Files)}
	err = module.Record(b.r, op, fields, func(ctx context.Context) error {
		return WriteISO(ctx, path, o)
	})
	if err != nil {
		raise(L, op, err)
	}
	L.Push(lua.LString(path))
	return 1
}

// inspect implements image.inspect(path) -> table.
func (b *binding) inspect(L *lua.LState) int {
	const op = "image.inspect"
	path, err := b.readPath(checkPath(L, 1, op, "path"))
	if err != nil {
		raise(L, op, err)
	}
	var info *Info
	err = module.Record(b.r, op, map[string]any{"path": path}, func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		info, err = Inspect(path)
		return err
	})
	if err != nil {
		raise(L, op, err)
	}
	L.Push(module.ToLua(L, info.luaValue()))
	return 1
}

// luaValue converts info to the JSON-like value image.inspect returns.
func (info *Info) luaValue() map[string]any {
	files := make([]any, 0, len(info.Files))
	for _, f := range info.Files {
		files = append(files, map[string]any{"path": f.Path, "size": f.Size, "dir": f.Dir})
	}
	boot := make([]any, 0, len(info.ElTorito))
	for _, e := range info.ElTorito {
		boot = append(boot, map[string]any{"platform": e.Platform, "bootable": e.Bootable, "emulation": e.Emulation,
			"load_sectors": int64(e.LoadSectors), "lba": int64(e.LBA), "file": e.File})
	}
	out := map[string]any{"path": info.Path, "kind": info.Kind, "size": info.Size, "label": info.Label,
		"files": files, "el_torito": boot}
	if info.Params != nil {
		out["params"] = info.Params
	}
	if info.KernelCmdline != "" {
		out["kernel_cmdline"] = info.KernelCmdline
	}
	return out
}
