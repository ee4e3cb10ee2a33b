package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/runtime/module"
)

const (
	own   = "11111111-1111-4111-8111-111111111111"
	other = "22222222-2222-4222-8222-222222222222"
)

// layout is a state dir with protected files, an operator data dir
// (script_paths, which here also holds the state dir to prove protected
// files stay protected inside allowed directories), a script dir, a
// publish dir and an outside dir, plus symlink and hard-link escapes.
type layout struct {
	root, state, data, scripts, pub, outside string
	p                                        *Policy
}

func newLayout(t *testing.T) *layout {
	t.Helper()
	root := t.TempDir()
	l := &layout{root: root, state: filepath.Join(root, "state"), data: filepath.Join(root, "data"),
		scripts: filepath.Join(root, "scripts"), pub: filepath.Join(root, "state", "published"), outside: filepath.Join(root, "outside")}
	for _, d := range []string{l.state, l.data, l.scripts, l.pub, l.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"state/secret.key", "state/lightsout.db", "state/lightsout.db-wal", "state/webstore.key",
		"lightsout.conf", "data/existing.iso", "scripts/site.lua", "outside/passwd",
		"state/published/image-" + own, "state/published/image-" + other} {
		write(filepath.Join(root, f))
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(l.outside, "passwd"), "data/link-out")
	link(filepath.Join(l.state, "secret.key"), "data/link-key")
	link(l.outside, "data/linkdir")
	link(filepath.Join(l.outside, "missing"), "data/dangling")
	link(filepath.Join(l.data, "existing.iso"), "data/link-in")
	if err := os.Link(filepath.Join(l.state, "secret.key"), filepath.Join(l.outside, "hard-key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(l.state, "secret.key"), filepath.Join(l.data, "hard-key")); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(l.state, "lightsout.db")
	l.p = New(Config{
		WorkDir:   filepath.Join(l.state, "work", "7"),
		Read:      []string{l.scripts},
		Write:     []string{l.data, l.state},
		Publish:   []string{l.pub},
		Files:     []string{filepath.Join(l.outside, "allowed-kernel")},
		Protected: []string{filepath.Join(l.state, "secret.key"), filepath.Join(l.state, "webstore.key"), db, db + "-wal", db + "-shm", filepath.Join(root, "lightsout.conf")},
		Node:      own,
	})
	return l
}

func codeOf(err error) string {
	var me *module.Error
	if errors.As(err, &me) {
		return me.Code
	}
	if err != nil {
		return "other"
	}
	return ""
}

func TestRead(t *testing.T) {
	l := newLayout(t)
	write := func(p string) {
		if err := os.WriteFile(p, []byte("k"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(l.outside, "allowed-kernel"))
	tests := []struct {
		name, path, code, want string
	}{
		{"secret key", filepath.Join(l.state, "secret.key"), module.CodeForbidden, ""},
		{"web store key", filepath.Join(l.state, "webstore.key"), module.CodeForbidden, ""},
		{"database", filepath.Join(l.state, "lightsout.db"), module.CodeForbidden, ""},
		{"database wal", filepath.Join(l.state, "lightsout.db-wal"), module.CodeForbidden, ""},
		{"database shm (not there yet)", filepath.Join(l.state, "lightsout.db-shm"), module.CodeForbidden, ""},
		{"config", filepath.Join(l.root, "lightsout.conf"), module.CodeForbidden, ""},
		{"outside", filepath.Join(l.outside, "passwd"), module.CodeForbidden, ""},
		{"/etc/passwd", "/etc/passwd", module.CodeForbidden, ""},
		{"missing outside file (no existence leak)", filepath.Join(l.outside, "nope"), module.CodeForbidden, ""},
		{"dot-dot escape", l.data + "/../outside/passwd", module.CodeForbidden, ""},
		{"relative dot-dot escape", "../../../outside/passwd", module.CodeForbidden, ""},
		{"symlink out", filepath.Join(l.data, "link-out"), module.CodeForbidden, ""},
		{"symlink to the secret key", filepath.Join(l.data, "link-key"), module.CodeForbidden, ""},
		{"hard link to the secret key in an allowed dir", filepath.Join(l.data, "hard-key"), module.CodeForbidden, ""},
		{"symlinked dir out", filepath.Join(l.data, "linkdir", "passwd"), module.CodeForbidden, ""},
		{"another node's published file", filepath.Join(l.pub, "image-"+other), module.CodeForbidden, ""},
		{"allowed data", filepath.Join(l.data, "existing.iso"), "", filepath.Join(l.data, "existing.iso")},
		{"symlink inside", filepath.Join(l.data, "link-in"), "", filepath.Join(l.data, "existing.iso")},
		{"script dir", filepath.Join(l.scripts, "site.lua"), "", filepath.Join(l.scripts, "site.lua")},
		{"own published file", filepath.Join(l.pub, "image-"+own), "", filepath.Join(l.pub, "image-"+own)},
		{"configured image file", filepath.Join(l.outside, "allowed-kernel"), "", filepath.Join(l.outside, "allowed-kernel")},
		{"missing in work dir", "nope.iso", module.CodeNotFound, ""},
		{"empty", "", module.CodeInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.p.Read(tt.path)
			if c := codeOf(err); c != tt.code {
				t.Fatalf("Read(%s) = %q, %v; want code %q", tt.path, got, err, tt.code)
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("Read(%s) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	l := newLayout(t)
	tests := []struct {
		name, path, code, want string
	}{
		{"new file in script_paths", filepath.Join(l.data, "new.img"), "", filepath.Join(l.data, "new.img")},
		{"again: the run created it", filepath.Join(l.data, "new.img"), "", filepath.Join(l.data, "new.img")},
		{"relative: the work dir", "deploy-iso/boot.iso", "", filepath.Join(l.state, "work", "7", "deploy-iso", "boot.iso")},
		{"existing file", filepath.Join(l.data, "existing.iso"), module.CodeForbidden, ""},
		{"secret key", filepath.Join(l.state, "secret.key"), module.CodeForbidden, ""},
		{"database", filepath.Join(l.state, "lightsout.db"), module.CodeForbidden, ""},
		{"database shm (not there yet)", filepath.Join(l.state, "lightsout.db-shm"), module.CodeForbidden, ""},
		{"config", filepath.Join(l.root, "lightsout.conf"), module.CodeForbidden, ""},
		{"script dir is read-only", filepath.Join(l.scripts, "x.lua"), module.CodeForbidden, ""},
		{"outside", filepath.Join(l.outside, "new"), module.CodeForbidden, ""},
		{"/etc", "/etc/lightsout-test", module.CodeForbidden, ""},
		{"dot-dot escape", l.data + "/../outside/new", module.CodeForbidden, ""},
		{"through a symlinked dir", filepath.Join(l.data, "linkdir", "new"), module.CodeForbidden, ""},
		{"dangling symlink", filepath.Join(l.data, "dangling"), module.CodeForbidden, ""},
		{"symlink to the key", filepath.Join(l.data, "link-key"), module.CodeForbidden, ""},
		{"another node's published name", filepath.Join(l.pub, "image-"+other), module.CodeForbidden, ""},
		{"own published name (exists, not created)", filepath.Join(l.pub, "image-"+own), module.CodeForbidden, ""},
		{"new own published name", filepath.Join(l.pub, own+".iso"), "", filepath.Join(l.pub, own+".iso")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.p.Create(tt.path)
			if c := codeOf(err); c != tt.code {
				t.Fatalf("Create(%s) = %q, %v; want code %q", tt.path, got, err, tt.code)
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("Create(%s) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(l.state, "work", "7", "deploy-iso")); err != nil {
		t.Fatalf("Create did not make the parent directory: %v", err)
	}
	if err := l.p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(l.state, "work", "7")); !os.IsNotExist(err) {
		t.Fatalf("work directory left after Cleanup: %v", err)
	}
}

// TestNoWorkDir: a policy without a work directory refuses relative paths.
func TestNoWorkDir(t *testing.T) {
	p := New(Config{})
	for _, f := range []func(string) (string, error){p.Read, p.Create} {
		if _, err := f("x"); codeOf(err) != module.CodeForbidden {
			t.Fatalf("relative path without a work dir: %v", err)
		}
	}
}
