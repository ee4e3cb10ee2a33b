package vmedia

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/swift"
	"github.com/lightsout/lightsout/bindings/webstore"
	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the long-lived `vmedia` Lua module. It starts the built-in web
// store lazily, once per process, and caches Swift clients.
type Module struct {
	// Floppy overrides the floppy writer (nil = WriteFloppy).
	Floppy FloppyWriter

	mu     sync.Mutex
	web    *webstore.Server
	webKey string
	webDir string
	cancel context.CancelFunc
	swifts map[string]*swift.Client
	http   *http.Client
}

// NewModule returns the vmedia module.
func NewModule() *Module { return &Module{swifts: map[string]*swift.Client{}} }

// Name implements module.Module.
func (m *Module) Name() string { return "vmedia" }

// Close stops the web store if this module started one.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	if m.web != nil {
		err := m.web.Close()
		m.web = nil
		return err
	}
	return nil
}

// WebStore returns the running web store (nil if not started).
func (m *Module) WebStore() *webstore.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.web
}

// SwiftClient returns a cached client for cfg.
func (m *Module) swiftClient(cfg swift.Config) (*swift.Client, error) {
	k := fmt.Sprintf("%#v", cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.swifts[k]; c != nil {
		return c, nil
	}
	c, err := swift.New(cfg)
	if err != nil {
		return nil, err
	}
	m.swifts[k] = c
	return c, nil
}

func (m *Module) webStore(w WebConfig) (*webstore.Server, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.web != nil {
		if m.webDir != w.Dir {
			return nil, "", fmt.Errorf("the web store already serves %s; [lightsout] publish_dir changed to %s (restart to apply)", m.webDir, w.Dir)
		}
		return m.web, m.webKey, nil
	}
	key, err := webstore.LoadOrCreateKey(w.KeyFile)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := StartWeb(ctx, w)
	if err != nil {
		cancel()
		return nil, "", err
	}
	m.web, m.webKey, m.webDir, m.cancel = s, key, w.Dir, cancel
	return s, key, nil
}

// Media builds the Media for a run's configuration, starting the web store
// if it is the configured publisher.
func (m *Module) Media(r module.Run) (*Media, error) {
	cfg := r.Config()
	sc, err := swift.ConfigFrom(cfg)
	if err != nil {
		return nil, module.Errorf(module.CodeInvalid, "vmedia", "%v", err)
	}
	w, err := WebConfigFrom(cfg)
	if err != nil {
		return nil, module.Errorf(module.CodeInvalid, "vmedia", "%v", err)
	}
	r.AddSecret(sc.Password)
	r.AddSecret(sc.TempURLKey)
	r.AddSecret(sc.Glance.TempURLKey)
	md := &Media{Container: sc.Container, Glance: sc.Glance, Expiry: defaultExpiry(sc), Floppy: m.Floppy}
	if sc.Configured() {
		if md.Swift, err = m.swiftClient(sc); err != nil {
			return nil, err
		}
	}
	if UseSwift(sc, w) {
		md.Store, md.StoreKind = md.Swift, StoreSwift
		return md, nil
	}
	s, key, err := m.webStore(w)
	if err != nil {
		return nil, module.Errorf(module.CodeError, "vmedia", "starting the built-in web store: %v", err)
	}
	r.AddSecret(key)
	md.Store, md.StoreKind = s, StoreWeb
	return md, nil
}

// addSwiftKey registers the Swift temp URL key (once known) as a secret.
func addSwiftKey(r module.Run, md *Media) {
	if md.Swift == nil {
		return
	}
	if k, err := md.Swift.TempURLKey(r.Context()); err == nil {
		r.AddSecret(k)
	}
}

func checkBMC(L *lua.LState, n int, op string) BMC {
	v := L.Get(n)
	if ud, ok := v.(*lua.LUserData); ok {
		// vmedia records each BMC step itself: take the ilo client that
		// does not record too, so each BMC call is one event.
		if u, ok := ud.Value.(interface{ Unrecorded() iloapi.Client }); ok {
			return u.Unrecorded()
		}
		if b, ok := ud.Value.(BMC); ok {
			return b
		}
	}
	L.Error(module.ErrorValue(L, module.CodeInvalid, op,
		fmt.Sprintf("argument #%d must be a BMC from ilo.connect(node), got %s", n, v.Type())), 1)
	return nil
}

func (m *Module) hooks(r module.Run) Hooks {
	return Hooks{
		BMC: func(op string, fields map[string]any, fn func(ctx context.Context) error) error {
			// a BMC call: recorded once, as the iLO call it is
			return module.Record(r, "ilo."+op, fields, fn)
		},
		Published: func(p Published) error {
			return r.Artifact(p.Kind, p.Location)
		},
	}
}

// Open implements module.Module.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	t := L.NewTable()
	media := func(L *lua.LState, op string) *Media {
		md, err := m.Media(r)
		if err != nil {
			module.Raise(L, op, err)
		}
		if dir, err := r.Paths().WorkDir(); err == nil {
			md.TempDir = dir // parameter floppies are built in the run's work directory
		}
		return md
	}
	// sandboxRef checks an image reference against the run's sandbox: a
	// local file must be readable (it is returned resolved), a swift:
	// object of the media container must not be another node's.
	sandboxRef := func(L *lua.LState, op string, md *Media, ref string) string {
		k, a, b, err := ParseRef(ref)
		if err != nil {
			module.Raise(L, op, err)
		}
		switch k {
		case RefLocal:
			p, err := r.Paths().Read(a)
			if err != nil {
				module.Raise(L, op, err)
			}
			return p
		case RefSwift:
			if a == "" || a == md.Container || (md.Swift != nil && a == md.Swift.Config().Container) {
				if err := module.CheckName(r, op, b); err != nil {
					module.Raise(L, op, err)
				}
			}
		}
		return ref
	}
	checkName := func(L *lua.LState, op, name string) {
		if err := module.CheckName(r, op, name); err != nil {
			module.Raise(L, op, err)
		}
	}
	nodeUUID := func() string {
		if n := r.Node(); n != nil {
			return n.UUID()
		}
		return ""
	}
	h := m.hooks(r)

	// vmedia.publish(file, {name=, expires=, kind=}) -> url
	L.SetField(t, "publish", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.publish"
		file := L.CheckString(1)
		o := module.OptTable(L, 2, op)
		name := lua.LVAsString(o.RawGetString("name"))
		if name == "" {
			name = DefaultName(file, nodeUUID())
		}
		ttl := time.Duration(lua.LVAsNumber(o.RawGetString("expires"))) * time.Second
		kind := lua.LVAsString(o.RawGetString("kind"))
		checkName(L, op, name)
		file, err := r.Paths().Read(file)
		if err != nil {
			module.Raise(L, op, err)
		}
		md := media(L, op)
		var p Published
		module.Do(L, r, op, map[string]any{"file": file, "name": name, "store": md.StoreKind, "expires_s": ttl.Seconds()}, func(ctx context.Context) error {
			var err error
			p, err = md.Publish(ctx, file, name, kind, ttl)
			if err == nil {
				addSwiftKey(r, md)
				err = r.Artifact(p.Kind, p.Location)
			}
			return err
		})
		L.Push(lua.LString(p.URL))
		return 1
	}))

	// vmedia.resolve(ref, {name=, expires=}) -> url
	L.SetField(t, "resolve", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.resolve"
		ref := L.CheckString(1)
		o := module.OptTable(L, 2, op)
		name := lua.LVAsString(o.RawGetString("name"))
		ttl := time.Duration(lua.LVAsNumber(o.RawGetString("expires"))) * time.Second
		md := media(L, op)
		orig := ref
		ref = sandboxRef(L, op, md, ref)
		if k, a, _, err := ParseRef(orig); err == nil && k == RefLocal && name == "" {
			name = DefaultName(a, nodeUUID())
		}
		checkName(L, op, name)
		var u string
		module.Do(L, r, op, map[string]any{"ref": redactRef(orig)}, func(ctx context.Context) error {
			var p *Published
			var err error
			u, p, err = md.Resolve(ctx, ref, name, "", ttl)
			if err == nil {
				addSwiftKey(r, md)
				if p != nil {
					err = r.Artifact(p.Kind, p.Location)
				}
			}
			return err
		})
		L.Push(lua.LString(u))
		return 1
	}))

	// vmedia.fetch(ref, path) -> local path (a local ref as it is, else downloaded to path)
	L.SetField(t, "fetch", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.fetch"
		ref := L.CheckString(1)
		dst := L.CheckString(2)
		md := media(L, op)
		orig := ref
		ref = sandboxRef(L, op, md, ref)
		if k, _, _, _ := ParseRef(ref); k != RefLocal {
			var err error
			if dst, err = r.Paths().Create(dst); err != nil {
				module.Raise(L, op, err)
			}
		}
		var p string
		module.Do(L, r, op, map[string]any{"ref": redactRef(orig), "path": dst}, func(ctx context.Context) error {
			var err error
			p, err = md.Fetch(ctx, m.httpClient(), ref, dst)
			return err
		})
		L.Push(lua.LString(p))
		return 1
	}))

	// vmedia.setup_for_boot(bmc, iso_ref, params) -> {floppy_url=, iso_url=}
	L.SetField(t, "setup_for_boot", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.setup_for_boot"
		bmc := checkBMC(L, 1, op)
		ref := L.CheckString(2)
		params := module.StringMap(module.OptTable(L, 3, op))
		md := media(L, op)
		orig := ref
		ref = sandboxRef(L, op, md, ref)
		var s Setup
		module.Do(L, r, op, map[string]any{"iso": redactRef(orig), "params": len(params), "store": md.StoreKind}, func(ctx context.Context) error {
			var err error
			s, err = md.SetupForBoot(ctx, bmc, nodeUUID(), ref, params, h)
			addSwiftKey(r, md)
			return err
		})
		res := L.NewTable()
		if s.FloppyURL != "" {
			res.RawSetString("floppy_url", lua.LString(s.FloppyURL))
		}
		res.RawSetString("iso_url", lua.LString(s.ISOURL))
		L.Push(res)
		return 1
	}))

	// vmedia.eject_all(bmc)
	L.SetField(t, "eject_all", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.eject_all"
		bmc := checkBMC(L, 1, op)
		module.Do(L, r, op, nil, func(ctx context.Context) error {
			return EjectAll(ctx, bmc, h)
		})
		return 0
	}))

	// vmedia.cleanup([node][, bmc]) -> {deleted={...}, errors={location=msg}}
	L.SetField(t, "cleanup", L.NewFunction(func(L *lua.LState) int {
		const op = "vmedia.cleanup"
		var bmc BMC
		ref, named := "", false
		for i := 1; i <= L.GetTop(); i++ {
			switch v := L.Get(i).(type) {
			case lua.LString:
				ref, named = string(v), true
			case *lua.LTable:
				ref, named = lua.LVAsString(v.RawGetString("uuid")), true
				if ref == "" {
					ref = lua.LVAsString(v.RawGetString("name"))
				}
				if ref == "" {
					L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("argument #%d (node): the table has no uuid or name", i)), 1)
				}
			case *lua.LUserData:
				bmc = checkBMC(L, i, op)
			case *lua.LNilType:
			default:
				L.Error(module.ErrorValue(L, module.CodeInvalid, op, fmt.Sprintf("argument #%d must be a node, a node uuid or a BMC, got %s", i, v.Type())), 1)
			}
		}
		if named && strings.TrimSpace(ref) == "" {
			L.Error(module.ErrorValue(L, module.CodeInvalid, op, "the node argument is empty: pass the run's node or nothing"), 1)
		}
		// only the run's node: another node's media (or any, for a node-less run) are refused
		uuid, err := module.RunNode(r, op, ref)
		if err != nil {
			module.Raise(L, op, err)
		}
		md := media(L, op)
		var res CleanupResult
		module.Do(L, r, op, map[string]any{"node": uuid, "eject": bmc != nil}, func(ctx context.Context) error {
			var err error
			res, err = md.Cleanup(ctx, r, uuid, bmc, h)
			return err
		})
		for loc, msg := range res.Errors {
			r.Log(slog.LevelWarn, "vmedia cleanup: could not delete", map[string]any{"location": loc, "error": msg})
		}
		out := L.NewTable()
		out.RawSetString("deleted", module.ToLua(L, res.Deleted))
		errs := L.NewTable()
		for k, v := range res.Errors {
			errs.RawSetString(k, lua.LString(v))
		}
		out.RawSetString("errors", errs)
		L.Push(out)
		return 1
	}))

	// vmedia.store() -> "swift" | "web"
	L.SetField(t, "store", L.NewFunction(func(L *lua.LState) int {
		md := media(L, "vmedia.store")
		L.Push(lua.LString(md.StoreKind))
		return 1
	}))
	return t
}

// StartWebStore starts the built-in web store now (instead of on the first
// publish) when it is the configured publisher, and returns it; it returns
// nil when Swift is the publisher. `lightsout serve` calls it at start-up.
func (m *Module) StartWebStore(cfg module.Config) (*webstore.Server, error) {
	sc, err := swift.ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	w, err := WebConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	if UseSwift(sc, w) {
		return nil, nil
	}
	s, _, err := m.webStore(w)
	return s, err
}

// httpClient is the client downloads use (no overall timeout: the run's
// context bounds them).
func (m *Module) httpClient() *http.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.http == nil {
		m.http = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 60 * time.Second, MaxIdleConnsPerHost: 4}}
	}
	return m.http
}
