// Package replaytest serves a captured iLO Redfish tree (the layout of
// ../shared/fixtures/captures and of `lightsout capture`) over HTTPS on
// 127.0.0.1 for the client's tests, with a small state overlay (PATCH
// merges, power, virtual media), sessions that the test can kill, and a
// /ribcl that answers 404, 500, HTML or hangs. It stands in for
// `lightsout sim --capture` until tests can use that.
package replaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// CapturesDir returns ../shared/fixtures/captures seen from the repository
// root, or skips the test with a message when it is absent.
func CapturesDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "fixtures", "captures")
			if _, err := os.Stat(c); err != nil {
				t.Skipf("captured iLO trees not found at %s (../shared beside the checkout): skipping", c)
			}
			return c
		}
		if filepath.Dir(d) == d {
			t.Skip("no go.mod above the test directory: cannot find ../shared")
		}
	}
}

// RIBCL is how /ribcl answers.
type RIBCL int

// /ribcl behaviours.
const (
	RIBCLAbsent RIBCL = iota // HTTP 404 (iLO 7)
	RIBCL500                 // HTTP 500
	RIBCLHTML                // 200 with an HTML page
	RIBCLHang                // never answers (until the client gives up)
)

// Request is one request the server saw.
type Request struct {
	Method, Path string
	Body         []byte
}

// Server is a running replay.
type Server struct {
	*httptest.Server
	// RIBCL says how /ribcl answers (set before use).
	RIBCL RIBCL

	mu       sync.Mutex
	docs     map[string]map[string]any // lower-cased path without trailing slash
	sessions map[string]string         // token -> session path
	next     int
	logins   int
	logouts  int
	reqs     []Request
}

// Start serves the tree in dir; the server is closed when the test ends.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	s := &Server{docs: map[string]map[string]any{}, sessions: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.json" {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		key := "/redfish/v1"
		if rel != "." {
			key += "/" + filepath.ToSlash(rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		s.docs[strings.ToLower(key)] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.docs) == 0 {
		t.Fatalf("no index.json under %s", dir)
	}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// DriverInfo returns a driver_info for the replay (certificate checks off).
func (s *Server) DriverInfo() map[string]any {
	return map[string]any{"ilo_address": strings.TrimPrefix(s.URL, "https://"), "ilo_username": "admin",
		"ilo_password": "secret-pw", "ilo_verify_ca": false, "client_timeout": int64(5)}
}

// Logins and Logouts count session creations and deletions.
func (s *Server) Logins() int  { s.mu.Lock(); defer s.mu.Unlock(); return s.logins }
func (s *Server) Logouts() int { s.mu.Lock(); defer s.mu.Unlock(); return s.logouts }

// Sessions is the number of live sessions.
func (s *Server) Sessions() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.sessions) }

// KillSessions drops every session, as an iLO reset or an administrator would.
func (s *Server) KillSessions() { s.mu.Lock(); defer s.mu.Unlock(); s.sessions = map[string]string{} }

// Requests returns the requests seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Doc returns the current (overlaid) resource at p.
func (s *Server) Doc(p string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[key(p)]
}

func key(p string) string {
	p = strings.ToLower(path.Clean("/" + p))
	return strings.TrimSuffix(p, "/")
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{r.Method, r.URL.Path, body})
	s.mu.Unlock()
	k := key(r.URL.Path)
	if k == "/ribcl" {
		s.ribcl(w, r)
		return
	}
	if k == "/redfish/v1" && r.Method == http.MethodGet {
		s.writeDoc(w, k)
		return
	}
	if k == "/redfish/v1/sessionservice/sessions" && r.Method == http.MethodPost {
		s.mu.Lock()
		s.next++
		s.logins++
		tok := fmt.Sprintf("token-%d", s.next)
		loc := fmt.Sprintf("/redfish/v1/SessionService/Sessions/%d", s.next)
		s.sessions[tok] = key(loc)
		s.mu.Unlock()
		w.Header().Set("X-Auth-Token", tok)
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusCreated, map[string]any{"@odata.id": loc})
		return
	}
	s.mu.Lock()
	_, authed := s.sessions[r.Header.Get("X-Auth-Token")]
	s.mu.Unlock()
	if !authed {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": "iLO.0.10.ExtendedInfo",
			"@Message.ExtendedInfo": []any{map[string]any{"MessageId": "Base.1.4.NoValidSession"}}}})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.writeDoc(w, k)
	case http.MethodDelete:
		s.mu.Lock()
		for tok, loc := range s.sessions {
			if loc == k {
				delete(s.sessions, tok)
				s.logouts++
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{})
	case http.MethodPatch:
		var patch map[string]any
		if err := json.Unmarshal(body, &patch); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": "Base.1.4.MalformedJSON"}})
			return
		}
		s.mu.Lock()
		doc, ok := s.docs[k]
		if ok {
			merge(doc, patch)
		}
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	case http.MethodPost:
		s.action(w, k, body)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// action applies the actions a round trip needs: reset, virtual media.
func (s *Server) action(w http.ResponseWriter, k string, body []byte) {
	var args map[string]any
	_ = json.Unmarshal(body, &args)
	i := strings.Index(k, "/actions/")
	if i < 0 {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	owner, name := k[:i], path.Base(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	doc := s.docs[owner]
	if doc == nil {
		http.Error(w, "no such resource", http.StatusNotFound)
		return
	}
	switch name {
	case "computersystem.reset":
		switch args["ResetType"] {
		case "On", "ForceRestart", "GracefulRestart":
			doc["PowerState"] = "On"
		case "ForceOff", "GracefulShutdown":
			doc["PowerState"] = "Off"
		}
	case "virtualmedia.insertmedia", "hpeilovirtualmedia.insertvirtualmedia":
		doc["Image"], doc["Inserted"] = args["Image"], true
	case "virtualmedia.ejectmedia", "hpeilovirtualmedia.ejectvirtualmedia":
		doc["Image"], doc["Inserted"] = "", false
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) ribcl(w http.ResponseWriter, r *http.Request) {
	switch s.RIBCL {
	case RIBCL500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case RIBCLHTML:
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>iLO</body></html>")
	case RIBCLHang:
		<-r.Context().Done()
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) writeDoc(w http.ResponseWriter, k string) {
	s.mu.Lock()
	doc, ok := s.docs[k]
	var b []byte
	if ok {
		b, _ = json.Marshal(doc)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "Base.1.4.ResourceMissingAtURI"}})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(b))
}

// merge applies a JSON merge patch to dst.
func merge(dst, patch map[string]any) {
	for k, v := range patch {
		if pm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, pm)
				continue
			}
		}
		dst[k] = v
	}
}

// Patch merges patch into the resource at p (as a JSON merge patch), to
// vary a captured answer (another firmware, another manager type).
func (s *Server) Patch(p string, patch map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if doc := s.docs[key(p)]; doc != nil {
		merge(doc, patch)
	}
}

// Count returns how many requests had method and a path equal (case-
// insensitively, trailing slash ignored) to p.
func (s *Server) Count(method, p string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && key(r.Path) == key(p) {
			n++
		}
	}
	return n
}
