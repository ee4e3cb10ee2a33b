package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHandlers measures one answer of each hot inspection resource
// without TLS (the simulator's own cost per request).
func BenchmarkHandlers(b *testing.B) {
	s, err := New(Options{Nodes: []NodeSpec{{Generation: Gen8, Count: 1}, {Generation: Gen10, Count: 1}}, Password: "pw", DiskSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	gen8, gen10 := s.Server(0), s.Server(1)
	ribclBody := `<RIBCL VERSION="2.0"><LOGIN USER_LOGIN="Administrator" PASSWORD="pw"><SERVER_INFO MODE="read"><GET_EMBEDDED_HEALTH /></SERVER_INFO></LOGIN></RIBCL>`
	cases := []struct {
		name string
		srv  *Server
		req  func() *http.Request
	}{
		{"ribcl-embedded-health", gen8, func() *http.Request {
			return httptest.NewRequest("POST", "/ribcl", strings.NewReader(ribclBody))
		}},
		{"redfish-system", gen10, func() *http.Request {
			r := httptest.NewRequest("GET", "/redfish/v1/Systems/1/", nil)
			r.SetBasicAuth("Administrator", "pw")
			return r
		}},
		{"redfish-processor", gen10, func() *http.Request {
			r := httptest.NewRequest("GET", "/redfish/v1/Systems/1/Processors/1/", nil)
			r.SetBasicAuth("Administrator", "pw")
			return r
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				c.srv.ServeHTTP(w, c.req())
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
