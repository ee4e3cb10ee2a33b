package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/bindings/ipmi"
	"github.com/lightsout/lightsout/runtime/app"
)

// ConfigSensorInterval is the [lightsout] option: how often serve reads every
// node's IPMI sensors for /metrics (unset: never, as Ironic's
// send_sensor_data defaults to off).
const ConfigSensorInterval = "sensor_interval"

// sensorReading is one node's last sensor walk.
type sensorReading struct {
	sensors []ipmi.Sensor
	at      time.Time
	err     string
}

// SensorPoller is the Service behind the lightsout_sensor_* metrics: every
// interval it walks the SDR of every node over IPMI, one walk at a time per
// BMC address (the per-iLO limit) and a bounded number overall.
type SensorPoller struct {
	a        *app.App
	interval time.Duration
	parallel int

	mu       sync.Mutex
	readings map[string]sensorReading // by node name
	cancel   context.CancelFunc
	done     chan struct{}
}

// Sensors returns the poller; it polls only when [lightsout] sensor_interval
// is set. Register it with m so /metrics shows the readings.
func Sensors(a *app.App, m *Metrics) *SensorPoller {
	p := &SensorPoller{a: a, parallel: 16, readings: map[string]sensorReading{}}
	if v, ok := a.Config.Get("lightsout", ConfigSensorInterval); ok && strings.TrimSpace(v) != "" {
		p.interval = a.Config.Duration("lightsout", ConfigSensorInterval, 0)
	}
	if m != nil {
		m.reg.MustRegister(p)
	}
	return p
}

// Name implements Service.
func (p *SensorPoller) Name() string { return "sensor poller" }

// Start implements Service: the first walk starts at once.
func (p *SensorPoller) Start(ctx context.Context) error {
	if p.interval <= 0 {
		return nil
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			p.PollOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	p.a.Log.Info("sensor poller started", "interval", p.interval.String())
	return nil
}

// Close implements Service.
func (p *SensorPoller) Close() error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	return nil
}

// PollOnce walks every node's sensors once.
func (p *SensorPoller) PollOnce(ctx context.Context) {
	nodes, err := p.a.Store.ListNodes(ctx)
	if err != nil {
		p.a.Log.Warn("sensor poller: list nodes", "error", err.Error())
		return
	}
	perBMC := map[string]*sync.Mutex{}
	sem := make(chan struct{}, p.parallel)
	var wg sync.WaitGroup
	for _, n := range nodes {
		o, err := ipmi.ParseDriverInfo(n.DriverInfo)
		if err != nil {
			continue // no BMC to ask
		}
		p.a.Redactor.Add(o.Password)
		if o.RetryTimeout > p.interval && p.interval > 0 {
			o.RetryTimeout = p.interval
		}
		lock, ok := perBMC[o.Address()]
		if !ok {
			lock = &sync.Mutex{}
			perBMC[o.Address()] = lock
		}
		c, err := ipmi.New(o)
		if err != nil {
			continue
		}
		name := n.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			lock.Lock()
			defer lock.Unlock()
			ss, err := c.Sensors(ctx)
			r := sensorReading{sensors: ss, at: time.Now()}
			if err != nil {
				r.err = p.a.Redactor.String(err.Error())
			}
			p.mu.Lock()
			if err != nil {
				// keep the last good readings, note the failure
				r.sensors = p.readings[name].sensors
			}
			p.readings[name] = r
			p.mu.Unlock()
		}()
	}
	wg.Wait()
}

var (
	descCelsius = prometheus.NewDesc("lightsout_sensor_celsius", "Temperature sensor reading (IPMI SDR).", []string{"node", "sensor"}, nil)
	descRPM     = prometheus.NewDesc("lightsout_sensor_rpm", "Fan sensor reading (IPMI SDR).", []string{"node", "sensor"}, nil)
	descWatts   = prometheus.NewDesc("lightsout_sensor_watts", "Power sensor reading (IPMI SDR).", []string{"node", "sensor"}, nil)
	descHealth  = prometheus.NewDesc("lightsout_sensor_health", "Sensor health: 0 ok, 1 non-critical, 2 critical, 3 non-recoverable.", []string{"node", "sensor"}, nil)
	descUp      = prometheus.NewDesc("lightsout_sensor_poll_success", "1 when the node's last sensor walk succeeded.", []string{"node"}, nil)
)

// Describe implements prometheus.Collector.
func (p *SensorPoller) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCelsius, descRPM, descWatts, descHealth, descUp} {
		ch <- d
	}
}

func health(status string) (float64, bool) {
	switch status {
	case "ok":
		return 0, true
	case "lnc", "unc":
		return 1, true
	case "lcr", "ucr":
		return 2, true
	case "lnr", "unr":
		return 3, true
	}
	return 0, false
}

// Collect implements prometheus.Collector.
func (p *SensorPoller) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, r := range p.readings {
		up := 1.0
		if r.err != "" {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, node)
		seen := map[string]bool{}
		for _, s := range r.sensors {
			if seen[s.Name] {
				continue // Prometheus refuses duplicate label sets
			}
			seen[s.Name] = true
			if h, ok := health(s.Status); ok {
				ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, h, node, s.Name)
			}
			if !s.Available {
				continue
			}
			var d *prometheus.Desc
			switch s.Unit {
			case "degrees C":
				d = descCelsius
			case "RPM":
				d = descRPM
			case "Watts":
				d = descWatts
			default:
				continue
			}
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, s.Reading, node, s.Name)
		}
	}
}
