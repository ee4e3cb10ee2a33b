package agentapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHeartbeat measures accepted heartbeats through the handler for
// 200 nodes (the parallel deploy benchmark's fleet).
func BenchmarkHeartbeat(b *testing.B) {
	s := New(testNodes(), Options{Logger: slog.New(slog.DiscardHandler)})
	h := s.Handler()
	const nodes = 200
	bodies := make([]string, nodes)
	paths := make([]string, nodes)
	for i := range nodes {
		uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		tok, err := s.NewToken(uuid)
		if err != nil {
			b.Fatal(err)
		}
		paths[i] = "/v1/heartbeat/" + uuid
		bodies[i] = fmt.Sprintf(`{"callback_url":"http://127.0.0.1:%d","agent_token":%q,"agent_version":"10.0.0"}`, 10000+i, tok)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, paths[i%nodes], strings.NewReader(bodies[i%nodes]))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d", rec.Code)
			}
			i++
		}
	})
}
