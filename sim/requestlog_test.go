package sim_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim"
)

func TestRequestLogMasksPasswords(t *testing.T) {
	tests := []struct {
		name string
		log  bool
		want []string
	}{
		{"off by default", false, nil},
		{"on", true, []string{
			`POST /ribcl <RIBCL VERSION="2.0"><LOGIN USER_LOGIN="Administrator" PASSWORD="******">`,
			`POST /redfish/v1/SessionService/Sessions/ {"UserName":"Administrator","Password":"******"}`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1), Password: "p4ss&word", RequestLog: tc.log})
			srv, c := s.Server(0), client(t, s)
			post(t, c, srv.URL()+"/ribcl", ribcl("Administrator", "p4ss&amp;word", "SERVER_INFO", "read", "<GET_HOST_POWER_STATUS/>"))
			login(t, c, srv, "p4ss&word")
			got := srv.RequestLog()
			if len(got) != len(tc.want) {
				t.Fatalf("log %q, want %d entries", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) || strings.Contains(got[i], "p4ss") {
					t.Errorf("entry %d %q, want prefix %q and no password", i, got[i], w)
				}
			}
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1)})
	srv, c := s.Server(0), client(t, s)
	if err := srv.SetFaults(sim.Faults{Latency: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(srv.URL() + "/redfish/v1/")
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.MaxInFlight(); got != 3 {
		t.Fatalf("max in flight %d, want 3", got)
	}
}
