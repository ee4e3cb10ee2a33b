// Package sandbox is the file policy of a run (module.PathPolicy): which
// local paths the bindings may read and create on a script's behalf. The
// engine builds one Policy per run from the configuration; moduletest
// builds one per test run. See docs/playbooks.md, "Sandbox".
package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lightsout/lightsout/runtime/module"
)

// Config lists the directories and files of one run's sandbox. Paths
// need not exist; relative ones are made absolute against the process
// working directory.
type Config struct {
	// WorkDir is the run's private directory (created on first use,
	// removed by Cleanup). Relative script paths are relative to it.
	WorkDir string
	// Read are directories scripts may read (script directories).
	Read []string
	// Write are directories scripts may read and create files in
	// ([lightsout] script_paths).
	Write []string
	// Publish are publish directories ([lightsout] publish_dir, [deploy]
	// http_root): read and create, but only files that name no other
	// node's UUID than Node.
	Publish []string
	// Files are single files scripts may read (images named in the
	// configuration, e.g. [conductor] deploy_kernel).
	Files []string
	// Protected are never readable or writable, wherever they are: the
	// secret key, the database and its -wal/-shm, the config file.
	Protected []string
	// Node is the run's node UUID ("" for a node-less run).
	Node string
}

// Policy implements module.PathPolicy. It is safe for concurrent use.
type Policy struct {
	cfg Config

	mu       sync.Mutex
	created  map[string]bool
	workMade bool
}

var _ module.PathPolicy = (*Policy)(nil)

// New returns the policy for c.
func New(c Config) *Policy {
	abs := func(list []string) []string {
		out := make([]string, 0, len(list))
		for _, p := range list {
			if strings.TrimSpace(p) == "" {
				continue
			}
			if a, err := filepath.Abs(p); err == nil {
				out = append(out, a)
			}
		}
		return out
	}
	c.Read, c.Write, c.Publish, c.Files, c.Protected = abs(c.Read), abs(c.Write), abs(c.Publish), abs(c.Files), abs(c.Protected)
	if c.WorkDir != "" {
		c.WorkDir, _ = filepath.Abs(c.WorkDir)
	}
	return &Policy{cfg: c, created: map[string]bool{}}
}

// WorkDir implements module.PathPolicy.
func (p *Policy) WorkDir() (string, error) {
	if p.cfg.WorkDir == "" {
		return "", module.Errorf(module.CodeForbidden, "", "this run has no work directory: give absolute paths inside [lightsout] script_paths")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.workMade {
		if err := os.MkdirAll(p.cfg.WorkDir, 0o700); err != nil {
			return "", fmt.Errorf("run work directory: %w", err)
		}
		p.workMade = true
	}
	return p.cfg.WorkDir, nil
}

// Cleanup removes the work directory and everything in it.
func (p *Policy) Cleanup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.workMade {
		return nil
	}
	p.workMade = false
	return os.RemoveAll(p.cfg.WorkDir)
}

// Created reports whether the run created the (resolved) file.
func (p *Policy) Created(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.created[path]
}

// abs makes a script path absolute against the work directory and cleans
// it (removing "..").
func (p *Policy) abs(path string) (string, error) {
	if path == "" {
		return "", module.Errorf(module.CodeInvalid, "", "empty path: give a file name")
	}
	if strings.IndexByte(path, 0) >= 0 {
		return "", module.Errorf(module.CodeInvalid, "", "path %q contains a NUL byte", path)
	}
	if !filepath.IsAbs(path) {
		dir, err := p.WorkDir()
		if err != nil {
			return "", err
		}
		path = filepath.Join(dir, path)
	}
	return filepath.Clean(path), nil
}

// resolve evaluates the symlinks of path. A path that does not exist is
// resolved through its longest existing ancestor (exists is false).
func resolve(path string) (resolved string, exists bool, err error) {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if _, err := os.Lstat(path); err == nil {
		// a dangling symlink: never follow it to create its target
		return "", true, module.Errorf(module.CodeForbidden, "", "%s is a symbolic link to a missing file: choose a new path or delete it first", path)
	}
	dir, rest := filepath.Split(path)
	dir = filepath.Clean(dir)
	if dir == path {
		return path, false, nil
	}
	r, _, err := resolve(dir)
	if err != nil {
		return "", false, err
	}
	return filepath.Join(r, rest), false, nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(path, dir)
}

// roots are the allowed directories, each also with its symlinks
// resolved (a root may itself be reached through a link, e.g. /tmp).
func roots(dirs []string) []string {
	out := make([]string, 0, 2*len(dirs))
	for _, d := range dirs {
		out = append(out, d)
		if r, _, err := resolve(d); err == nil && r != d {
			out = append(out, r)
		}
	}
	return out
}

func inAny(path string, dirs []string) bool {
	for _, d := range roots(dirs) {
		if within(path, d) {
			return true
		}
	}
	return false
}

