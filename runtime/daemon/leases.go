package daemon

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/runtime/store"
)

// leaseStore is what the lease metrics read from a shared store.
type leaseStore interface {
	Conductors(ctx context.Context) ([]store.Conductor, error)
	LeaseCounts(ctx context.Context) (map[int64]int, error)
}

// leaseCollector exports lightsout_node_leases: how many nodes each
// process sharing the database (PostgreSQL) holds, read at each scrape.
type leaseCollector struct {
	st   leaseStore
	self int64
}

var descLeases = prometheus.NewDesc("lightsout_node_leases",
	"Nodes whose reservation is leased by a process sharing the database (conductor), by process; self=1 for this one.",
	[]string{"conductor", "host", "pid", "self"}, nil)

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descLeases }

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conds, err := c.st.Conductors(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descLeases, err)
		return
	}
	counts, err := c.st.LeaseCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descLeases, err)
		return
	}
	for _, cd := range conds {
		if cd.FencedAt != nil && counts[cd.ID] == 0 {
			continue
		}
		self := "0"
		if cd.ID == c.self {
			self = "1"
		}
		ch <- prometheus.MustNewConstMetric(descLeases, prometheus.GaugeValue, float64(counts[cd.ID]),
			strconv.FormatInt(cd.ID, 10), cd.Host, strconv.Itoa(cd.PID), self)
	}
}
