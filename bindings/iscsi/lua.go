package iscsi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"os"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the `iscsi` Lua module: the conductor side of the iscsi_ilo
// deploy (write an image to the ramdisk's iSCSI target).
type Module struct {
	// QemuImg overrides the qemu-img binary ("" = on PATH).
	QemuImg string
}

// NewModule returns the iscsi module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "iscsi" }

// Open implements module.Module: require("iscsi") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r})
}

type face struct {
	m *Module
	r module.Run
}

func api() module.API[*face] {
	return module.API[*face]{
		"write":                 (*face).write,
		"write_partition_image": (*face).writePartitionImage,
		"image_info":            (*face).imageInfo,
		"iqn":                   (*face).iqn,
		"chap_secret":           (*face).chapSecret,
	}
}

// IQNPrefix is the IQN prefix Ironic gives deploy targets.
const IQNPrefix = "iqn.2008-10.org.openstack:"

// toModule maps a write error to the module's error codes.
func toModule(err error) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	code := module.CodeError
	switch e.Kind {
	case KindAuth:
		code = module.CodeLoginFailed
	case KindNotFound:
		code = module.CodeNotFound
	case KindTooLarge, KindInvalid, KindImage:
		code = module.CodeInvalid
	case KindLost, KindUnreachable:
		code = module.CodeTransient
	case KindCancelled:
		if e.Err == context.DeadlineExceeded {
			code = module.CodeTimeout
		} else {
			code = module.CodeCancelled
		}
	}
	return &module.Error{Code: code, Message: e.Msg, Err: e}
}

// write implements iscsi.write(image, {portal=, iqn=, lun=1, chap_user=,
// chap_secret=, format=, checksum=, stall=}) -> {format=, image_size=, disk_size=, seconds=}.
func (f *face) write(a *module.Args) int {
	img, _, t, opts := f.writeArgs(a)
	var res Result
	a.Do(f.r, map[string]any{"image": img, "target": t.String(), "chap": t.CHAPUser != ""}, func(ctx context.Context) error {
		var err error
		res, err = Write(ctx, t, img, opts)
		if err != nil {
			return toModule(err)
		}
		f.r.Log(slog.LevelInfo, "image written over iSCSI", map[string]any{
			"target": t.String(), "format": res.Format, "image_mb": MB(res.ImageSize), "disk_mb": MB(res.DiskSize),
			"seconds": res.Duration.Seconds()})
		return nil
	})
	out := a.L.NewTable()
	out.RawSetString("format", lua.LString(res.Format))
	out.RawSetString("image_size", lua.LNumber(res.ImageSize))
	out.RawSetString("disk_size", lua.LNumber(res.DiskSize))
	out.RawSetString("seconds", lua.LNumber(res.Duration.Seconds()))
	a.L.Push(out)
	return 1
}

// writeArgs reads the arguments iscsi.write and
// iscsi.write_partition_image share: the image (argument 1, a readable
// path), the options table (argument 2), the target in it and the write
// options (format, checksum, stall; progress events every 10 %).
func (f *face) writeArgs(a *module.Args) (string, module.Opts, Target, Options) {
	img, err := f.r.Paths().Read(a.NonEmpty(1, "image"))
	a.Check(err)
	o := a.Opts(2)
	t := f.target(a, o)
	work, err := f.r.Paths().WorkDir()
	a.Check(err)
	return img, o, t, Options{WorkDir: work, Format: o.String("format", ""), QemuImg: f.m.QemuImg, Stall: o.Duration("stall", 0),
		Checksum: o.String("checksum", ""), Progress: f.progress(a, t)}
}

// target reads the target fields of a write's options.
func (f *face) target(a *module.Args, o module.Opts) Target {
	t := Target{
		Portal:     o.String("portal", ""),
		IQN:        o.String("iqn", ""),
		LUN:        int(o.Int("lun", 1)),
		CHAPUser:   o.String("chap_user", ""),
		CHAPSecret: o.String("chap_secret", ""),
	}
	f.r.AddSecret(t.CHAPSecret)
	if t.Portal == "" || t.IQN == "" {
		a.Invalid("opts.portal (host:port) and opts.iqn are required")
	}
	return t
}

// progress records a progress event every 10 %.
func (f *face) progress(a *module.Args, t Target) func(float64) {
	next := 10.0
	return func(p float64) {
		if p >= next || p == 100 {
			f.r.Event("progress", a.Op, map[string]any{"percent": math.Floor(p), "target": t.String()})
			for next <= p {
				next += 10
			}
		}
	}
}

