package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lightsout/lightsout/scripts"
	"github.com/lightsout/lightsout/stdlib"
)

// BundledPrefix forces require to skip site directories: a site deploy.lua
// can wrap the bundled one with require("bundled.deploy").
const BundledPrefix = "bundled."

// Script is one Lua source in effect.
type Script struct {
	Name string `json:"name"`
	// Origin is "site" or "bundled".
	Origin string `json:"origin"`
	// Path is the site file path, or "scripts/x.lua" / "stdlib/x.lua" for bundled ones.
	Path string `json:"path"`
	// Kind is "playbook" (scripts/) or "library" (stdlib/).
	Kind string `json:"kind"`
	// Overrides is set on a site script that hides a bundled one.
	Overrides bool   `json:"overrides,omitempty"`
	Source    []byte `json:"-"`
}

// Scripts finds Lua sources: site directories first, then the bundled
// scripts/ and stdlib/ embedded in the binary.
type Scripts struct {
	dirs    []string
	bundled []bundle
}

type bundle struct {
	fsys fs.FS
	dir  string // "scripts" or "stdlib"
	kind string
}

// NewScripts returns a lookup over the given site directories.
func NewScripts(siteDirs []string) *Scripts {
	return &Scripts{dirs: siteDirs, bundled: []bundle{
		{scripts.FS, "scripts", "playbook"},
		{stdlib.FS, "stdlib", "library"},
	}}
}

// SearchPath describes where names are looked up, for error messages.
func (s *Scripts) SearchPath() string {
	parts := append([]string{}, s.dirs...)
	parts = append(parts, "<bundled scripts/>", "<bundled stdlib/>")
	return strings.Join(parts, ", ")
}

// nameToPath maps "a.b" to "a/b.lua".
func nameToPath(name string) (string, error) {
	name = strings.TrimSuffix(name, ".lua")
	if name == "" || strings.Contains(name, "/") || strings.Contains(name, "\\") || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("invalid script name %q: use a name like deploy or site.steps", name)
	}
	return strings.ReplaceAll(name, ".", "/") + ".lua", nil
}

// Find returns the script named name (site first, unless the name starts
// with "bundled.").
func (s *Scripts) Find(name string) (*Script, error) {
	bundledOnly := strings.HasPrefix(name, BundledPrefix)
	rel, err := nameToPath(strings.TrimPrefix(name, BundledPrefix))
	if err != nil {
		return nil, err
	}
	if !bundledOnly {
		for _, d := range s.dirs {
			p := filepath.Join(d, filepath.FromSlash(rel))
			src, err := os.ReadFile(p)
			if err == nil {
				return &Script{Name: strings.TrimSuffix(rel, ".lua"), Origin: "site", Path: p, Kind: "playbook", Source: src}, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("read site script %s: %w", p, err)
			}
		}
	}
	for _, b := range s.bundled {
		src, err := fs.ReadFile(b.fsys, rel)
		if err == nil {
			return &Script{Name: strings.TrimSuffix(rel, ".lua"), Origin: "bundled", Path: path.Join(b.dir, rel), Kind: b.kind, Source: src}, nil
		}
	}
	return nil, &NotFoundError{Name: name, SearchPath: s.SearchPath()}
}

// NotFoundError is returned for an unknown script.
type NotFoundError struct{ Name, SearchPath string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("script %q not found; searched %s (see `lightsout scripts list`)", e.Name, e.SearchPath)
}

// List returns every script in effect, sorted by name; a site script that
// hides a bundled one is marked Overrides and the bundled one is omitted.
func (s *Scripts) List() ([]Script, error) {
	byName := map[string]Script{}
	for i := len(s.bundled) - 1; i >= 0; i-- {
		b := s.bundled[i]
		err := fs.WalkDir(b.fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".lua") || strings.HasPrefix(p, "types/") {
				return err
			}
			n := strings.ReplaceAll(strings.TrimSuffix(p, ".lua"), "/", ".")
			byName[n] = Script{Name: n, Origin: "bundled", Path: path.Join(b.dir, p), Kind: b.kind}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list bundled scripts: %w", err)
		}
	}
	for i := len(s.dirs) - 1; i >= 0; i-- {
		d := s.dirs[i]
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return filepath.SkipDir
				}
				return err
			}
			if e.IsDir() || !strings.HasSuffix(p, ".lua") {
				return nil
			}
			rel, _ := filepath.Rel(d, p)
			n := strings.ReplaceAll(strings.TrimSuffix(filepath.ToSlash(rel), ".lua"), "/", ".")
			prev, had := byName[n]
			byName[n] = Script{Name: n, Origin: "site", Path: p, Kind: "playbook",
				Overrides: had && (prev.Origin == "bundled" || prev.Overrides)}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list site scripts in %s: %w", d, err)
		}
	}
	out := make([]Script, 0, len(byName))
	for _, sc := range byName {
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Export copies every bundled script and library (and the LuaLS types) into
// dir for editing; existing files are not overwritten.
func (s *Scripts) Export(dir string) ([]string, error) {
	var written []string
	for _, b := range s.bundled {
		err := fs.WalkDir(b.fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".lua") {
				return err
			}
			dst := filepath.Join(dir, filepath.FromSlash(p))
			if b.dir == "stdlib" && strings.HasPrefix(p, "types/") {
				dst = filepath.Join(dir, "types", filepath.FromSlash(strings.TrimPrefix(p, "types/")))
			}
			if _, err := os.Stat(dst); err == nil {
				return nil
			}
			data, err := fs.ReadFile(b.fsys, p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return err
			}
			written = append(written, dst)
			return nil
		})
		if err != nil {
			return written, fmt.Errorf("export scripts to %s: %w", dir, err)
		}
	}
	return written, nil
}
