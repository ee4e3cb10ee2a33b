// Package simtest is the one set of test helpers over the simulator: start
// a simulated fleet or a single iLO of one generation, read a server's
// driver_info the way the store hands it to a binding, and serve images for
// virtual media, or run the simulator in a child process of the test
// binary (StartChild, ServeChild). It imports no client package, so the
// internal tests of the iLO client packages can use it.
package simtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

// Option changes the simulator's options before it starts.
type Option func(*sim.Options)

// WithRequestLog keeps every server's requests ([sim.Server.RequestLog]).
func WithRequestLog() Option { return func(o *sim.Options) { o.RequestLog = true } }

// WithBootModes sets the supported boot modes of every server
// ("LEGACY_ONLY", "UEFI_ONLY" or "LEGACY_UEFI").
func WithBootModes(modes string) Option {
	return func(o *sim.Options) {
		prev := o.Hardware
		o.Hardware = func(name string, g sim.Generation, idx int, hw *sim.Hardware) {
			if prev != nil {
				prev(name, g, idx, hw)
			}
			hw.SupportedBootModes = modes
		}
	}
}

// WithPassword gives every administrator account the same password.
func WithPassword(pw string) Option { return func(o *sim.Options) { o.Password = pw } }

// Start starts a simulator with the servers of nodes ("gen8=1,gen10=2",
// see [sim.ParseNodes]) and 1 MiB disks; it is closed when the test ends.
func Start(t testing.TB, nodes string, opts ...Option) *sim.Sim {
	t.Helper()
	specs, err := sim.ParseNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	o := sim.Options{Nodes: specs, DiskSize: 1 << 20}
	for _, f := range opts {
		f(&o)
	}
	s, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ILO starts a simulator with one server of generation gen (8 to 11) and
// returns both.
func ILO(t testing.TB, gen int, opts ...Option) (*sim.Sim, *sim.Server) {
	t.Helper()
	s := Start(t, fmt.Sprintf("gen%d=1", gen), opts...)
	return s, s.Server(0)
}

// DriverInfo returns server i's driver_info from the inventory with its
// integers as int64, the way the store decodes JSON for a binding.
func DriverInfo(s *sim.Sim, i int) map[string]any {
	info := map[string]any{}
	for k, v := range s.Inventory()[i].DriverInfo {
		if n, ok := v.(int); ok {
			v = int64(n)
		}
		info[k] = v
	}
	return info
}

// ImageServer serves a 4 KiB image at every path (what the simulator's
// virtual media fetches on insert) and returns its base URL.
func ImageServer(t testing.TB) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4096")
		if r.Method == http.MethodGet {
			_, _ = w.Write(make([]byte, 4096))
		}
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}
