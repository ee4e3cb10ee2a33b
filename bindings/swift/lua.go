package swift

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
	"github.com/lightsout/lightsout/runtime/module"
)

// Module is the long-lived `swift` Lua module; it caches one client per
// configuration.
type Module struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// NewModule returns the swift module.
func NewModule() *Module { return &Module{clients: map[string]*Client{}} }

// Name implements module.Module.
func (m *Module) Name() string { return "swift" }

// Client returns the (cached) client for a run's configuration and
// registers its secrets with the run.
func (m *Module) Client(r module.Run) (*Client, error) {
	cfg, err := ConfigFrom(r.Config())
	if err != nil {
		return nil, &module.Error{Code: module.CodeInvalid, Message: err.Error(), Err: err}
	}
	r.AddSecret(cfg.Password)
	r.AddSecret(cfg.TempURLKey)
	r.AddSecret(cfg.Glance.TempURLKey)
	k := fmt.Sprintf("%#v", cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.clients[k]; c != nil {
		return c, nil
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	m.clients[k] = c
	return c, nil
}

// Open implements module.Module: require("swift") gives the functions of api.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	return api().Table(L, m.Name(), &face{m: m, r: r})
}

// face is the swift module opened for one run.
type face struct {
	m *Module
	r module.Run
}

// api is the Lua face of swift: every function takes an object or file and
// an optional options table; objects of the media container named for
// another node (image-<uuid>, boot-<uuid>.iso, <uuid>-…) are refused.
func api() module.API[*face] {
	return module.API[*face]{
		// swift.upload(file, {container=, name=, expires=}) -> {container, object, bytes, segments}
		"upload": func(f *face, a *module.Args) int {
			after := a.Opts(2).Duration("expires", 0)
			file, _, c, cont, name := f.fileArgs(a)
			var res Result
			a.Do(f.r, map[string]any{"file": file, "container": cont, "object": name, "delete_after_s": after.Seconds()}, func(ctx context.Context) error {
				var err error
				res, err = c.UploadFile(ctx, cont, name, file, UploadOptions{DeleteAfter: after})
				if err == nil {
					err = f.r.Artifact("swift", "swift:"+cont+"/"+name)
				}
				return err
			})
			a.L.Push(module.ToLua(a.L, map[string]any{"container": res.Container, "object": res.Object, "bytes": res.Bytes, "segments": res.Segments}))
			return 1
		},
		// swift.publish(file, {container=, name=, expires=, method=, digest=, filename=}) -> temp URL
		"publish": func(f *face, a *module.Args) int {
			o := a.Opts(2)
			ttl, topts := o.Duration("expires", 0), f.tempURLOpts(a, o)
			file, _, c, cont, name := f.fileArgs(a)
			signTTL := ttl
			if ttl == 0 {
				ttl = c.Config().Expiry
			}
			var u string
			a.Do(f.r, map[string]any{"file": file, "container": cont, "object": name, "expires_s": ttl.Seconds()}, func(ctx context.Context) error {
				if _, err := c.UploadFile(ctx, cont, name, file, UploadOptions{DeleteAfter: ttl}); err != nil {
					return err
				}
				if err := f.r.Artifact("swift", "swift:"+cont+"/"+name); err != nil {
					return err
				}
				var err error
				u, err = f.tempURL(ctx, c, cont, name, signTTL, topts)
				return err
			})
			a.L.Push(lua.LString(u))
			return 1
		},
		// swift.temp_url(object, {container=, expires=, method=, digest=, filename=}) -> URL
		"temp_url": func(f *face, a *module.Args) int {
			o := a.Opts(2)
			ttl, topts := o.Duration("expires", 0), f.tempURLOpts(a, o)
			obj, _, c, cont := f.objectArgs(a)
			var u string
			a.Do(f.r, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
				var err error
				u, err = f.tempURL(ctx, c, cont, obj, ttl, topts)
				return err
			})
			a.L.Push(lua.LString(u))
			return 1
		},
		// swift.delete(object, {container=})  (missing objects are fine)
		"delete": func(f *face, a *module.Args) int {
			obj, _, c, cont := f.objectArgs(a)
			a.Do(f.r, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
				if err := c.DeleteObject(ctx, cont, obj); err != nil {
					return err
				}
				return markDeleted(f.r, "swift:"+cont+"/"+obj)
			})
			return 0
		},
		// swift.stat(object, {container=}) -> bytes (raises not_found)
		"stat": func(f *face, a *module.Args) int {
			obj, _, c, cont := f.objectArgs(a)
			var n int64
			a.Do(f.r, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
				var err error
				n, err = c.Stat(ctx, cont, obj)
				return err
			})
			a.L.Push(lua.LNumber(n))
			return 1
		},
		// swift.glance_temp_url(image_uuid) -> URL (no network)
		"glance_temp_url": func(f *face, a *module.Args) int {
			id := a.NonEmpty(1, "image_uuid")
			cfg, err := ConfigFrom(f.r.Config())
			if err != nil {
				a.Raise(&module.Error{Code: module.CodeInvalid, Message: err.Error(), Err: err})
			}
			f.r.AddSecret(cfg.Glance.TempURLKey)
			var u string
			a.Do(f.r, map[string]any{"image": id}, func(ctx context.Context) error {
				var err error
				u, err = GlanceTempURL(cfg.Glance, id, time.Now())
				return err
			})
			a.L.Push(lua.LString(u))
			return 1
		},
	}
}

