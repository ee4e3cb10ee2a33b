package ilo

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/redfish"
	"github.com/lightsout/lightsout/runtime/module"
)

// Keys in driver_internal_info.
const (
	InternalProbe   = "ilo_probe"
	InternalCertPin = "ilo_cert_pin"
)

// ConfigMaxRequests is the [ilo] option for requests in flight per iLO.
const ConfigMaxRequests = "max_requests_per_ilo"

// ConfigSessionIdle is the [ilo] option: seconds an unused shared Redfish
// session lives before it is deleted (default 300).
const ConfigSessionIdle = "session_idle"

// ConfigMaxConnections is the [ilo] option: iLO connections open at once
// in the whole process, over every node and run (default 1024).
const ConfigMaxConnections = "max_connections"

// ConfigMaxSessions is the [ilo] option: shared Redfish sessions kept
// logged in while unused, over every iLO (default 1000); an unused
// session beyond it is deleted at once instead of after session_idle.
const ConfigMaxSessions = "max_sessions"

// Module is the `ilo` Lua module. One value lives for the whole process:
// it holds the per-iLO limiters shared by every run.
type Module struct {
	// MaxRequests overrides [ilo] max_requests_per_ilo when > 0.
	MaxRequests int
	// Logger receives the process-level events of the shared Redfish
	// sessions (logouts outside any run: idle expiry, shutdown), at
	// debug level; the App sets its own (--log-level, redaction). Nil
	// discards them (never slog.Default). Set it before the first run.
	Logger *slog.Logger

	once     sync.Once
	limiters *iloapi.Limiters
	conns    *iloapi.ConnLimiter
	sessOnce sync.Once
	sessions *redfish.Sessions
	cas      iloapi.CAPools // parsed ilo_verify_ca bundles, shared by every run
}

// Sessions returns the process-wide Redfish sessions (one per iLO and
// user, shared by every run), idle expiry from [ilo] session_idle.
func (m *Module) Sessions(cfg module.Config) *redfish.Sessions {
	m.sessOnce.Do(func() {
		m.sessions = redfish.NewSessions()
		if cfg != nil {
			if v, ok := cfg.Get("ilo", ConfigSessionIdle); ok && strings.TrimSpace(v) != "" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f > 0 {
					m.sessions.Idle = time.Duration(f * float64(time.Second))
				}
			}
		}
		m.sessions.MaxIdle = configInt(cfg, ConfigMaxSessions, redfish.DefaultMaxIdleSessions)
		m.sessions.OnEvent = m.logSession
	})
	return m.sessions
}

// logSession logs a session event that happened outside any run (the
// ones inside a run are that run's "ilo.session_*" events). They are
// routine (one per iLO at shutdown or after session_idle), so debug.
// A SessionEvent never carries the token; the password is not in it.
func (m *Module) logSession(e redfish.SessionEvent) {
	lg := m.Logger
	if lg == nil {
		return
	}
	lg.LogAttrs(context.Background(), slog.LevelDebug, "iLO Redfish session "+e.Name,
		slog.String("address", e.Address), slog.String("reason", e.Reason), slog.String("session", e.Session))
}

// Close deletes every shared Redfish session (each bounded by its iLO's
// client_timeout, at most 10 s); the App calls it at shutdown.
func (m *Module) Close() error {
	m.sessOnce.Do(func() {}) // nothing was opened: nothing to delete
	if m.sessions != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		m.sessions.Close(ctx)
	}
	return nil
}

var _ module.Module = (*Module)(nil)

// NewModule returns the ilo module.
func NewModule() *Module { return &Module{} }

// Name implements module.Module.
func (m *Module) Name() string { return "ilo" }

