package sim

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestRequestCost(t *testing.T) {
	p := LatencyProfile{Handshake: 1, Login: 100 * time.Millisecond, Get: 10 * time.Millisecond, Write: 20 * time.Millisecond, RIBCL: 50 * time.Millisecond}
	tests := []struct {
		name, method, path string
		basic              bool
		want               time.Duration
	}{
		{"redfish GET with a session", "GET", "/redfish/v1/Systems/1/", false, 10 * time.Millisecond},
		{"redfish GET with basic auth pays a login", "GET", "/redfish/v1/Systems/1/", true, 110 * time.Millisecond},
		{"redfish login", "POST", "/redfish/v1/SessionService/Sessions/", false, 100 * time.Millisecond},
		{"REST login", "POST", "/rest/v1/Sessions", false, 100 * time.Millisecond},
		{"PATCH", "PATCH", "/redfish/v1/Systems/1/", false, 20 * time.Millisecond},
		{"logout is a write", "DELETE", "/redfish/v1/SessionService/Sessions/x/", false, 20 * time.Millisecond},
		{"RIBCL document", "POST", "/ribcl", false, 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.basic {
				r.SetBasicAuth("u", "p")
			}
			if got := requestCost(p, r); got != tc.want {
				t.Fatalf("cost %s, want %s", got, tc.want)
			}
		})
	}
	// Every generation has a profile where a login costs more than a GET
	// and a write more than a GET.
	for _, g := range []Generation{Gen8, Gen9, Gen10, Gen11, Gen12} {
		p := DefaultLatencyProfile(g)
		if p.Login <= p.Get || p.Write <= p.Get || p.Handshake <= 0 || p.RIBCL <= p.Get {
			t.Errorf("%s profile %+v", g, p)
		}
	}
}
