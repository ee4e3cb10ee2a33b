package sim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/sim"
)

func TestRedfishRouting(t *testing.T) {
	s := newSim(t, sim.Options{Nodes: nodes(sim.Gen10, 1)})
	srv, c := s.Server(0), client(t, s)
	resp, _ := login(t, c, srv, "sim-password")
	tok := resp.Header.Get("X-Auth-Token")
	tests := []struct {
		method, path string
		status       int
		want         string // in the body
	}{
		{"GET", "/redfish/v1/Systems/1/", 200, `"PowerState"`},
		{"GET", "/REDFISH/V1/SYSTEMS/1", 200, `"PowerState"`},
		{"HEAD", "/redfish/v1/Systems/1/", 200, ""},
		{"DELETE", "/redfish/v1/Systems/1/", 405, "UnsupportedOperation"},
		{"POST", "/redfish/v1/Systems/", 404, "ResourceMissingAtURI"},
		{"GET", "/redfish/v1/Systems/1/Processors/2/", 200, `"TotalThreads"`},
		{"GET", "/redfish/v1/Systems/1/Processors/9/", 404, "ResourceMissingAtURI"},
		{"GET", "/redfish/v1/Systems/1/Memory/proc1dimm1/", 200, `"CapacityMiB"`},
		{"GET", "/redfish/v1/Managers/1/VirtualMedia/2/", 200, `"MediaTypes"`},
		{"GET", "/redfish/v1/Managers/1/VirtualMedia/3/", 404, "ResourceMissingAtURI"},
		{"GET", "/redfish/v1/Managers/1/SecurityService/SecurityDashboard/SecurityParams/1/", 200, "Last Firmware Scan Result"},
		{"GET", "/redfish/v1/Systems/1/Storage/", 200, `"/redfish/v1/Systems/1/Storage/"`},
		{"GET", "/redfish/v1/Nowhere/", 404, "ResourceMissingAtURI"},
	}
	for _, tc := range tests {
		resp, body := do(t, c, tc.method, srv.URL()+tc.path, tok, "")
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s = %d %.200s, want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
		}
		if tc.status == http.StatusOK && tc.method == "GET" && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", tc.method, tc.path)
		}
	}
}