// Limiters returns the shared limiters, configured from cfg on first use.
func (m *Module) Limiters(cfg module.Config) *iloapi.Limiters {
	m.once.Do(func() {
		n := m.MaxRequests
		if n <= 0 && cfg != nil {
			if v, ok := cfg.Get("ilo", ConfigMaxRequests); ok {
				if i, err := strconv.Atoi(v); err == nil && i > 0 {
					n = i
				}
			}
		}
		if n <= 0 {
			n = iloapi.DefaultMaxRequests
		}
		m.limiters = iloapi.NewLimiters(n)
		m.conns = iloapi.NewConnLimiter(configInt(cfg, ConfigMaxConnections, iloapi.DefaultMaxConnections))
	})
	return m.limiters
}

// Conns returns the process-wide bound on open iLO connections,
// configured from cfg ([ilo] max_connections) on first use.
func (m *Module) Conns(cfg module.Config) *iloapi.ConnLimiter {
	m.Limiters(cfg)
	return m.conns
}

// configInt reads a positive [ilo] integer option (def when unset or not
// positive; the config's types reject bad values before a run).
func configInt(cfg module.Config, key string, def int) int {
	if cfg == nil {
		return def
	}
	if v, ok := cfg.Get("ilo", key); ok {
		if i, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && i > 0 {
			return i
		}
	}
	return def
}

// Connect builds a recorded client for run from driver_info (or a plain
// table's fields). When node is non-nil the probe and the TOFU pin are
// cached in its driver_internal_info.
func (m *Module) Connect(run module.Run, info map[string]any, node module.Node) (*Recorded, *Router, error) {
	o, err := iloapi.ParseDriverInfo(withConfigDefaults(info, run.Config()))
	if err != nil {
		return nil, nil, &module.Error{Code: module.CodeInvalid, Operation: "ilo.connect", Message: err.Error()}
	}
	run.AddSecret(o.Password)
	cfg := Config{Limiter: m.Limiters(run.Config()).Get(o.Address()), Conns: m.Conns(run.Config()), ResetSettle: resetSettle(run.Config()),
		Sessions: m.Sessions(run.Config()), CAs: &m.cas}
	cfg.OnSession = func(e redfish.SessionEvent) {
		// The session's login and logout are events of the run that
		// caused them (the calls themselves stay "call" events).
		run.Event("state", "ilo.session_"+e.Name, map[string]any{"address": e.Address, "reason": e.Reason, "session": e.Session})
	}
	name := ""
	if node != nil {
		name = node.Name()
		internal := node.Internal()
		if p, ok := ProbeFromMap(asMap(internal[InternalProbe])); ok {
			cfg.Probe = &p
		}
		if o.TOFU && o.CertPin == "" {
			if s, ok := internal[InternalCertPin].(string); ok && s != "" {
				if fp, err := iloapi.NormalizeFingerprint(s); err == nil {
					o.CertPin = fp
				}
			}
		}
		cfg.OnProbe = func(p Probe) {
			if err := node.SetInternal(InternalProbe, p.Map()); err != nil {
				run.Log(slog.LevelWarn, "cannot cache the iLO probe", map[string]any{"error": err.Error()})
			}
		}
		cfg.OnPin = func(fp string) {
			if err := node.SetInternal(InternalCertPin, fp); err != nil {
				run.Log(slog.LevelWarn, "cannot store the iLO certificate pin", map[string]any{"error": err.Error()})
			}
			run.Event("state", "ilo.cert_pinned", map[string]any{"address": o.Address(), "fingerprint": fp})
		}
	}
	r, err := Connect(o, cfg)
	if err != nil {
		return nil, nil, &module.Error{Code: module.CodeInvalid, Operation: "ilo.connect", Message: err.Error(), Err: err}
	}
	// When the run ends its connections go at once (their goroutines,
	// TLS buffers and the iLO's sockets), not after the idle timeout:
	// a fleet run would otherwise keep every finished node's connections.
	// (A shared Redfish session stays; a later request dials again.)
	context.AfterFunc(run.Context(), r.t.Close)
	fields := map[string]any{"address": o.Address()}
	if name != "" {
		fields["node"] = name
	}
	return NewRecorded(r, run, fields), r, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// ClientType is the ilo.client userdata ilo.connect returns: its methods
// are the operations (luaMethods); other bindings take it as an argument
// with ClientType.Check.
var ClientType = module.Type[*Recorded]{Name: "ilo.client", Module: "ilo", From: "ilo.connect(node)"}

// Open implements module.Module: require("ilo") gives {connect = fn}.
func (m *Module) Open(L *lua.LState, run module.Run) lua.LValue {
	ClientType.Register(L, luaMethods(), func(c *Recorded) string {
		return fmt.Sprintf("ilo.client(%v)", c.fields["address"])
	})
	return module.API[module.Run]{
		// ilo.connect([node | {address=, username=, password=, ...}]) -> ilo.client
		"connect": func(run module.Run, a *module.Args) int {
			info, node, err := connectArgs(a.L, run)
			a.Check(err)
			c, _, err := m.Connect(run, info, node)
			a.Check(err)
			a.L.Push(ClientType.New(a.L, c))
			return 1
		},
	}.Table(L, m.Name(), run)
}

// connectArgs reads ilo.connect's argument: nothing (the run's node), a
// node table with driver_info, or a plain table with address/username/....
func connectArgs(L *lua.LState, run module.Run) (map[string]any, module.Node, error) {
	v := L.Get(1)
	runNode := run.Node()
	switch t := v.(type) {
	case *lua.LNilType:
		if runNode == nil {
			return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "this run has no node: pass a node table or {address=..., username=..., password=...}")
		}
		return runNode.DriverInfo(), runNode, nil
	case lua.LString:
		// the run's node by UUID or name, as every node argument
		if _, err := module.RunNode(run, "ilo.connect", string(t)); err != nil {
			return nil, nil, err
		}
		return runNode.DriverInfo(), runNode, nil
	case *lua.LTable:
		uuid := lua.LVAsString(t.RawGetString("uuid"))
		name := lua.LVAsString(t.RawGetString("name"))
		_, isNode := t.RawGetString("driver_info").(*lua.LTable)
		if isNode || uuid != "" || name != "" {
			// A node table: only the run's node (the persisted driver_info
			// is authoritative, decrypted in memory).
			ref := uuid
			if ref == "" {
				ref = name
			}
			if ref == "" {
				return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "the node table has no uuid or name")
			}
			if _, err := module.RunNode(run, "ilo.connect", ref); err != nil {
				return nil, nil, err
			}
			return runNode.DriverInfo(), runNode, nil
		}
		// Credentials the script brings itself: a BMC, not a node.
		return tableMap(t), nil, nil
	}
	return nil, nil, module.Errorf(module.CodeInvalid, "ilo.connect", "argument #1 must be nil (the run's node), the node (table, UUID or name) or {address=..., username=..., password=...}, got %s", v.Type())
}

