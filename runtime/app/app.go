// Package app wires configuration, the secret key, the store, the engine and
// the bindings together. The CLI and the daemon are thin layers over it, and
// end-to-end tests use it directly.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bindings/vmedia"
	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/config"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
)

// Options configure Open.
type Options struct {
	ConfigPath string
	// ScriptDirs are added before [lightsout] scripts_path.
	ScriptDirs []string
	// StateDir overrides [lightsout] state_dir.
	StateDir  string
	LogLevel  string // debug, info, warn, error
	LogFormat string // text, json, compact, compact-color (compact with ANSI colours)
	Stdout    io.Writer
	Stderr    io.Writer
	// Modules overrides the bindings loaded into scripts (tests); nil means
	// the default set (see modules.go).
	Modules []module.Module
	// OnEvent observes every recorded run event (see runtime.Options).
	OnEvent func(kind, name string, data map[string]any)
}

// App is an opened lightsout installation.
type App struct {
	Config   *config.Config
	Store    store.Store
	Engine   *runtime.Engine
	Redactor *secrets.Redactor
	Log      *slog.Logger
	Stdout   io.Writer
	closers  []func() error
	agent    *lazyAgent
	vmedia   *vmedia.Module
	cond     *conductor
}

// Shared describes this process's registration in a store shared by
// several processes (PostgreSQL): its conductor id and heartbeat timing.
type Shared struct {
	Store     store.JobAdopter
	Conductor int64
	// Timeout is [conductor] heartbeat_timeout, Interval heartbeat_interval.
	Timeout, Interval time.Duration
}

// Shared returns the registration of this process when its store is
// shared (PostgreSQL), nil for a SQLite store (one process at a time).
func (a *App) Shared() *Shared {
	if a.cond == nil {
		return nil
	}
	st, _ := a.Store.(store.JobAdopter)
	return &Shared{Store: st, Conductor: a.cond.id, Timeout: a.cond.timeout, Interval: a.cond.interval}
}

// Publisher starts the built-in web store when it is the configured
// publisher and returns its base URL ("" when Swift publishes).
func (a *App) Publisher() (string, error) {
	if a.vmedia == nil {
		return "", errors.New("the vmedia module is not loaded in this process")
	}
	s, err := a.vmedia.StartWebStore(a.Config)
	if err != nil || s == nil {
		return "", err
	}
	return s.URL(), nil
}

// ConfigError marks a configuration or state problem (exit code 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Open loads the configuration, the secret key and the store, and builds an
// engine with the bindings.
func Open(ctx context.Context, o Options) (*App, error) {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	red := secrets.NewRedactor()
	log, err := NewLogger(o.Stderr, o.LogLevel, o.LogFormat, red)
	if err != nil {
		return nil, &ConfigError{err}
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, &ConfigError{err}
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if o.StateDir != "" {
		cfg.Set("lightsout", "state_dir", o.StateDir)
		if v, _ := cfg.Get("lightsout", "database"); v == filepath.Join(config.DefaultStateDir(), "lightsout.db") {
			cfg.Set("lightsout", "database", filepath.Join(o.StateDir, "lightsout.db"))
		}
	}
	red.Add(cfg.SecretValues()...)
	if err := os.MkdirAll(cfg.StateDir(), 0o700); err != nil {
		return nil, &ConfigError{fmt.Errorf("state dir %s: %w (set [lightsout] state_dir or --state-dir)", cfg.StateDir(), err)}
	}
	key, err := secrets.LoadKey(filepath.Join(cfg.StateDir(), "secret.key"))
	if err != nil {
		return nil, &ConfigError{err}
	}
	cipher, err := secrets.NewCipher(key)
	if err != nil {
		return nil, &ConfigError{err}
	}
	st, err := store.OpenURL(ctx, cfg.DatabaseConnection(), cipher)
	if err != nil {
		return nil, &ConfigError{err}
	}
	if dups, err := st.DuplicatePorts(ctx); err == nil {
		for _, d := range dups {
			log.Warn("port address held by several nodes (the agent lookup cannot tell them apart): remove it from all but one with `lightsout node unset NODE --port MAC`",
				"address", d.Address, "nodes", strings.Join(d.Nodes, ","))
		}
	}
	// Values holding a known secret or a URL credential are encrypted at rest.
	st.SetSensitive(red.Holds)
	a := &App{Config: cfg, Store: st, Redactor: red, Log: log, Stdout: o.Stdout}
	a.closers = append(a.closers, st.Close)
	var leases *runtime.Leases
	if st.Dialect() == store.DialectPostgres { // processes may share it: leases
		timeout := cfg.Duration("conductor", "heartbeat_timeout", time.Minute)
		c, err := startConductor(ctx, st, timeout, cfg.Duration("conductor", "heartbeat_interval", 10*time.Second), log)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.closers = append([]func() error{c.close}, a.closers...)
		leases = &runtime.Leases{Store: st, Conductor: c.id, TTL: timeout}
		a.cond = c
	}
	mods := o.Modules
	if mods == nil {
		mods, err = a.defaultModules(ctx)
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	dirs := append(append([]string{}, o.ScriptDirs...), cfg.ScriptsPath()...)
	eng, err := runtime.New(ctx, runtime.Options{Store: st, Config: cfg, Modules: mods, ScriptDirs: dirs,
		Redactor: red, Logger: log, Stdout: o.Stdout, OnEvent: o.OnEvent,
		Watch: consoleWatch(cfg, red, log, ConsoleRingSize), Leases: leases})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Engine = eng
	a.closers = append([]func() error{eng.Close}, a.closers...)
	return a, nil
}

// OnClose registers fn to run at Close (before the store closes).
func (a *App) OnClose(fn func() error) { a.closers = append([]func() error{fn}, a.closers...) }

// Close flushes and closes everything.
func (a *App) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// NewLogger returns a slog logger writing to w whose output is redacted.
func NewLogger(w io.Writer, level, format string, red *secrets.Redactor) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "", "info":
		lvl = slog.LevelInfo
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	rw := &redactWriter{w: w, red: red}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(rw, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(rw, opts)), nil
	case "compact":
		return slog.New(NewCompactHandler(rw, lvl, false)), nil
	case "compact-color":
		return slog.New(NewCompactHandler(rw, lvl, true)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: use text, json or compact", format)
}

// redactWriter redacts every log line before it is written.
type redactWriter struct {
	w   io.Writer
	red *secrets.Redactor
}

func (r *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.red.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