// client returns the run's client, raising a configuration error.
func (f *face) client(a *module.Args) *Client {
	c, err := f.m.Client(f.r)
	a.Check(err)
	return c
}

// container is opts.container, else the configured media container.
func container(c *Client, o module.Opts) string {
	return o.String("container", c.Config().Container)
}

// checkObject refuses, in the media container, an object named for
// another node: a script may act only on its run's node's media.
func (f *face) checkObject(a *module.Args, c *Client, cont, obj string) {
	if cont == c.Config().Container {
		a.Check(module.CheckName(f.r, a.Op, obj))
	}
}

// objectArgs reads the (object, {container=, ...}) arguments.
func (f *face) objectArgs(a *module.Args) (obj string, o module.Opts, c *Client, cont string) {
	obj = a.NonEmpty(1, "object")
	o = a.Opts(2)
	c = f.client(a)
	cont = container(c, o)
	f.checkObject(a, c, cont, obj)
	return obj, o, c, cont
}

// fileArgs reads the (file, {container=, name=, ...}) arguments of upload
// and publish; name defaults to the file's base name. The file must be
// readable in the run's sandbox.
func (f *face) fileArgs(a *module.Args) (file string, o module.Opts, c *Client, cont, name string) {
	file = a.NonEmpty(1, "file")
	o = a.Opts(2)
	c = f.client(a)
	cont = container(c, o)
	name = o.String("name", filepath.Base(file))
	f.checkObject(a, c, cont, name)
	resolved, err := f.r.Paths().Read(file)
	a.Check(err)
	return resolved, o, c, cont, name
}

// tempURLOpts reads opts.method, opts.digest and opts.filename.
func (f *face) tempURLOpts(a *module.Args, o module.Opts) TempURLOptions {
	opts := TempURLOptions{Method: o.String("method", ""), Filename: o.String("filename", "")}
	if s := o.String("digest", ""); s != "" {
		d, err := tempurl.ParseDigest(s)
		if err != nil {
			a.Invalid("opts.digest: %v", err)
		}
		opts.Digest = d
	}
	return opts
}

// tempURL signs a temp URL and registers the account's key as a secret.
func (f *face) tempURL(ctx context.Context, c *Client, cont, obj string, ttl time.Duration, opts TempURLOptions) (string, error) {
	u, err := c.TempURL(ctx, cont, obj, ttl, opts)
	if k, kerr := c.TempURLKey(f.r.Context()); kerr == nil {
		f.r.AddSecret(k)
	}
	return u, err
}

// markDeleted marks the run's node's artifacts at location deleted (an
// object the script deleted itself).
func markDeleted(r module.Run, location string) error {
	n := r.Node()
	if n == nil {
		return nil
	}
	arts, err := r.Artifacts(n.UUID())
	if err != nil {
		return err
	}
	for _, a := range arts {
		if a.Location == location {
			if err := r.ArtifactDeleted(a.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
