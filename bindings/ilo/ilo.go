// Package ilo drives HPE iLO 3 to 7 through one interface named after
// proliantutils' IloClient: it probes the product name (RIBCL
// GET_PRODUCT_NAME, or Redfish when RIBCL is disabled or absent) and
// routes every operation to RIBCL (G7, Gen8) or Redfish (Gen9 with iLO 4
// >= 2.30, Gen10, Gen11, Gen12) with proliantutils' fall-backs. It also
// is the `ilo` Lua module (see Module).
package ilo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
	"github.com/lightsout/lightsout/bindings/ilo/redfish"
	"github.com/lightsout/lightsout/bindings/ilo/ribcl"
)

// Re-exported shared types.
type (
	// Client is every iLO operation, named after proliantutils.
	Client = iloapi.Client
	// Options is how to reach and trust one iLO.
	Options = iloapi.Options
	// VMStatus is the state of a virtual media slot.
	VMStatus = iloapi.VMStatus
	// EssentialProperties is the inspection result.
	EssentialProperties = iloapi.EssentialProperties
	// HealthData summarises sensors.
	HealthData = iloapi.HealthData
	// Sensor is one sensor reading.
	Sensor = iloapi.Sensor
	// License is one installed licence.
	License = iloapi.License
	// LicenseInfo is the licence in force and the iLO generation.
	LicenseInfo = iloapi.LicenseInfo
	// Limiters are the per-iLO request limiters of a process.
	Limiters = iloapi.Limiters
	// PinMismatchError names the pinned and the presented fingerprint.
	PinMismatchError = iloapi.PinMismatchError
)

// ParseDriverInfo builds Options from driver_info (see iloapi.ParseDriverInfo).
func ParseDriverInfo(info map[string]any) (Options, error) { return iloapi.ParseDriverInfo(info) }

// Probe is what the generation probe found; it is cached in the node's
// driver_internal_info under "ilo_probe".
type Probe struct {
	Address    string
	Model      string
	Generation int  // 7 for G7, 8 for Gen8, ... 0 when unknown
	RIBCL      bool // RIBCL answers and is used
	NoRedfish  bool // Redfish is known to be absent
	// ManagerType and Firmware come from the Redfish service root
	// ("iLO 6", "1.66"); empty where there is none. A cached probe is
	// re-done when the firmware changes.
	ManagerType string
	Firmware    string
}

// Map renders p for driver_internal_info.
func (p Probe) Map() map[string]any {
	return map[string]any{"address": p.Address, "model": p.Model, "generation": int64(p.Generation), "ribcl": p.RIBCL,
		"no_redfish": p.NoRedfish, "manager_type": p.ManagerType, "firmware": p.Firmware}
}

// ProbeFromMap reads a cached probe; ok is false when m is unusable.
func ProbeFromMap(m map[string]any) (Probe, bool) {
	if m == nil {
		return Probe{}, false
	}
	p := Probe{}
	p.Address, _ = m["address"].(string)
	p.Model, _ = m["model"].(string)
	switch g := m["generation"].(type) {
	case int64:
		p.Generation = int(g)
	case int:
		p.Generation = g
	case float64:
		p.Generation = int(g)
	}
	p.RIBCL, _ = m["ribcl"].(bool)
	p.NoRedfish, _ = m["no_redfish"].(bool)
	p.ManagerType, _ = m["manager_type"].(string)
	p.Firmware, _ = m["firmware"].(string)
	return p, p.Model != "" && p.Address != ""
}

var genRE = regexp.MustCompile(`\bGen(\d+)`)
var gRE = regexp.MustCompile(`\bG(\d+)\b`)

