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

// Open implements module.Module: require("image") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r})
}

// face is the image module opened for one run.
type face struct {
	m *Module
	r module.Run
}

// api is the Lua face of image.
func api() module.API[*face] {
	return module.API[*face]{
		"floppy":   (*face).floppy,
		"iso":      (*face).iso,
		"boot_iso": (*face).bootISO,
		"inspect":  (*face).inspect,
	}
}

// readPath checks that the script may read p and returns it resolved.
func (f *face) readPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return f.r.Paths().Read(p)
}

// raise raises err with a code derived from it.
func raise(a *module.Args, err error) {
	var me *module.Error
	if errors.As(err, &me) {
		a.Raise(err)
	}
	code := module.CodeOf(err)
	switch {
	case errors.Is(err, ErrInvalid):
		code = module.CodeInvalid
	case errors.Is(err, fs.ErrNotExist):
		code = module.CodeNotFound
	}
	a.Raise(&module.Error{Code: code, Message: err.Error(), Err: err})
}

// optFiles reads opts.files ({name = source path}) resolving sources.
func (f *face) optFiles(a *module.Args, o module.Opts) map[string]string {
	ft := o.Table("files")
	if ft == nil {
		return nil
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
		a.Invalid("%s", bad)
	}
	for k, src := range out {
		p, err := f.readPath(src)
		if err != nil {
			raise(a, err)
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
func (f *face) floppy(a *module.Args) int {
	path := a.NonEmpty(1, "path")
	params, bad := paramMap(a.OptTable(2, "params"))
	if bad != "" {
		a.Invalid("%s", bad)
	}
	opts := a.Opts(3)
	fo := FloppyOptions{Label: opts.String("label", ""), Files: f.optFiles(a, opts), Size: opts.Int("size", 0)}
	path, err := f.r.Paths().Create(path)
	if err != nil {
		raise(a, err)
	}
	// parameter values may be secrets (ipa-agent-token): record the keys only
	fields := map[string]any{"path": path, "params": module.SortedKeys(params), "files": module.SortedKeys(fo.Files)}
	err = module.Record(f.r, a.Op, fields, func(ctx context.Context) error {
		return WriteFloppy(ctx, path, params, fo)
	})
	if err != nil {
		raise(a, err)
	}
	a.L.Push(lua.LString(path))
	return 1
}

// isoOptions reads the ISO options table at argument 2 and resolves the
// path argument 1 for writing.
func (f *face) isoOptions(a *module.Args) (string, module.Opts, ISOOptions) {
	path := a.NonEmpty(1, "path")
	if _, ok := a.L.Get(2).(*lua.LTable); !ok {
		a.Invalid("argument #2 (opts) must be a table {kernel=, ramdisk=, ...}, got %s", a.L.Get(2).Type())
	}
	t := a.Opts(2)
	o := ISOOptions{
		Kernel:    t.String("kernel", ""),
		Ramdisk:   t.String("ramdisk", ""),
		Append:    t.String("append", ""),
		UEFIFrom:  t.String("uefi_from", ""),
		EFILoader: t.String("efi_loader", ""),
		BIOSOnly:  t.Bool("bios_only", false),
		UEFIOnly:  t.Bool("uefi_only", false),
		VolumeID:  t.String("volume_id", ""),
		Files:     f.optFiles(a, t),
	}
	var err error
	for _, p := range []*string{&o.Kernel, &o.Ramdisk, &o.UEFIFrom, &o.EFILoader} {
		if *p, err = f.readPath(*p); err != nil {
			raise(a, err)
		}
	}
	if path, err = f.r.Paths().Create(path); err != nil {
		raise(a, err)
	}
	return path, t, o
}

// isoFields are the recorded fields of an ISO build. The command line
// may carry secrets (ipa-agent-token): it is not recorded.
func isoFields(path string, o ISOOptions) map[string]any {
	mode := "hybrid"
	switch {
	case o.BIOSOnly:
		mode = "bios"
	case o.UEFIOnly:
		mode = "uefi"
	}
	return map[string]any{"path": path, "kernel": o.Kernel, "ramdisk": o.Ramdisk, "mode": mode,
		"uefi_from": o.UEFIFrom, "efi_loader": o.EFILoader, "files": module.SortedKeys(o.Files)}
}

// iso implements image.iso(path, opts) -> path.
func (f *face) iso(a *module.Args) int {
	path, _, o := f.isoOptions(a)
	err := module.Record(f.r, a.Op, isoFields(path, o), func(ctx context.Context) error {
		return WriteISO(ctx, path, o)
	})
	if err != nil {
		raise(a, err)
	}
	a.L.Push(lua.LString(path))
	return 1
}

// bootISO implements image.boot_iso(path, opts) -> path: an instance boot
// ISO (WriteBootISO) whose kernel command line is root=UUID=<opts.root_uuid>
// then opts.append; the other options are image.iso's.
func (f *face) bootISO(a *module.Args) int {
	path, t, o := f.isoOptions(a)
	b := BootISOOptions{ISO: o, RootUUID: t.String("root_uuid", "")}
	if err := checkRootUUID(b.RootUUID); err != nil {
		raise(a, err)
	}
	fields := isoFields(path, o)
	fields["root_uuid"] = b.RootUUID
	err := module.Record(f.r, a.Op, fields, func(ctx context.Context) error {
		return WriteBootISO(ctx, path, b)
	})
	if err != nil {
		raise(a, err)
	}
	a.L.Push(lua.LString(path))
	return 1
}

// inspect implements image.inspect(path) -> table.
func (f *face) inspect(a *module.Args) int {
	path, err := f.readPath(a.NonEmpty(1, "path"))
	if err != nil {
		raise(a, err)
	}
	var info *Info
	err = module.Record(f.r, a.Op, map[string]any{"path": path}, func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		info, err = Inspect(path)
		return err
	})
	if err != nil {
		raise(a, err)
	}
	a.L.Push(module.ToLua(a.L, info.luaValue()))
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
