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
		return nil, module.Errorf(module.CodeInvalid, "swift", "%v", err)
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

func seconds2(v lua.LValue) time.Duration {
	return time.Duration(float64(lua.LVAsNumber(v)) * float64(time.Second))
}

// Open implements module.Module.
func (m *Module) Open(L *lua.LState, r module.Run) lua.LValue {
	t := L.NewTable()
	client := func(L *lua.LState, op string) *Client {
		c, err := m.Client(r)
		if err != nil {
			module.Raise(L, op, err)
		}
		return c
	}
	container := func(c *Client, o *lua.LTable) string {
		if s := lua.LVAsString(o.RawGetString("container")); s != "" {
			return s
		}
		return c.Config().Container
	}
	secretKey := func(c *Client) {
		if k, err := c.TempURLKey(r.Context()); err == nil {
			r.AddSecret(k)
		}
	}
	tempURL := func(ctx context.Context, c *Client, cont, obj string, o *lua.LTable) (string, error) {
		d, err := tempurl.ParseDigest(lua.LVAsString(o.RawGetString("digest")))
		if err != nil {
			return "", module.Errorf(module.CodeInvalid, "swift.temp_url", "digest: %v", err)
		}
		opts := TempURLOptions{
			Method:   lua.LVAsString(o.RawGetString("method")),
			Filename: lua.LVAsString(o.RawGetString("filename")),
		}
		if lua.LVAsString(o.RawGetString("digest")) != "" {
			opts.Digest = d
		}
		u, err := c.TempURL(ctx, cont, obj, seconds2(o.RawGetString("expires")), opts)
		secretKey(c)
		return u, err
	}

	// checkObject refuses, in the media container, an object named for
	// another node (image-<uuid>, boot-<uuid>.iso, <uuid>-…): a script
	// may act only on its run's node's media.
	checkObject := func(L *lua.LState, op string, c *Client, cont, obj string) {
		if cont != c.Config().Container {
			return
		}
		if err := module.CheckName(r, op, obj); err != nil {
			module.Raise(L, op, err)
		}
	}

	// fileArgs reads the (file, {container=, name=, ...}) arguments of
	// upload and publish; name defaults to the file's base name. The file
	// must be readable in the run's sandbox.
	fileArgs := func(L *lua.LState, op string) (file string, o *lua.LTable, c *Client, cont, name string) {
		file = L.CheckString(1)
		o = module.OptTable(L, 2, op)
		c = client(L, op)
		cont = container(c, o)
		if name = lua.LVAsString(o.RawGetString("name")); name == "" {
			name = filepath.Base(file)
		}
		checkObject(L, op, c, cont, name)
		resolved, err := r.Paths().Read(file)
		if err != nil {
			module.Raise(L, op, err)
		}
		return resolved, o, c, cont, name
	}

	// swift.upload(file, {container=, name=, expires=}) -> {container, object, bytes, segments}
	L.SetField(t, "upload", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.upload"
		file, o, c, cont, name := fileArgs(L, op)
		after := seconds2(o.RawGetString("expires"))
		var res Result
		module.Do(L, r, op, map[string]any{"file": file, "container": cont, "object": name, "delete_after_s": after.Seconds()}, func(ctx context.Context) error {
			var err error
			res, err = c.UploadFile(ctx, cont, name, file, UploadOptions{DeleteAfter: after})
			if err == nil {
				err = r.Artifact("swift", "swift:"+cont+"/"+name)
			}
			return err
		})
		L.Push(module.ToLua(L, map[string]any{"container": res.Container, "object": res.Object, "bytes": res.Bytes, "segments": res.Segments}))
		return 1
	}))

	// swift.publish(file, {container=, name=, expires=}) -> temp URL
	L.SetField(t, "publish", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.publish"
		file, o, c, cont, name := fileArgs(L, op)
		ttl := seconds2(o.RawGetString("expires"))
		if ttl <= 0 {
			ttl = c.Config().Expiry
		}
		var u string
		module.Do(L, r, op, map[string]any{"file": file, "container": cont, "object": name, "expires_s": ttl.Seconds()}, func(ctx context.Context) error {
			if _, err := c.UploadFile(ctx, cont, name, file, UploadOptions{DeleteAfter: ttl}); err != nil {
				return err
			}
			if err := r.Artifact("swift", "swift:"+cont+"/"+name); err != nil {
				return err
			}
			var err error
			u, err = tempURL(ctx, c, cont, name, o)
			return err
		})
		L.Push(lua.LString(u))
		return 1
	}))

	// swift.temp_url(object, {container=, expires=, method=, digest=, filename=}) -> URL
	L.SetField(t, "temp_url", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.temp_url"
		obj := L.CheckString(1)
		o := module.OptTable(L, 2, op)
		c := client(L, op)
		cont := container(c, o)
		checkObject(L, op, c, cont, obj)
		var u string
		module.Do(L, r, op, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
			var err error
			u, err = tempURL(ctx, c, cont, obj, o)
			return err
		})
		L.Push(lua.LString(u))
		return 1
	}))

	// swift.delete(object, {container=})  (missing objects are fine)
	L.SetField(t, "delete", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.delete"
		obj := L.CheckString(1)
		o := module.OptTable(L, 2, op)
		c := client(L, op)
		cont := container(c, o)
		checkObject(L, op, c, cont, obj)
		module.Do(L, r, op, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
			if err := c.DeleteObject(ctx, cont, obj); err != nil {
				return err
			}
			return markDeleted(r, "swift:"+cont+"/"+obj)
		})
		return 0
	}))

	// swift.stat(object, {container=}) -> bytes (raises not_found)
	L.SetField(t, "stat", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.stat"
		obj := L.CheckString(1)
		o := module.OptTable(L, 2, op)
		c := client(L, op)
		cont := container(c, o)
		checkObject(L, op, c, cont, obj)
		var n int64
		module.Do(L, r, op, map[string]any{"container": cont, "object": obj}, func(ctx context.Context) error {
			var err error
			n, err = c.Stat(ctx, cont, obj)
			return err
		})
		L.Push(lua.LNumber(n))
		return 1
	}))

	// swift.glance_temp_url(image_uuid) -> URL (no network)
	L.SetField(t, "glance_temp_url", L.NewFunction(func(L *lua.LState) int {
		const op = "swift.glance_temp_url"
		id := L.CheckString(1)
		cfg, err := ConfigFrom(r.Config())
		if err != nil {
			module.Raise(L, op, module.Errorf(module.CodeInvalid, op, "%v", err))
		}
		r.AddSecret(cfg.Glance.TempURLKey)
		var u string
		module.Do(L, r, op, map[string]any{"image": id}, func(ctx context.Context) error {
			var err error
			u, err = GlanceTempURL(cfg.Glance, id, time.Now())
			return err
		})
		L.Push(lua.LString(u))
		return 1
	}))
	return t
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
