package deployagent

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Files `lightsout image ramdisk` writes beside ModulesLoadFile so that init
// loads only the modules the machine's devices need (as udev's coldplug
// does) instead of every module: under software emulation each module's
// load (signature check, relocation) costs up to seconds.
const (
	// ModulesLoadFile lists every kernel module of the ramdisk, one
	// absolute path of an uncompressed .ko per line, in dependency order.
	ModulesLoadFile = "/etc/lightsout/modules.load"
	// ModulesDepFile: "path: dep dep ..." per module, every module it
	// needs (hard and soft dependencies, transitively) in load order.
	ModulesDepFile = "/etc/lightsout/modules.dep"
	// ModulesAliasFile: "alias PATTERN path" per device alias (a glob over
	// the kernel's modalias strings: pci:v…, usb:v…, virtio:d…, acpi*:…).
	ModulesAliasFile = "/etc/lightsout/modules.alias"
	// ModulesBootFile: paths loaded whatever the hardware (file systems,
	// SCSI disk and CD-ROM drivers, character sets).
	ModulesBootFile = "/etc/lightsout/modules.boot"
)

// ModuleIndex is the ramdisk's module index: what init loads for a device.
type ModuleIndex struct {
	order   map[string]int      // path -> position in modules.load
	deps    map[string][]string // path -> dependencies in load order
	aliases []moduleAlias
	boot    []string
}

type moduleAlias struct{ pattern, path string }

// ParseModuleIndex reads the contents of ModulesLoadFile, ModulesDepFile,
// ModulesAliasFile and ModulesBootFile. Every path they name must be in
// modules.load.
func ParseModuleIndex(load, dep, alias, boot []byte) (*ModuleIndex, error) {
	ix := &ModuleIndex{order: map[string]int{}, deps: map[string][]string{}}
	for i, p := range fieldsLines(load) {
		ix.order[p[0]] = i
	}
	known := func(file string, line int, p string) error {
		if _, ok := ix.order[p]; !ok {
			return fmt.Errorf("%s line %d: %s is not in %s", file, line, p, ModulesLoadFile)
		}
		return nil
	}
	for i, f := range fieldsLines(dep) {
		mod, ok := strings.CutSuffix(f[0], ":")
		if !ok {
			return nil, fmt.Errorf("%s line %d: expected \"path: deps\"", ModulesDepFile, i+1)
		}
		for _, p := range f {
			if err := known(ModulesDepFile, i+1, strings.TrimSuffix(p, ":")); err != nil {
				return nil, err
			}
		}
		ix.deps[mod] = f[1:]
	}
	for i, f := range fieldsLines(alias) {
		if len(f) != 3 || f[0] != "alias" {
			return nil, fmt.Errorf("%s line %d: expected \"alias PATTERN path\"", ModulesAliasFile, i+1)
		}
		if _, err := path.Match(f[1], ""); err != nil {
			return nil, fmt.Errorf("%s line %d: pattern %q: %w", ModulesAliasFile, i+1, f[1], err)
		}
		if err := known(ModulesAliasFile, i+1, f[2]); err != nil {
			return nil, err
		}
		ix.aliases = append(ix.aliases, moduleAlias{f[1], f[2]})
	}
	for i, f := range fieldsLines(boot) {
		if err := known(ModulesBootFile, i+1, f[0]); err != nil {
			return nil, err
		}
		ix.boot = append(ix.boot, f[0])
	}
	return ix, nil
}

// fieldsLines splits b into the fields of its non-empty, non-comment lines.
func fieldsLines(b []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			out = append(out, f)
		}
	}
	return out
}

// Boot is the modules to load whatever the hardware, with their
// dependencies, in load order.
func (ix *ModuleIndex) Boot() []string { return ix.withDeps(ix.boot) }

// Match is the modules (with their dependencies, in load order) whose
// aliases match a device's modalias, as modprobe resolves one.
func (ix *ModuleIndex) Match(modalias string) []string {
	var hits []string
	for _, a := range ix.aliases {
		if ok, _ := path.Match(a.pattern, modalias); ok {
			hits = append(hits, a.path)
		}
	}
	return ix.withDeps(hits)
}

// withDeps adds the dependencies of mods and sorts them in load order,
// without duplicates.
func (ix *ModuleIndex) withDeps(mods []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range mods {
		for _, d := range ix.deps[m] {
			add(d)
		}
		add(m)
	}
	// modules.load is in load order: keep it across several matches
	slices.SortStableFunc(out, func(a, b string) int { return ix.order[a] - ix.order[b] })
	return out
}

// PNPModalias is the modalias udev gives a PNP device from its id file
// ("PNP0700" → "pnp:dPNP0700"): the pnp bus has no modalias attribute.
func PNPModalias(id string) string { return "pnp:d" + strings.TrimSpace(id) }

// ParseUevent reads a kernel uevent message ("add@/devices/…" then
// NUL-separated KEY=VALUE pairs) and returns its ACTION and MODALIAS.
func ParseUevent(msg []byte) (action, modalias string) {
	for i, kv := range bytes.Split(msg, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		switch {
		case i == 0 && !ok:
			// header: ACTION@DEVPATH (the ACTION key repeats it)
		case string(k) == "ACTION":
			action = string(v)
		case string(k) == "MODALIAS":
			modalias = string(v)
		}
	}
	return action, modalias
}