func tableMap(t *lua.LTable) map[string]any {
	out := map[string]any{}
	t.ForEach(func(k, v lua.LValue) {
		if ks, ok := k.(lua.LString); ok {
			out[string(ks)] = module.FromLua(v)
		}
	})
	return out
}

// withConfigDefaults returns info with [ilo] client_timeout and client_port
// (validated at config load) filled in where driver_info sets neither name,
// as Ironic uses them as the defaults of driver_info's.
func withConfigDefaults(info map[string]any, c module.Config) map[string]any {
	if c == nil {
		return info
	}
	out, copied := info, false
	for _, k := range [][2]string{{"client_timeout", "timeout"}, {"client_port", "port"}} {
		if _, set := info[k[0]]; set {
			continue
		}
		if _, set := info[k[1]]; set {
			continue
		}
		v, ok := c.Get("ilo", k[0])
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if !copied {
			copied = true
			out = make(map[string]any, len(info)+2)
			for kk, vv := range info {
				out[kk] = vv
			}
		}
		out[k[0]] = strings.TrimSpace(v)
	}
	return out
}

// resetSettle reads [ilo] reset_ilo_settle (seconds; unset: the default).
func resetSettle(c module.Config) time.Duration {
	v, ok := c.Get("ilo", "reset_ilo_settle")
	if !ok || v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}