// GenerationOf returns the ProLiant generation in a product name: 7 for
// "ProLiant ML110 G7", 10 for "ProLiant DL360 Gen10"; 0 when unknown.
func GenerationOf(model string) int {
	if m := genRE.FindStringSubmatch(model); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if m := gRE.FindStringSubmatch(model); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// Config are the optional hooks of Connect.
type Config struct {
	// Limiter is the shared per-iLO limiter (nil: a private one).
	Limiter *iloapi.Limiter
	// Conns is the process-wide bound on open iLO connections (nil: none).
	Conns *iloapi.ConnLimiter
	// CAs shares the parsed ilo_verify_ca bundles between the process's
	// clients (nil: each client parses its own).
	CAs *iloapi.CAPools
	// Probe is a cached probe; it is used when its address matches.
	Probe *Probe
	// OnProbe is called once with a fresh probe (to persist it).
	OnProbe func(Probe)
	// OnPin is called once with the fingerprint recorded on first use.
	OnPin func(fingerprint string)
	// Debug receives the RIBCL/Redfish traffic with passwords masked.
	Debug io.Writer
	// Sessions is the process-wide Redfish session set (nil: the client
	// keeps one private session, deleted at Close).
	Sessions *redfish.Sessions
	// OnSession receives the Redfish session logins and logouts made by
	// this client's calls.
	OnSession func(redfish.SessionEvent)
	// ResetSettle is how long reset_ilo waits before it polls the iLO
	// again (0: 10 s, as proliantutils); polls follow every
	// min(ResetSettle, 5 s).
	ResetSettle time.Duration
}

// Router is the generation-routing Client: every operation (see ops.go)
// goes to RIBCL or Redfish by the probed generation, with proliantutils'
// fall-backs.
type Router struct {
	ops
	opts Options
	cfg  Config
	t    *iloapi.Transport
	rib  *ribcl.Client
	rf   *redfish.Client

	mu        sync.Mutex
	probe     *Probe
	cached    bool // probe came from driver_internal_info and is not re-checked yet
	stored    bool // the probe in use came from driver_internal_info
	pinStored bool
}

var _ Client = (*Router)(nil)

// Connect returns a routing client for o. No traffic happens until the
// first call.
func Connect(o Options, cfg Config) (*Router, error) {
	t, err := iloapi.NewPooledTransport(o, cfg.Limiter, cfg.Conns, cfg.CAs)
	if err != nil {
		return nil, err
	}
	r := &Router{opts: o, cfg: cfg, t: t, rib: ribcl.New(t), rf: redfish.New(t), pinStored: o.CertPin != ""}
	r.ops = ops{routerLayer{r}}
	r.rib.Debug, r.rf.Debug = cfg.Debug, cfg.Debug
	if cfg.Sessions != nil {
		r.rf.UseSessions(cfg.Sessions)
	}
	r.rf.OnSession = cfg.OnSession
	if cfg.ResetSettle > 0 {
		poll := min(cfg.ResetSettle, r.rib.ResetPollInterval)
		r.rib.ResetSettle, r.rib.ResetPollInterval = cfg.ResetSettle, poll
		r.rf.ResetSettle, r.rf.ResetPollInterval = cfg.ResetSettle, poll
	}
	if cfg.Probe != nil && cfg.Probe.Address == o.Address() {
		p := *cfg.Probe
		r.probe, r.cached, r.stored = &p, true, true
		r.rib.SetModel(p.Model)
	}
	return r, nil
}

// Transport returns the underlying transport (for tests and tuning).
func (r *Router) Transport() *iloapi.Transport { return r.t }

// RIBCL returns the RIBCL client.
func (r *Router) RIBCL() *ribcl.Client { return r.rib }

// Redfish returns the Redfish client.
func (r *Router) Redfish() *redfish.Client { return r.rf }

// Close deletes the client's private Redfish session (a shared one stays
// for the process's other runs), retries failed logouts (bounded by
// client_timeout) and drops idle connections.
func (r *Router) Close() { r.rf.Close(context.Background()) }

// Probe returns the probe, running it when needed. A probe cached in
// driver_internal_info is checked once per client against the Redfish
// service root (which the first Redfish call reads anyway): a changed
// firmware version or a Redfish service that stopped answering makes it
// probe again.
func (r *Router) Probe(ctx context.Context) (Probe, error) {
	r.mu.Lock()
	p, cached := r.probe, r.cached
	r.mu.Unlock()
	if p != nil && !cached {
		return *p, nil
	}
	if p != nil {
		if !p.needsCheck() {
			r.markChecked()
			return *p, nil
		}
		root, err := r.rf.ServiceRoot(ctx)
		switch {
		case err == nil && root.FirmwareVersion == p.Firmware:
			r.markChecked()
			return *p, nil
		case err != nil && !iloapi.IsUnavailable(err):
			// Not an answer either way (busy, timeout): keep the cache;
			// the call itself reports the iLO's state.
			return *p, nil
		}
	}
	fresh, err := r.probe1(ctx)
	if err != nil {
		return fresh, err
	}
	r.setProbe(fresh)
	return fresh, nil
}

// needsCheck says whether a cached probe is checked against the service
// root: whenever Redfish may be there (iLO 4 on Gen9 and later).
func (p Probe) needsCheck() bool {
	return p.Firmware != "" || (!p.NoRedfish && p.Generation >= 9)
}

func (r *Router) markChecked() {
	r.mu.Lock()
	r.cached = false
	r.mu.Unlock()
}

// forgetProbe drops the probe so the next call probes again.
func (r *Router) forgetProbe() {
	r.mu.Lock()
	r.probe, r.cached, r.stored = nil, false, false
	r.mu.Unlock()
}

// iloGenerationOffset turns an iLO major version into a ProLiant
// generation: iLO 4 is Gen9 (or Gen8), iLO 5 Gen10, iLO 6 Gen11, iLO 7 Gen12.
const iloGenerationOffset = 5

// probe1 decides the protocol within one client_timeout:
//
//  1. GET /redfish/v1/ (no credentials, at most half the budget). iLO 5,
//     6 and 7 (Oem.Hpe.Manager[0].ManagerType) are driven over Redfish
//     only: RIBCL is optional on iLO 5/6 and gone on iLO 7, so it is never
//     sent there. The model is the root's Product.
//  2. Otherwise (iLO 3/4, or no service root) RIBCL GET_PRODUCT_NAME, as
//     proliantutils does. When a service root answered, RIBCL gets half of
//     what is left, and a RIBCL 5xx, timeout, 404, HTML page or "RIBCL
//     disabled" falls back to Redfish in the remaining time.
func (r *Router) probe1(ctx context.Context) (Probe, error) {
	timeout := r.t.Options().Timeout
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := Probe{Address: r.opts.Address()}

	rctx, rcancel := context.WithTimeout(pctx, timeout/2)
	root, rootErr := r.rf.ServiceRoot(rctx)
	rcancel()
	if err := ctx.Err(); err != nil {
		return p, iloapi.WithOperation("probe", err)
	}
	if rootErr == nil {
		p.ManagerType, p.Firmware = root.ManagerType, root.FirmwareVersion
		if ig := root.ILOGeneration(); ig >= 5 {
			return r.redfishProbe(pctx, p, root, ig)
		}
	} else if isPin(rootErr) || iloapi.KindOf(rootErr) == iloapi.KindLoginFailed {
		return p, rootErr
	}

	bctx := pctx
	if rootErr == nil {
		left := timeout - time.Since(start)
		var bcancel context.CancelFunc
		bctx, bcancel = context.WithTimeout(pctx, left/2)
		defer bcancel()
	}
	model, err := r.rib.GetProductName(bctx)
	switch {
	case err == nil:
		p.Model, p.RIBCL = model, true
		p.NoRedfish = iloapi.IsUnavailable(rootErr)
	case ctx.Err() != nil:
		return p, iloapi.WithOperation("probe", ctx.Err())
	case iloapi.KindOf(err) == iloapi.KindLoginFailed || isPin(err):
		return p, err
	case pctx.Err() != nil && (iloapi.IsTransient(rootErr) || iloapi.IsTransient(err)):
		return p, iloapi.Transient("probe", fmt.Sprintf("iLO %s kept failing within client_timeout %s: Redfish service root: %v; RIBCL: %v",
			r.opts.Address(), timeout, rootErr, err), err)
	case rootErr == nil:
		// A service root answered: RIBCL is broken or absent here, Redfish
		// is not.
		return r.redfishProbe(pctx, p, root, root.ILOGeneration())
	case iloapi.IsUnavailable(rootErr):
		return p, err // no Redfish: the RIBCL error is the answer
	default:
		// The root failed for another reason: one last try at Redfish.
		m, rerr := r.rf.GetProductName(pctx)
		if rerr != nil {
			return p, iloapi.WithOperation("probe", fmt.Errorf("neither RIBCL (%v) nor Redfish (%w) answered", err, rerr))
		}
		p.Model = m
	}
	p.Generation = GenerationOf(p.Model)
	if p.Generation == 0 && !p.RIBCL {
		p.Generation = 10
	}
	return p, nil
}

// redfishProbe completes a Redfish-only probe from the service root (the
// model from Product, else from the system after a login).
func (r *Router) redfishProbe(ctx context.Context, p Probe, root redfish.ServiceRoot, ig int) (Probe, error) {
	p.Model, p.RIBCL = root.Product, false
	if p.Model == "" {
		m, err := r.rf.GetProductName(ctx)
		if err != nil {
			return p, err
		}
		p.Model = m
	}
	p.Generation = GenerationOf(p.Model)
	if p.Generation == 0 && ig > 0 {
		p.Generation = ig + iloGenerationOffset
	}
	if p.Generation == 0 {
		p.Generation = 10
	}
	return p, nil
}

// probeError reports a failed probe as a failure of op, keeping the code.
func probeError(op string, err error) error {
	err = iloapi.WithOperation(op, err)
	var e *iloapi.Error
	if errors.As(err, &e) && e.Op != op {
		return &iloapi.Error{Kind: e.Kind, Op: op, Message: "probing the iLO (" + e.Op + "): " + e.Message, Err: err}
	}
	return err
}

func isPin(err error) bool {
	var pe *iloapi.PinMismatchError
	return errors.As(err, &pe)
}

func (r *Router) setProbe(p Probe) {
	r.mu.Lock()
	r.probe, r.cached, r.stored = &p, false, false
	r.mu.Unlock()
	r.rib.SetModel(p.Model)
	if r.cfg.OnProbe != nil {
		r.cfg.OnProbe(p)
	}
}

// afterCall persists a pin recorded on first use.
func (r *Router) afterCall() {
	if !r.opts.TOFU || r.cfg.OnPin == nil {
		return
	}
	fp := r.t.Pin()
	r.mu.Lock()
	stored := r.pinStored
	if fp != "" {
		r.pinStored = true
	}
	r.mu.Unlock()
	if fp != "" && !stored {
		r.cfg.OnPin(fp)
	}
}

type callInfoKey struct{}

// callInfo is filled by the router with the protocol that served a call.
type callInfo struct {
	mu       sync.Mutex
	protocol string
	model    string
}

func noteProtocol(ctx context.Context, proto, model string) {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		ci.mu.Lock()
		ci.protocol, ci.model = proto, model
		ci.mu.Unlock()
	}
}

