package pxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the Lua module `pxe`: pxe.prepare, pxe.switch, pxe.clean.
// Create it once per process with NewModule. The kernel and ramdisk a
// script names go through the run's sandbox; the files are written only
// under the configured roots ([pxe] tftp_root, [deploy] http_root, the
// dnsmasq directories), in the run's node's own directory.
type Module struct {
	mu    sync.Mutex
	setup map[string]bool // roots whose shared files Setup has written
}

// NewModule returns the `pxe` module.
func NewModule() *Module { return &Module{setup: map[string]bool{}} }

// Name implements module.Module.
func (m *Module) Name() string { return "pxe" }

// Open implements module.Module: require("pxe") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r})
}

// face is the pxe module opened for one run.
type face struct {
	m *Module
	r module.Run
}

func api() module.API[*face] {
	return module.API[*face]{
		"prepare": (*face).prepare,
		"switch":  (*face).switchTo,
		"clean":   (*face).clean,
	}
}

// config reads the run's PXE configuration.
func (f *face) config(a *module.Args) Config {
	c, err := ConfigFrom(f.r.Config())
	if err != nil {
		a.Raise(&module.Error{Code: module.CodeInvalid, Message: err.Error(), Err: err})
	}
	return c
}

// ensureSetup writes the shared boot loaders once per process and root.
func (f *face) ensureSetup(c Config) error {
	key := c.TFTPRoot + "\x00" + c.HTTPRoot + fmt.Sprint(c.IPXE)
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.m.setup[key] {
		return nil
	}
	missing, err := c.Setup()
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		f.r.Log(slog.LevelWarn, "pxe: boot loaders not installed (install pxelinux, syslinux-common, grub-efi-amd64-signed, shim-signed, ipxe)", map[string]any{"missing": strings.Join(missing, " ")})
	}
	f.m.setup[key] = true
	return nil
}

// strings reads opts[key] as a list of strings.
func optStrings(a *module.Args, o module.Opts, key string) []string {
	t := o.Table(key)
	if t == nil {
		return nil
	}
	var out []string
	bad := false
	t.ForEach(func(_, v lua.LValue) {
		s, ok := v.(lua.LString)
		if !ok {
			bad = true
			return
		}
		out = append(out, string(s))
	})
	if bad {
		a.Invalid("opts.%s must be a list of strings", key)
	}
	return out
}

// optParams reads opts.params: a string, or a table of key = value (sorted).
func optParams(a *module.Args, o module.Opts) string {
	switch v := o.Get("params").(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	case *lua.LTable:
		var kv []string
		bad := false
		v.ForEach(func(k, val lua.LValue) {
			ks, ok := k.(lua.LString)
			if !ok || (val.Type() != lua.LTString && val.Type() != lua.LTNumber && val.Type() != lua.LTBool) {
				bad = true
				return
			}
			kv = append(kv, string(ks)+"="+val.String())
		})
		if bad {
			a.Invalid("opts.params must map names to strings, numbers or booleans")
		}
		sort.Strings(kv)
		return strings.Join(kv, " ")
	default:
		a.Invalid("opts.params must be a string or a table, got %s", v.Type())
	}
	return ""
}

// codeOf maps a Go error of this package to a module error.
func codeOf(err error) error {
	var me *module.Error
	if errors.As(err, &me) {
		return err
	}
	code := module.CodeOf(err)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		code = module.CodeNotFound
	case errors.Is(err, ErrInvalid):
		code = module.CodeInvalid
	}
	return &module.Error{Code: code, Message: err.Error(), Err: err}
}

// prepare: pxe.prepare(node?, opts) writes the node's PXE files.
func (f *face) prepare(a *module.Args) int {
	node := a.Node(f.r, 1)
	o := a.Opts(2)
	b := Boot{
		Node: node, Mode: o.String("boot_mode", "bios"), MACs: optStrings(a, o, "macs"),
		Params: optParams(a, o),
	}
	paths := map[string]*string{"kernel": &b.Kernel, "ramdisk": &b.Ramdisk, "instance_kernel": &b.InstanceKernel, "instance_ramdisk": &b.InstanceRamdisk}
	for _, k := range []string{"kernel", "ramdisk", "instance_kernel", "instance_ramdisk"} {
		v := o.String(k, "")
		if v == "" {
			continue
		}
		p, err := f.r.Paths().Read(v)
		if err != nil {
			a.Raise(err)
		}
		*paths[k] = p
	}
	c := f.config(a)
	var p *Prepared
	a.Do(f.r, map[string]any{"node": node, "boot_mode": b.Mode, "macs": strings.Join(b.MACs, " "), "ipxe": c.IPXE, "root": c.Root()}, func(ctx context.Context) error {
		if err := f.ensureSetup(c); err != nil {
			return codeOf(err)
		}
		var err error
		if p, err = c.Prepare(ctx, b); err != nil {
			return codeOf(err)
		}
		return nil
	})
	t := a.L.NewTable()
	t.RawSetString("dir", lua.LString(p.Dir))
	t.RawSetString("config", lua.LString(p.Config))
	links := a.L.NewTable()
	for _, l := range p.Links {
		links.Append(lua.LString(l))
	}
	t.RawSetString("links", links)
	t.RawSetString("dhcp_hosts", lua.LString(p.Hosts))
	t.RawSetString("dhcp_opts", lua.LString(p.Opts))
	t.RawSetString("bootfile", lua.LString(p.Bootfile))
	a.L.Push(t)
	return 1
}

// switchTo: pxe.switch(node?, to, opts?) makes the config boot "local"
// (removed), "boot_partition" (opts.root_uuid) or "boot_whole_disk"
// (opts.disk_identifier).
func (f *face) switchTo(a *module.Args) int {
	node := a.Node(f.r, 1)
	to := a.NonEmpty(2, "to")
	o := a.Opts(3)
	value := ""
	switch to {
	case LabelBootPartition:
		value = o.String("root_uuid", "")
	case LabelBootWholeDisk:
		value = o.String("disk_identifier", "")
	case "local", LabelDeploy:
	default:
		a.Invalid("argument #2 (to) must be \"local\", \"boot_partition\", \"boot_whole_disk\" or \"deploy\", got %q", to)
	}
	c := f.config(a)
	a.Do(f.r, map[string]any{"node": node, "to": to}, func(ctx context.Context) error {
		if err := c.Switch(node, to, value); err != nil {
			return codeOf(err)
		}
		return nil
	})
	return 0
}

// clean: pxe.clean(node?) removes every PXE file of the node (idempotent).
func (f *face) clean(a *module.Args) int {
	node := a.Node(f.r, 1)
	c := f.config(a)
	a.Do(f.r, map[string]any{"node": node}, func(ctx context.Context) error {
		if err := c.Clean(node); err != nil {
			return codeOf(err)
		}
		return nil
	})
	return 0
}
