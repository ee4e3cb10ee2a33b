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
	RIBCL      bool // RIBCL answers
	NoRedfish  bool // Redfish is known to be absent
}

// Map renders p for driver_internal_info.
func (p Probe) Map() map[string]any {
	return map[string]any{"address": p.Address, "model": p.Model, "generation": int64(p.Generation), "ribcl": p.RIBCL, "no_redfish": p.NoRedfish}
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
	// Probe is a cached probe; it is used when its address matches.
	Probe *Probe
	// OnProbe is called once with a fresh probe (to persist it).
	OnProbe func(Probe)
	// OnPin is called once with the fingerprint recorded on first use.
	OnPin func(fingerprint string)
	// Debug receives the RIBCL/Redfish traffic with passwords masked.
	Debug io.Writer
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
	pinStored bool
}

var _ Client = (*Router)(nil)

// Connect returns a routing client for o. No traffic happens until the
// first call.
func Connect(o Options, cfg Config) (*Router, error) {
	t, err := iloapi.NewTransport(o, cfg.Limiter)
	if err != nil {
		return nil, err
	}
	r := &Router{opts: o, cfg: cfg, t: t, rib: ribcl.New(t), rf: redfish.New(t), pinStored: o.CertPin != ""}
	r.ops = ops{routerLayer{r}}
	r.rib.Debug, r.rf.Debug = cfg.Debug, cfg.Debug
	if cfg.ResetSettle > 0 {
		poll := min(cfg.ResetSettle, r.rib.ResetPollInterval)
		r.rib.ResetSettle, r.rib.ResetPollInterval = cfg.ResetSettle, poll
		r.rf.ResetSettle, r.rf.ResetPollInterval = cfg.ResetSettle, poll
	}
	if cfg.Probe != nil && cfg.Probe.Address == o.Address() {
		p := *cfg.Probe
		r.probe = &p
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

// Close logs out Redfish sessions whose logout failed earlier (bounded by
// client_timeout) and drops idle connections.
func (r *Router) Close() { r.rf.Close(context.Background()) }

// Probe returns the probe, running it when needed.
func (r *Router) Probe(ctx context.Context) (Probe, error) {
	r.mu.Lock()
	if r.probe != nil {
		p := *r.probe
		r.mu.Unlock()
		return p, nil
	}
	r.mu.Unlock()
	p := Probe{Address: r.opts.Address()}
	model, err := r.rib.GetProductName(ctx)
	switch {
	case err == nil:
		p.Model, p.RIBCL = model, true
	case iloapi.KindOf(err) == iloapi.KindLoginFailed || isPin(err):
		return p, err
	case iloapi.IsNotSupported(err) || iloapi.KindOf(err) == iloapi.KindILO || iloapi.KindOf(err) == iloapi.KindOther:
		m, rerr := r.rf.GetProductName(ctx)
		if rerr != nil {
			return p, iloapi.WithOperation("probe", fmt.Errorf("neither RIBCL (%v) nor Redfish (%w) answered", err, rerr))
		}
		p.Model = m
	default:
		return p, err
	}
	p.Generation = GenerationOf(p.Model)
	if p.Generation == 0 && !p.RIBCL {
		p.Generation = 10
	}
	r.setProbe(p)
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
	r.probe = &p
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
	case p.Generation != 0 && p.Generation <= 8:
		order = []choice{{"ribcl", r.rib}}
	case p.NoRedfish:
		order = []choice{{"ribcl", r.rib}}
	case !p.RIBCL:
		order = []choice{{"redfish", r.rf}}
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
