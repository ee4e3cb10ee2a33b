package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// TgtdTools are the host programs `--with-tgtd` puts in the deploy
// ramdisk: the userspace iSCSI target the agent's
// iscsi.start_iscsi_target runs (Debian package tgt).
var TgtdTools = []string{"/usr/sbin/tgtd", "/usr/sbin/tgtadm"}

// HostToolsPresent reports whether every path exists (for "auto").
func HostToolsPresent(paths []string) bool {
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// resolveTools returns the files to copy for dynamically linked host
// executables: each executable and every shared library ldd lists (the
// dynamic loader included), each at the path ldd names, sorted by that
// path so the archive is deterministic.
func resolveTools(ctx context.Context, exes []string) ([]string, error) {
	set := map[string]bool{}
	for _, exe := range exes {
		if !filepath.IsAbs(exe) {
			return nil, invalidf("ramdisk tool %q: give an absolute path", exe)
		}
		if _, err := os.Stat(exe); err != nil {
			return nil, fmt.Errorf("ramdisk tool: %w", err)
		}
		set[exe] = true
		out, err := exec.CommandContext(ctx, "ldd", exe).Output()
		if err != nil {
			if strings.Contains(string(out), "not a dynamic executable") {
				continue
			}
			return nil, fmt.Errorf("ramdisk tool %s: ldd: %w", exe, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			var lib string
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				lib = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				lib = f[0] // the dynamic loader
			}
			if lib != "" {
				set[lib] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// toolEntries are the archive members for resolved host files: the file
// contents (symlinks followed) at their paths.
func toolEntries(files []string) ([]cpioEntry, error) {
	var out []cpioEntry
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("ramdisk tool: %w", err)
		}
		p := p
		out = append(out, cpioEntry{Name: strings.TrimPrefix(p, "/"), Mode: cpioReg | uint32(st.Mode().Perm()), Size: st.Size(),
			Open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	return append(out, cpioEntry{Name: "var/run", Mode: cpioDir | 0o755}), nil
}
