package vmedia

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
		return nil, &module.Error{Code: module.CodeInvalid, Message: err.Error(), Err: err}
	}
	w, err := WebConfigFrom(cfg)
	if err != nil {
		return nil, &module.Error{Code: module.CodeInvalid, Message: err.Error(), Err: err}
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
		return nil, &module.Error{Code: module.CodeError, Message: "starting the built-in web store: " + err.Error(), Err: err}
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

// checkBMC returns argument n as the BMC of an ilo.client (ilo.connect):
// vmedia records each BMC step itself, so it takes the client that does
// not record too, and each BMC call is one event.
func checkBMC(a *module.Args, n int) BMC {
	if ud, ok := a.L.Get(n).(*lua.LUserData); ok {
		if u, ok := ud.Value.(interface{ Unrecorded() iloapi.Client }); ok {
			return u.Unrecorded()
		}
		if b, ok := ud.Value.(BMC); ok {
			return b
		}
	}
	a.Invalid("argument #%d (bmc) must be an ilo.client from ilo.connect(node), got %s", n, a.L.Get(n).Type())
	return nil
}

func (m *Module) hooks(r module.Run) Hooks {
	return Hooks{
		BMC: func(op string, fields map[string]any, fn func(ctx context.Context) error) error {
			// a BMC call: recorded once, as the iLO call it is
			return module.Record(r, "ilo."+op, fields, fn)
		},
		// no Published hook: Media.Record records each object before it is stored
	}
}

// Open implements module.Module: require("vmedia") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r, h: m.hooks(r)})
}

// face is the vmedia module opened for one run.
type face struct {
	m *Module
	r module.Run
	h Hooks
}

// api is the Lua face of vmedia.
func api() module.API[*face] {
	return module.API[*face]{
		"publish":        (*face).publish,
		"resolve":        (*face).resolve,
		"fetch":          (*face).fetch,
		"setup_for_boot": (*face).setupForBoot,
		"eject_all":      (*face).ejectAll,
		"cleanup":        (*face).cleanup,
		"store":          (*face).store,
	}
}

// media returns the run's Media (configuration errors raised).
func (f *face) media(a *module.Args) *Media {
	md, err := f.m.Media(f.r)
	a.Check(err)
	md.Record = f.r.Artifact
	if dir, err := f.r.Paths().WorkDir(); err == nil {
		md.TempDir = dir // parameter floppies are built in the run's work directory
	}
	return md
}

// nodeUUID is the run's node UUID ("" for a node-less run).
func (f *face) nodeUUID() string {
	if n := f.r.Node(); n != nil {
		return n.UUID()
	}
	return ""
}

// sandboxRef checks an image reference against the run's sandbox: a local
// file must be readable (it is returned resolved), a swift: object of the
// media container must not be another node's.
func (f *face) sandboxRef(a *module.Args, md *Media, ref string) string {
	k, x, y, err := ParseRef(ref)
	a.Check(err)
	switch k {
	case RefLocal:
		p, err := f.r.Paths().Read(x)
		a.Check(err)
		return p
	case RefSwift:
		if x == "" || x == md.Container || (md.Swift != nil && x == md.Swift.Config().Container) {
			a.Check(module.CheckName(f.r, a.Op, y))
		}
	}
	return ref
}

// publish implements vmedia.publish(file, {name=, expires=, kind=}) -> url,
// location (the artifact location, "web:<name>" or "swift:<container>/<name>").
func (f *face) publish(a *module.Args) int {
	file := a.NonEmpty(1, "file")
	o := a.Opts(2)
	name := o.String("name", "")
	if name == "" {
		name = DefaultName(file, f.nodeUUID())
	}
	ttl := o.Duration("expires", 0)
	kind := o.String("kind", "")
	a.Check(module.CheckName(f.r, a.Op, name))
	file, err := f.r.Paths().Read(file)
	a.Check(err)
	md := f.media(a)
	var p Published
	a.Do(f.r, map[string]any{"file": file, "name": name, "store": md.StoreKind, "expires_s": ttl.Seconds()}, func(ctx context.Context) error {
		var err error
		p, err = md.Publish(ctx, file, name, kind, ttl) // recorded before it is stored (Media.Record)
		if err == nil {
			addSwiftKey(f.r, md)
		}
		return err
	})
	a.L.Push(lua.LString(p.URL))
	a.L.Push(lua.LString(p.Location))
	return 2
}

