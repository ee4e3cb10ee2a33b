// Package daemon is `lightsout serve`: one long-running process with the
// watch folder, an HTTP endpoint for /healthz and Prometheus /metrics, and
// the long-lived services of the bindings (agent callback API, built-in
// publisher) as they are wired in.
//
// Stopping (context cancelled, e.g. SIGTERM): the watcher stops claiming,
// in-flight runs get the grace period to finish, then they are cancelled
// and their jobs re-queued; /healthz answers 503 meanwhile. Abort skips
// the rest of the grace period (a second signal).
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/watch"
)

// Service is a long-lived server hosted by the daemon (the agent callback
// API, the built-in publisher). Start must not block; Close stops it.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	Close() error
}

// Options configure a Daemon.
type Options struct {
	App *app.App
	// Metrics to serve; created when nil (then calls are not counted:
	// pass NewMetrics().OnEvent as app.Options.OnEvent to count them).
	Metrics *Metrics
	// Addr is the listen address of /healthz and /metrics (default
	// [lightsout] metrics_address).
	Addr string
	// Watch configures the watch folder; nil runs no watcher.
	Watch *watch.Options
	// Services are started before the watcher and closed after it.
	Services []Service
	Logger   *slog.Logger
}

// Daemon is a configured `lightsout serve`.
type Daemon struct {
	o        Options
	log      *slog.Logger
	m        *Metrics
	w        *watch.Watcher
	ln       net.Listener
	started  time.Time
	draining atomic.Bool
}

// New opens the watch folder (taking its lock) and the listener, so that
// configuration problems are reported before anything runs.
func New(o Options) (*Daemon, error) {
	if o.App == nil {
		return nil, errors.New("daemon: App is required")
	}
	if o.Logger == nil {
		o.Logger = o.App.Log
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Addr == "" {
		o.Addr, _ = o.App.Config.Get("lightsout", "metrics_address")
		if o.Addr == "" {
			o.Addr = "127.0.0.1:9180"
		}
	}
	d := &Daemon{o: o, log: o.Logger, m: o.Metrics}
	if sh := o.App.Shared(); sh != nil {
		if ls, ok := o.App.Store.(leaseStore); ok {
			d.m.reg.MustRegister(&leaseCollector{st: ls, self: sh.Conductor})
		}
	}
	if o.Watch != nil {
		wo := *o.Watch
		if wo.Observer == nil {
			wo.Observer = o.Metrics
		}
		w, err := watch.New(o.App, wo)
		if err != nil {
			return nil, err
		}
		d.w = w
		d.m.watchGauges(w)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		if d.w != nil {
			d.w.Close()
		}
		return nil, fmt.Errorf("listen on %s for /healthz and /metrics: %w (set --listen or [lightsout] metrics_address)", o.Addr, err)
	}
	d.ln = ln
	return d, nil
}

// Addr is the address /healthz and /metrics are served on.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Watcher returns the watcher (nil without a watch folder).
func (d *Daemon) Watcher() *watch.Watcher { return d.w }

// Abort cancels in-flight runs now instead of after the grace period.
func (d *Daemon) Abort() {
	if d.w != nil {
		d.w.Abort()
	}
}

// Handler is the HTTP API: /healthz and /metrics.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.m.Handler())
	mux.HandleFunc("GET /healthz", d.healthz)
	return mux
}

// Health is the /healthz document.
type Health struct {
	Status string        `json:"status"` // ok, stopping, degraded
	Error  string        `json:"error,omitempty"`
	Uptime string        `json:"uptime"`
	Watch  *watch.Status `json:"watch,omitempty"`
}

func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", Uptime: time.Since(d.started).Round(time.Second).String()}
	code := http.StatusOK
	if d.w != nil {
		st := d.w.Status()
		h.Watch = &st
		if st.LastError != "" {
			h.Status, h.Error, code = "degraded", "watch folder: "+st.LastError, http.StatusServiceUnavailable
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := d.o.App.Store.ListRuns(ctx, store.RunFilter{Limit: 1}); err != nil {
		h.Status, h.Error, code = "degraded", "store: "+err.Error(), http.StatusServiceUnavailable
	}
	if d.draining.Load() {
		h.Status, code = "stopping", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// Serve runs until ctx is cancelled, then drains (see the package doc).
func (d *Daemon) Serve(ctx context.Context) error {
	d.started = time.Now()
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(d.ln) }()
	d.log.Info("serving /healthz and /metrics", "url", "http://"+d.Addr())

	var started []Service
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			if err := started[i].Close(); err != nil {
				d.log.Warn("stop service", "service", started[i].Name(), "err", err)
			}
		}
	}()
	for _, s := range d.o.Services {
		if err := s.Start(ctx); err != nil {
			d.shutdownHTTP(srv)
			if d.w != nil {
				d.w.Close()
			}
			return fmt.Errorf("start %s: %w", s.Name(), err)
		}
		started = append(started, s)
		d.log.Info("service started", "service", s.Name())
	}

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	watchErr := make(chan error, 1)
	if d.w != nil {
		go func() { watchErr <- d.w.Run(wctx) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-watchErr:
		watchErr <- err
	case err = <-httpErr:
		err = fmt.Errorf("http server: %w", err)
	}
	stop()
	d.draining.Store(true)
	d.log.Info("stopping: no new jobs are claimed; in-flight runs get the grace period")
	if d.w != nil {
		if werr := <-watchErr; werr != nil && err == nil {
			err = werr
		}
	}
	d.shutdownHTTP(srv)
	d.log.Info("stopped")
	return err
}

func (d *Daemon) shutdownHTTP(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