// writePartitionImage implements iscsi.write_partition_image(image, opts):
// opts as iscsi.write plus boot_mode, boot_option, disk_label, root_mb,
// swap_mb, ephemeral_mb, ephemeral_format, configdrive (content) or
// configdrive_file (a path holding it). Returns the table described in
// stdlib/types/iscsi.lua (iscsi.PartitionResult).
func (f *face) writePartitionImage(a *module.Args) int {
	img, o, t, opts := f.writeArgs(a)
	po := PartitionOptions{
		Options: opts,
		Partitioning: Partitioning{BootMode: o.String("boot_mode", ""), BootOption: o.String("boot_option", ""),
			DiskLabel: o.String("disk_label", ""), RootMB: o.Int("root_mb", 0), SwapMB: o.Int("swap_mb", 0),
			EphemeralMB: o.Int("ephemeral_mb", 0)},
		EphemeralFormat: o.String("ephemeral_format", ""),
	}
	if cd := o.String("configdrive", ""); cd != "" {
		po.ConfigDrive = []byte(cd)
	} else if file := o.String("configdrive_file", ""); file != "" {
		p, err := f.r.Paths().Read(file)
		a.Check(err)
		b, err := os.ReadFile(p)
		if err != nil {
			a.Raise(&module.Error{Code: module.CodeInvalid, Message: "reading the config drive " + file + ": " + err.Error(), Err: err})
		}
		po.ConfigDrive = b
	}
	var res PartitionResult
	a.Do(f.r, map[string]any{"image": img, "target": t.String(), "chap": t.CHAPUser != "", "root_mb": po.RootMB,
		"swap_mb": po.SwapMB, "ephemeral_mb": po.EphemeralMB, "configdrive": po.ConfigDrive != nil}, func(ctx context.Context) error {
		var err error
		res, err = WritePartitionImage(ctx, t, img, po)
		if err != nil {
			return toModule(err)
		}
		f.r.Log(slog.LevelInfo, "partition image written over iSCSI", map[string]any{
			"target": t.String(), "format": res.Format, "layout": res.Layout.String(), "root_uuid": res.RootFS.UUID,
			"root_partuuid": res.RootPartUUID(), "image_mb": MB(res.ImageSize), "disk_mb": MB(res.DiskSize),
			"seconds": res.Duration.Seconds()})
		return nil
	})
	a.L.Push(partitionTable(a.L, res))
	return 1
}

// partitionTable is the Lua face of a PartitionResult.
func partitionTable(L *lua.LState, res PartitionResult) *lua.LTable {
	str := func(t *lua.LTable, k, v string) {
		if v != "" {
			t.RawSetString(k, lua.LString(v))
		}
	}
	out := L.NewTable()
	str(out, "root_uuid", res.RootFS.UUID)
	str(out, "root_partuuid", res.RootPartUUID())
	str(out, "root_fs_type", res.RootFS.Type)
	if esp, ok := res.Layout.Find(RoleESP); ok {
		str(out, "efi_system_partition_uuid", esp.PartUUID)
	}
	str(out, "disk_identifier", res.DiskID)
	str(out, "disk_label", res.Layout.DiskLabel)
	str(out, "boot_mode", res.Layout.BootMode)
	str(out, "boot_option", res.Layout.BootOption)
	str(out, "format", res.Format)
	out.RawSetString("image_size", lua.LNumber(res.ImageSize))
	out.RawSetString("disk_size", lua.LNumber(res.DiskSize))
	out.RawSetString("seconds", lua.LNumber(res.Duration.Seconds()))
	parts := L.NewTable()
	for _, p := range res.Layout.Partitions {
		pt := L.NewTable()
		pt.RawSetString("number", lua.LNumber(p.Number))
		pt.RawSetString("start", lua.LNumber(p.Start))
		pt.RawSetString("size", lua.LNumber(p.Size))
		str(pt, "partuuid", p.PartUUID)
		var fs FSInfo
		switch p.Role {
		case RoleRoot:
			fs = res.RootFS
		case RoleEphemeral:
			fs = res.EphemeralFS
		case RoleESP:
			fs = res.ESPFS
		case RoleSwap:
			fs = FSInfo{Type: "swap", UUID: res.SwapUUID, Label: SwapLabel}
		}
		str(pt, "fs_type", fs.Type)
		str(pt, "fs_uuid", fs.UUID)
		str(pt, "fs_label", fs.Label)
		parts.RawSetString(p.Role, pt)
	}
	out.RawSetString("partitions", parts)
	return out
}

// imageInfo implements iscsi.image_info(image[, format]) -> {format=, virtual_size=, virtual_mb=}.
func (f *face) imageInfo(a *module.Args) int {
	img, err := f.r.Paths().Read(a.NonEmpty(1, "image"))
	a.Check(err)
	format := a.OptString(2, "format", "")
	var info ImageInfo
	a.Do(f.r, map[string]any{"image": img}, func(ctx context.Context) error {
		var err error
		info, err = Inspect(ctx, f.m.QemuImg, img, format)
		return toModule(err)
	})
	out := a.L.NewTable()
	out.RawSetString("format", lua.LString(info.Format))
	out.RawSetString("virtual_size", lua.LNumber(info.VirtualSize))
	out.RawSetString("virtual_mb", lua.LNumber(MB(info.VirtualSize)))
	a.L.Push(out)
	return 1
}

// iqn implements iscsi.iqn([node]) -> "iqn.2008-10.org.openstack:<uuid>".
func (f *face) iqn(a *module.Args) int {
	a.L.Push(lua.LString(IQNPrefix + a.Node(f.r, 1)))
	return 1
}

// chapSecret implements iscsi.chap_secret() -> a fresh random CHAP secret
// (16 characters), registered as a secret of the run (redacted everywhere).
func (f *face) chapSecret(a *module.Args) int {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		a.Raise(fmt.Errorf("generating a CHAP secret: %w", err))
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	f.r.AddSecret(s)
	a.L.Push(lua.LString(s))
	return 1
}
