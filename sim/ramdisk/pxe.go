package ramdisk

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrPXE is wrapped by the error of a network boot that finds no boot
// files for the server (what a PXE ROM reports as PXE-E53/PXE-T01).
var ErrPXE = fmt.Errorf("PXE boot failed")

// isNetworkBoot reports whether the boot device is the network (PXE).
func isNetworkBoot(dev string) bool {
	return strings.EqualFold(dev, "NETWORK") || strings.EqualFold(dev, "PXE")
}

// pxeParams does what a PXE ROM and its boot loader do for a network boot:
// fetch the server's MAC-named config from the boot server (pxelinux for
// LEGACY, GRUB's grub.cfg-01-<mac> for UEFI), then the kernel and ramdisk
// its default entry names, and return that entry's kernel command line.
// Without a boot server, or when no MAC has a config, it prints the ROM's
// failure on the console and returns an error wrapping ErrPXE.
func (r *Ramdisk) pxeParams(ctx context.Context, dir string, ev BootEvent) (map[string]string, error) {
	base := r.opts.PXEServer
	if base == "" {
		r.consoleLine(ev.Server, "PXE-E53: No boot filename received")
		return nil, fmt.Errorf("%s: no PXE boot server configured: %w", ev.Server, ErrPXE)
	}
	uefi := strings.EqualFold(ev.BootMode, "UEFI")
	var cfg string
	for _, mac := range ev.MACs {
		name := "pxelinux.cfg/01-" + strings.ReplaceAll(strings.ToLower(mac), ":", "-")
		if uefi {
			name = "grub.cfg-01-" + strings.ReplaceAll(strings.ToLower(mac), ":", "-")
		}
		p := filepath.Join(dir, "pxe.cfg")
		if err := r.download(ctx, joinURL(base, name), p); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cfg = string(b)
		break
	}
	if cfg == "" {
		r.consoleLine(ev.Server, "PXE-T01: File not found (no PXE config for "+strings.Join(ev.MACs, ", ")+")")
		r.consoleLine(ev.Server, "PXE-E3B: TFTP Error - File Not found")
		return nil, fmt.Errorf("%s: no PXE config for its MACs: %w", ev.Server, ErrPXE)
	}
	kernel, initrd, cmdline := parseBootEntry(cfg, uefi)
	if kernel == "" || initrd == "" {
		r.consoleLine(ev.Server, "PXE boot: the config names no kernel and initrd to boot")
		return nil, fmt.Errorf("%s: PXE config without kernel/initrd: %w", ev.Server, ErrPXE)
	}
	for i, f := range []string{kernel, initrd} {
		if err := r.download(ctx, joinURL(base, f), filepath.Join(dir, fmt.Sprintf("pxe-%d", i))); err != nil {
			r.consoleLine(ev.Server, "PXE boot: cannot load "+f+": "+err.Error())
			return nil, fmt.Errorf("%s: %v: %w", ev.Server, err, ErrPXE)
		}
	}
	return ParseCmdline(cmdline), nil
}

func joinURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/" + (&url.URL{Path: strings.TrimLeft(name, "/")}).EscapedPath()
}

// parseBootEntry returns the kernel, initrd and kernel command line of the
// config's default entry: pxelinux (default/label/kernel/append initrd=)
// or GRUB (set default=/menuentry/linux/initrd).
func parseBootEntry(cfg string, uefi bool) (kernel, initrd, cmdline string) {
	lines := strings.Split(cfg, "\n")
	if uefi {
		def, in := "", false
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 0:
			case f[0] == "set" && strings.HasPrefix(l2(f), "default="):
				def = strings.Trim(strings.TrimPrefix(l2(f), "default="), `"`)
			case f[0] == "menuentry" && len(f) > 1:
				in = strings.Trim(f[1], `"'{`) == def
			case f[0] == "}":
				in = false
			case in && f[0] == "linux" && len(f) > 1:
				kernel, cmdline = f[1], strings.Join(f[2:], " ")
			case in && f[0] == "initrd" && len(f) > 1:
				initrd = f[1]
			}
		}
		return kernel, initrd, cmdline
	}
	def, in := "", false
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) < 2:
		case strings.EqualFold(f[0], "default"):
			def = f[1]
		case strings.EqualFold(f[0], "label"):
			in = f[1] == def
		case in && strings.EqualFold(f[0], "kernel"):
			kernel = f[1]
		case in && strings.EqualFold(f[0], "append"):
			cmdline = strings.Join(f[1:], " ")
			for _, w := range f[1:] {
				if v, ok := strings.CutPrefix(w, "initrd="); ok {
					initrd = v
				}
			}
		}
	}
	return kernel, initrd, cmdline
}

func l2(f []string) string {
	if len(f) > 1 {
		return f[1]
	}
	return ""
}

// consoleLine writes a line on the server's serial console (with UseSim).
func (r *Ramdisk) consoleLine(server, line string) {
	r.mu.Lock()
	fn := r.console
	r.mu.Unlock()
	if fn != nil {
		fn(server, line)
	}
	r.log.Debug(line, "server", server) // the console handler shows Info and above: once is enough
}