// route picks the protocol for op and falls back on not_supported.
func route[T any](ctx context.Context, r *Router, op string, pr pref, fn func(c Client) (T, error)) (T, error) {
	defer r.afterCall()
	r.mu.Lock()
	stored := r.stored
	r.mu.Unlock()
	v, err := route1(ctx, r, op, pr, fn)
	if err != nil && stored && iloapi.IsUnavailable(err) && ctx.Err() == nil {
		// The protocol the stored probe chose stopped answering (RIBCL
		// disabled, Redfish gone): probe again, once, and retry.
		r.forgetProbe()
		return route1(ctx, r, op, pr, fn)
	}
	return v, err
}

func route1[T any](ctx context.Context, r *Router, op string, pr pref, fn func(c Client) (T, error)) (T, error) {
	var zero T
	p, err := r.Probe(ctx)
	if err != nil {
		return zero, probeError(op, err)
	}
	type choice struct {
		name string
		c    Client
	}
	var order []choice
	switch {
	case !p.RIBCL:
		order = []choice{{"redfish", r.rf}}
	case p.Generation != 0 && p.Generation <= 8:
		order = []choice{{"ribcl", r.rib}}
	case p.NoRedfish:
		order = []choice{{"ribcl", r.rib}}
	case pr == ribclFirst || (pr == ribclOnGen9 && p.Generation == 9):
		order = []choice{{"ribcl", r.rib}, {"redfish", r.rf}}
	default:
		order = []choice{{"redfish", r.rf}, {"ribcl", r.rib}}
	}
	for i, ch := range order {
		v, err := fn(ch.c)
		noteProtocol(ctx, ch.name, p.Model)
		if err == nil || i == len(order)-1 || !iloapi.IsNotSupported(err) {
			return v, err
		}
		if ch.name == "redfish" && iloapi.IsUnavailable(err) {
			p.NoRedfish = true
			r.setProbe(p)
		}
	}
	return zero, nil // not reached
}

// routerLayer routes each call to the protocol of the iLO's generation.
type routerLayer struct{ r *Router }

func (l routerLayer) do(ctx context.Context, c call, fn func(inner Client, ctx context.Context) (any, error)) (any, error) {
	return route(ctx, l.r, c.op, c.pref, func(inner Client) (any, error) { return fn(inner, ctx) })
}

// GetProductName returns the probed product name.
func (r *Router) GetProductName(ctx context.Context) (string, error) {
	defer r.afterCall()
	p, err := r.Probe(ctx)
	if err != nil {
		return "", probeError("get_product_name", err)
	}
	if p.RIBCL {
		noteProtocol(ctx, "ribcl", p.Model)
	} else {
		noteProtocol(ctx, "redfish", p.Model)
	}
	return p.Model, nil
}
