package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/runtime/store"
)

type fakeLeases struct {
	conds  []store.Conductor
	counts map[int64]int
}

func (f fakeLeases) Conductors(context.Context) ([]store.Conductor, error) { return f.conds, nil }
func (f fakeLeases) LeaseCounts(context.Context) (map[int64]int, error)    { return f.counts, nil }

// TestLeaseGauge: one series per live process with its lease count; a
// taken-over process without leases is left out.
func TestLeaseGauge(t *testing.T) {
	now := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&leaseCollector{self: 2, st: fakeLeases{
		conds:  []store.Conductor{{ID: 3, Host: "b", PID: 30}, {ID: 2, Host: "a", PID: 20}, {ID: 1, Host: "a", PID: 10, FencedAt: &now}},
		counts: map[int64]int{2: 7}}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["conductor"]+"/"+l["host"]+"/"+l["pid"]+"/"+l["self"]] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"2/a/20/1": 7, "3/b/30/0": 0}
	if len(got) != len(want) || got["2/a/20/1"] != 7 || got["3/b/30/0"] != 0 {
		t.Fatalf("lightsout_node_leases = %v, want %v", got, want)
	}
}
