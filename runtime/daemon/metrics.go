package daemon

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/watch"
)

// Metrics are the Prometheus metrics of `lightsout serve`, on a registry of
// their own. Metrics implements watch.Observer; OnEvent is the engine's
// event hook (app.Options.OnEvent) and counts calls by outcome.
type Metrics struct {
	reg          *prometheus.Registry
	runs         *prometheus.CounterVec
	runDuration  *prometheus.HistogramVec
	jobsClaimed  prometheus.Counter
	jobsDone     prometheus.Counter
	jobsFailed   *prometheus.CounterVec
	jobsRequeued prometheus.Counter
	calls        *prometheus.CounterVec
	iloCalls     *prometheus.CounterVec
}

var _ watch.Observer = (*Metrics)(nil)

// NewMetrics creates the metrics (and the Go and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_runs_total",
			Help: "Runs finished by this process, by final status."}, []string{"status"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lightsout_run_duration_seconds",
			Help:    "Duration of runs finished by this process.",
			Buckets: []float64{0.01, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}}, []string{"status"}),
		jobsClaimed: prometheus.NewCounter(prometheus.CounterOpts{Name: "lightsout_jobs_claimed_total",
			Help: "Watch-folder jobs claimed (moved into processing/)."}),
		jobsDone: prometheus.NewCounter(prometheus.CounterOpts{Name: "lightsout_jobs_done_total",
			Help: "Watch-folder jobs moved to done/."}),
		jobsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_jobs_failed_total",
			Help: "Watch-folder jobs moved to failed/, by reason (failed, invalid, duplicate, lost)."}, []string{"reason"}),
		jobsRequeued: prometheus.NewCounter(prometheus.CounterOpts{Name: "lightsout_jobs_requeued_total",
			Help: "Interrupted watch-folder jobs moved back to incoming/."}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_calls_total",
			Help: "Calls to BMCs, stores and agents recorded by runs, by module and outcome."}, []string{"module", "outcome"}),
		iloCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lightsout_ilo_calls_total",
			Help: "iLO calls recorded by runs, by outcome (ok or an error code)."}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.runs, m.runDuration, m.jobsClaimed, m.jobsDone, m.jobsFailed, m.jobsRequeued, m.calls, m.iloCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range []string{store.StatusSucceeded, store.StatusFailed, store.StatusTimedOut, store.StatusCancelled} {
		m.runs.WithLabelValues(s)
	}
	for _, r := range []string{store.JobFailed, store.JobInvalid, store.JobDuplicate, store.JobLost} {
		m.jobsFailed.WithLabelValues(r)
	}
	m.iloCalls.WithLabelValues("ok")
	return m
}

// Registry returns the registry (to add collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// watchGauges exports the queue length and the jobs in flight of w.
func (m *Metrics) watchGauges(w *watch.Watcher) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lightsout_jobs_queued",
			Help: "Job files waiting in incoming/."}, func() float64 { return float64(w.Status().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lightsout_jobs_in_flight",
			Help: "Watch-folder jobs claimed and not finished."}, func() float64 { return float64(w.Status().InFlight) }),
	)
}

// JobClaimed implements watch.Observer.
func (m *Metrics) JobClaimed() { m.jobsClaimed.Inc() }

// JobFinished implements watch.Observer.
func (m *Metrics) JobFinished(status string) {
	if status == store.JobDone {
		m.jobsDone.Inc()
		return
	}
	m.jobsFailed.WithLabelValues(status).Inc()
}

// JobRequeued implements watch.Observer.
func (m *Metrics) JobRequeued() { m.jobsRequeued.Inc() }

// RunFinished implements watch.Observer.
func (m *Metrics) RunFinished(_, status string, d time.Duration) {
	m.runs.WithLabelValues(status).Inc()
	m.runDuration.WithLabelValues(status).Observe(d.Seconds())
}

// label bounds label values taken from events (module names, error
// codes): [a-z][a-z0-9_]{0,31}, else "other".
func label(s string) string {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return "other"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return "other"
		}
	}
	return s
}

// OnEvent counts "call" events: every call by module (the part of the
// operation before the first dot) and outcome, and iLO calls by outcome.
// Pass it as app.Options.OnEvent.
func (m *Metrics) OnEvent(kind, name string, data map[string]any) {
	if kind != store.EventCall {
		return
	}
	outcome, _ := data["outcome"].(string)
	outcome = label(outcome)
	mod, _, _ := strings.Cut(name, ".")
	mod = label(mod)
	m.calls.WithLabelValues(mod, outcome).Inc()
	if mod == "ilo" {
		m.iloCalls.WithLabelValues(outcome).Inc()
	}
}