// protected reports whether path (resolved) is, or is a hard link to, a
// protected file.
func (p *Policy) protected(path string) bool {
	st, statErr := os.Stat(path)
	for _, f := range p.cfg.Protected {
		if path == f {
			return true
		}
		if r, _, err := resolve(f); err == nil && r == path {
			return true
		}
		if statErr == nil {
			if pst, err := os.Stat(f); err == nil && os.SameFile(st, pst) {
				return true
			}
		}
	}
	return false
}

func forbiddenProtected(path string) error {
	return module.Errorf(module.CodeForbidden, "", "%s is protected (the secret key, the database and the config file are never readable or writable by scripts)", path)
}

// publishOK refuses, inside a publish directory, a file named for
// another node.
func (p *Policy) publishOK(path string) error {
	for _, d := range roots(p.cfg.Publish) {
		if within(path, d) {
			if u := module.ForeignUUID(strings.TrimPrefix(path, d), p.cfg.Node); u != "" {
				return module.Errorf(module.CodeForbidden, "", "%s belongs to node %s: a script may act only on its run's node's media", path, u)
			}
		}
	}
	return nil
}

// readable reports whether the resolved path is inside the readable
// directories or one of the readable files.
func (p *Policy) readable(path string) bool {
	if p.cfg.WorkDir != "" && inAny(path, []string{p.cfg.WorkDir}) {
		return true
	}
	if inAny(path, p.cfg.Read) || inAny(path, p.cfg.Write) || inAny(path, p.cfg.Publish) {
		return true
	}
	for _, f := range p.cfg.Files {
		if path == f {
			return true
		}
		if r, _, err := resolve(f); err == nil && r == path {
			return true
		}
	}
	return false
}

func (p *Policy) writable(path string) bool {
	if p.cfg.WorkDir != "" && inAny(path, []string{p.cfg.WorkDir}) {
		return true
	}
	return inAny(path, p.cfg.Write) || inAny(path, p.cfg.Publish)
}

// Read implements module.PathPolicy.
func (p *Policy) Read(path string) (string, error) {
	lex, err := p.abs(path)
	if err != nil {
		return "", err
	}
	if p.protected(lex) {
		return "", forbiddenProtected(path)
	}
	// Refuse before touching the file: a script learns nothing about
	// files outside the sandbox, not even whether they exist.
	if !p.readable(lex) {
		return "", p.outside("read", path)
	}
	r, exists, err := resolve(lex)
	if err != nil {
		return "", p.fsError("read", path, err)
	}
	if !exists {
		return "", &module.Error{Code: module.CodeNotFound, Message: fmt.Sprintf("%s: no such file", path), Err: fs.ErrNotExist}
	}
	if !p.readable(r) {
		return "", module.Errorf(module.CodeForbidden, "", "%s resolves to %s, outside the directories scripts may read: a symbolic link may not lead out of the sandbox", path, r)
	}
	if p.protected(r) {
		return "", forbiddenProtected(path)
	}
	if err := p.publishOK(r); err != nil {
		return "", err
	}
	return r, nil
}

// Create implements module.PathPolicy.
func (p *Policy) Create(path string) (string, error) {
	lex, err := p.abs(path)
	if err != nil {
		return "", err
	}
	if p.protected(lex) {
		return "", forbiddenProtected(path)
	}
	if !p.writable(lex) {
		return "", p.outside("write", path)
	}
	r, exists, err := resolve(lex)
	if err != nil {
		return "", p.fsError("write", path, err)
	}
	if !p.writable(r) {
		return "", module.Errorf(module.CodeForbidden, "", "%s resolves to %s, outside the directories scripts may write: a symbolic link may not lead out of the sandbox", path, r)
	}
	if p.protected(r) {
		return "", forbiddenProtected(path)
	}
	if err := p.publishOK(r); err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if exists && !p.created[r] {
		return "", module.Errorf(module.CodeForbidden, "", "%s already exists and this run did not create it: choose a new path or delete it first", path)
	}
	if err := os.MkdirAll(filepath.Dir(r), 0o755); err != nil {
		return "", p.fsError("write", path, err)
	}
	p.created[r] = true
	return r, nil
}

func (p *Policy) outside(verb, path string) error {
	where := "the run's work directory, the publish directories and [lightsout] script_paths"
	if verb == "read" {
		where = "the run's work directory, the publish directories, the script directories and [lightsout] script_paths"
	}
	return module.Errorf(module.CodeForbidden, "", "%s: a script may %s only inside %s; add its directory to [lightsout] script_paths to allow it", path, verb, where)
}

func (p *Policy) fsError(verb, path string, err error) error {
	var me *module.Error
	if errors.As(err, &me) {
		return err
	}
	return &module.Error{Code: module.CodeError, Message: fmt.Sprintf("%s %s: %v", verb, path, err), Err: err}
}