// resolve implements vmedia.resolve(ref, {name=, expires=}) -> url.
func (f *face) resolve(a *module.Args) int {
	orig := a.NonEmpty(1, "ref")
	o := a.Opts(2)
	name := o.String("name", "")
	ttl := o.Duration("expires", 0)
	md := f.media(a)
	ref := f.sandboxRef(a, md, orig)
	if k, x, _, err := ParseRef(orig); err == nil && k == RefLocal && name == "" {
		name = DefaultName(x, f.nodeUUID())
	}
	a.Check(module.CheckName(f.r, a.Op, name))
	var u string
	a.Do(f.r, map[string]any{"ref": redactRef(orig)}, func(ctx context.Context) error {
		var err error
		u, _, err = md.Resolve(ctx, ref, name, "", ttl) // a published file is recorded first (Media.Record)
		if err == nil {
			addSwiftKey(f.r, md)
		}
		return err
	})
	a.L.Push(lua.LString(u))
	return 1
}

// fetch implements vmedia.fetch(ref, path) -> local path (a local ref as
// it is, else downloaded to path).
func (f *face) fetch(a *module.Args) int {
	orig := a.NonEmpty(1, "ref")
	dst := a.NonEmpty(2, "path")
	md := f.media(a)
	ref := f.sandboxRef(a, md, orig)
	if k, _, _, _ := ParseRef(ref); k != RefLocal {
		var err error
		dst, err = f.r.Paths().Create(dst)
		a.Check(err)
	}
	var p string
	a.Do(f.r, map[string]any{"ref": redactRef(orig), "path": dst}, func(ctx context.Context) error {
		var err error
		p, err = md.Fetch(ctx, f.m.httpClient(), ref, dst)
		return err
	})
	a.L.Push(lua.LString(p))
	return 1
}

// setupForBoot implements vmedia.setup_for_boot(bmc, iso_ref, params) ->
// {floppy_url=, iso_url=}.
func (f *face) setupForBoot(a *module.Args) int {
	bmc := checkBMC(a, 1)
	orig := a.NonEmpty(2, "iso_ref")
	params := module.StringMap(a.OptTable(3, "params"))
	md := f.media(a)
	ref := f.sandboxRef(a, md, orig)
	var s Setup
	a.Do(f.r, map[string]any{"iso": redactRef(orig), "params": len(params), "store": md.StoreKind}, func(ctx context.Context) error {
		var err error
		s, err = md.SetupForBoot(ctx, bmc, f.nodeUUID(), ref, params, f.h)
		addSwiftKey(f.r, md)
		return err
	})
	res := a.L.NewTable()
	if s.FloppyURL != "" {
		res.RawSetString("floppy_url", lua.LString(s.FloppyURL))
	}
	res.RawSetString("iso_url", lua.LString(s.ISOURL))
	a.L.Push(res)
	return 1
}

// ejectAll implements vmedia.eject_all(bmc).
func (f *face) ejectAll(a *module.Args) int {
	bmc := checkBMC(a, 1)
	a.Do(f.r, nil, func(ctx context.Context) error {
		return EjectAll(ctx, bmc, f.h)
	})
	return 0
}

// cleanup implements vmedia.cleanup([node][, bmc][, {kind=, keep=}]) ->
// {deleted={...}, errors={location=msg}}: the run's node's published media
// are deleted (and ejected, given its BMC); opts.kind limits it to the
// artifacts of that kind, opts.keep spares the one at that location.
func (f *face) cleanup(a *module.Args) int {
	uuid := a.Node(f.r, 1)
	var bmc BMC
	if a.L.Get(2) != lua.LNil {
		bmc = checkBMC(a, 2)
	}
	o := a.Opts(3)
	kind, keep := o.String("kind", ""), o.String("keep", "")
	var match func(module.Artifact) bool
	if kind != "" || keep != "" {
		match = func(art module.Artifact) bool {
			return (kind == "" || art.Kind == kind) && (keep == "" || art.Location != keep)
		}
	}
	md := f.media(a)
	var res CleanupResult
	fields := map[string]any{"node": uuid, "eject": bmc != nil}
	if kind != "" {
		fields["kind"] = kind
	}
	a.Do(f.r, fields, func(ctx context.Context) error {
		var err error
		res, err = md.CleanupWhere(ctx, f.r, uuid, bmc, f.h, match)
		return err
	})
	for loc, msg := range res.Errors {
		f.r.Log(slog.LevelWarn, "vmedia cleanup: could not delete", map[string]any{"location": loc, "error": msg})
	}
	out := a.L.NewTable()
	out.RawSetString("deleted", module.ToLua(a.L, res.Deleted))
	errs := a.L.NewTable()
	for k, v := range res.Errors {
		errs.RawSetString(k, lua.LString(v))
	}
	out.RawSetString("errors", errs)
	a.L.Push(out)
	return 1
}

// store implements vmedia.store() -> "swift" | "web".
func (f *face) store(a *module.Args) int {
	a.L.Push(lua.LString(f.media(a).StoreKind))
	return 1
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
