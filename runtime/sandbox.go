package runtime

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/module/sandbox"
)

// WorkDir is the work directory of run id: <state dir>/work/<id>. It
// exists while the run needs it and is removed when the run ends.
func WorkDir(cfg *config.Config, id int64) string {
	return filepath.Join(cfg.StateDir(), "work", strconv.FormatInt(id, 10))
}

// splitPaths splits a ':'-separated list of directories.
func splitPaths(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ":") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// localFile returns the local path of an image reference in the
// configuration ("" for URLs and other references).
func localFile(ref string) string {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(strings.ToLower(ref), "file://") {
		return ref[len("file://"):]
	}
	if filepath.IsAbs(ref) {
		return ref
	}
	return ""
}

// sandboxConfig builds the file policy of one run (docs/playbooks.md,
// "Sandbox") from the configuration: the run's work directory; the script
// directories (read); [lightsout] script_paths (read and write); the
// publish directories (read and write, never another node's files); the
// images named in [conductor] (read); and the protected files.
func (e *Engine) sandboxConfig(runID int64, nodeUUID string, sc *Script) sandbox.Config {
	cfg := e.cfg
	state := cfg.StateDir()
	c := sandbox.Config{WorkDir: WorkDir(cfg, runID), Node: nodeUUID}
	c.Read = append(c.Read, e.scripts.dirs...)
	if sc != nil && sc.Origin == "file" && sc.Path != "" {
		c.Read = append(c.Read, filepath.Dir(sc.Path))
	}
	c.Write = splitPaths(cfg.String("lightsout", "script_paths"))
	pub := cfg.String("lightsout", "publish_dir")
	if pub == "" && state != "" {
		pub = filepath.Join(state, "published")
	}
	c.Publish = append(c.Publish, pub, cfg.String("deploy", "http_root"))
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk", "bootloader"} {
		if f := localFile(cfg.String("conductor", k)); f != "" {
			c.Files = append(c.Files, f)
		}
	}
	c.Protected = append(c.Protected, filepath.Join(state, "secret.key"), filepath.Join(state, "webstore.key"))
	if db := cfg.Database(); db != "" {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal", "-wlock"} {
			c.Protected = append(c.Protected, db+suffix)
		}
	}
	if cfg.File != "" {
		c.Protected = append(c.Protected, cfg.File)
	}
	if k := cfg.String("lightsout", "publish_tls_key"); k != "" {
		c.Protected = append(c.Protected, k) // the web store's TLS private key
	}
	return c
}

// Paths implements module.Run: the run's file sandbox.
func (r *Run) Paths() module.PathPolicy { return r.paths }

// checkArtifact refuses a published-object location ("web:…", "swift:…",
// which vmedia.cleanup deletes) that is not named for the run's node: a
// script must not make its node's cleanup delete another node's media.
// The bindings record the objects they publish themselves.
func checkArtifact(r *Run, location string) error {
	if !strings.HasPrefix(location, "web:") && !strings.HasPrefix(location, "swift:") {
		return nil
	}
	own := ""
	if n := r.Node(); n != nil {
		own = n.UUID()
	}
	if own == "" || !strings.Contains(strings.ToLower(location), strings.ToLower(own)) || module.ForeignUUID(location, own) != "" {
		return module.Errorf(module.CodeForbidden, "run.artifact", "%s is a published object not named for this run's node: "+
			"vmedia and swift record what they publish; a script may record only its node's objects (named with its UUID)", location)
	}
	return nil
}
