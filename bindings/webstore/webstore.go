// Package webstore is lightsout's built-in publisher: it serves published
// files from a directory over HTTP (HTTPS optional) with Swift-style temp
// URL signatures (temp_url_sig, temp_url_expires; HMAC-SHA256 by default),
// per-file expiry enforced on every request and by a janitor that deletes
// expired files, and HEAD and Range support (iLOs fetch media in ranges).
//
// A request without a signature gets 401; a bad or expired signature gets
// 403, and the body says which. Only GET and HEAD are served.
//
// Layout of the directory: <dir>/<name> is a published file and
// <dir>/.meta/<name> holds its expiry as a Unix time.
package webstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/swift/tempurl"
)

// DefaultAddr is the default listen address ([lightsout] publish_address):
// loopback on a free port. BMCs on the network need a reachable address,
// e.g. 0.0.0.0:8088 with [lightsout] publish_url = http://<host>:8088.
const DefaultAddr = "127.0.0.1:0"

// Server is a built-in temp-URL file server. Set the exported fields
// before Start.
type Server struct {
	// PublicURL is the base URL put in published links (e.g. when
	// listening on 0.0.0.0); default http(s)://<listen address>.
	PublicURL string
	// TLSCertFile and TLSKeyFile switch the server to HTTPS.
	TLSCertFile, TLSKeyFile string
	// Digest signs new URLs (default sha256); any Swift digest verifies.
	Digest tempurl.Digest
	// JanitorInterval is how often expired files are deleted (default 30 s).
	JanitorInterval time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time

	dir  string
	key  string
	addr string

	mu      sync.Mutex
	ln      net.Listener
	srv     *http.Server
	base    string
	done    chan struct{}
	started bool
}

// New returns a server for dir (created 0700 if missing) signing with key,
// to listen on addr ("" = DefaultAddr).
func New(dir, key, addr string) (*Server, error) {
	if dir == "" {
		return nil, errors.New("webstore: directory is empty; set [lightsout] state_dir or publish_dir")
	}
	if len(key) < 16 {
		return nil, errors.New("webstore: signing key must be at least 16 bytes")
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if err := os.MkdirAll(filepath.Join(dir, ".meta"), 0o700); err != nil {
		return nil, fmt.Errorf("webstore: %w", err)
	}
	return &Server{dir: dir, key: key, addr: addr, Digest: tempurl.SHA256}, nil
}

// LoadOrCreateKey returns the signing key kept in path, generating a
// random one (0600) on first use. A key file readable by others is made
// 0600 again.
func LoadOrCreateKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < 16 {
			return "", fmt.Errorf("webstore key %s is too short; delete it to generate a new one", path)
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("webstore key %s: %w", path, err)
			}
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("webstore key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("webstore key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	k := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(path) // another process won the race
	}
	if err != nil {
		return "", fmt.Errorf("webstore key: %w", err)
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("webstore key: %w", err)
	}
	return k, f.Close()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Dir returns the directory served.
func (s *Server) Dir() string { return s.dir }

// Start listens and serves until ctx is done or Close is called; it
// returns once the listener is bound. It also starts the janitor.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("webstore: already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("webstore: listen on %s ([lightsout] publish_address): %w", s.addr, err)
	}
	s.ln = ln
	scheme := "http"
	if s.TLSCertFile != "" {
		scheme = "https"
	}
	s.base = strings.TrimSuffix(s.PublicURL, "/")
	if s.base == "" {
		s.base = scheme + "://" + ln.Addr().String()
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	s.done = make(chan struct{})
	s.started = true
	go func() {
		var err error
		if s.TLSCertFile != "" {
			err = s.srv.ServeTLS(ln, s.TLSCertFile, s.TLSKeyFile)
		} else {
			err = s.srv.Serve(ln)
		}
		_ = err // http.ErrServerClosed after Close
	}()
	interval := s.JanitorInterval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	s.Sweep()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.Close()
				return
			case <-s.done:
				return
			case <-t.C:
				s.Sweep()
			}
		}
	}()
	return nil
}

// URL returns the base URL ("" before Start).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// Close stops the server (published files stay until they expire).
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.srv == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
		close(s.done)
	}
	return s.srv.Close()
}

// ValidName reports whether name can be published: 1..200 bytes of
// [A-Za-z0-9._-], not starting with '.'.
func ValidName(name string) error {
	if name == "" || len(name) > 200 || name[0] == '.' {
		return fmt.Errorf("published name %q must be 1..200 characters and not start with '.'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("published name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// Publish copies (hard-links when possible) the file at path as name,
// valid for ttl, and returns its signed URL.
func (s *Server) Publish(ctx context.Context, path, name string, ttl time.Duration) (string, error) {
	if err := s.check(name, ttl); err != nil {
		return "", err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("webstore publish: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("webstore publish: %s is not a regular file", path)
	}
	tmp := filepath.Join(s.dir, ".tmp-"+name)
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("webstore publish: %w", err)
		}
		defer f.Close()
		return s.PublishReader(ctx, f, name, ttl)
	}
	return s.commit(tmp, name, ttl)
}

// PublishReader stores r as name, valid for ttl, and returns its signed URL.
func (s *Server) PublishReader(ctx context.Context, r io.Reader, name string, ttl time.Duration) (string, error) {
	if err := s.check(name, ttl); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("webstore publish: %w", err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("webstore publish %s: %w", name, err)
	}
	return s.commit(tmp, name, ttl)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (s *Server) check(name string, ttl time.Duration) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if ttl < time.Second {
		return fmt.Errorf("webstore publish %s: expiry must be at least 1 s, got %v", name, ttl)
	}
	return nil
}

func (s *Server) commit(tmp, name string, ttl time.Duration) (string, error) {
	expires := s.now().Add(ttl).Truncate(time.Second)
	// the expiry is written first: a file never exists without one
	if err := writeAtomic(filepath.Join(s.dir, ".meta", name), strconv.FormatInt(expires.Unix(), 10)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("webstore publish %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("webstore publish %s: %w", name, err)
	}
	return s.SignURL(name, expires)
}

func writeAtomic(path, content string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SignURL returns the signed GET URL of name valid until expires.
func (s *Server) SignURL(name string, expires time.Time) (string, error) {
	base := s.URL()
	if base == "" {
		return "", errors.New("webstore: not started")
	}
	q, err := tempurl.Query(s.Digest, s.key, "GET", "/"+name, expires, "")
	if err != nil {
		return "", err
	}
	return base + "/" + url.PathEscape(name) + "?" + q, nil
}

// Delete removes a published file; a missing one is not an error.
func (s *Server) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(s.dir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("webstore delete %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(s.dir, ".meta", name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("webstore delete %s: %w", name, err)
	}
	return nil
}

func (s *Server) expiry(name string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, ".meta", name))
	if err != nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// Sweep deletes expired files, files without an expiry and stale
// temporary files, and returns how many it removed.
func (s *Server) Sweep() int {
	now := s.now()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == ".meta":
			continue
		case strings.HasPrefix(name, ".tmp-"):
			if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > time.Hour {
				if os.Remove(filepath.Join(s.dir, name)) == nil {
					n++
				}
			}
			continue
		case ValidName(name) != nil:
			continue
		}
		if exp, ok := s.expiry(name); ok && now.Before(exp) {
			continue
		}
		if s.Delete(context.Background(), name) == nil {
			n++
		}
	}
	// metadata whose file is gone
	metas, _ := os.ReadDir(filepath.Join(s.dir, ".meta"))
	for _, m := range metas {
		if _, err := os.Stat(filepath.Join(s.dir, m.Name())); errors.Is(err, os.ErrNotExist) {
			os.Remove(filepath.Join(s.dir, ".meta", m.Name()))
		}
	}
	return n
}

// ServeHTTP serves GET and HEAD of signed published files.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if ValidName(name) != nil {
		http.NotFound(w, r)
		return
	}
	switch err := tempurl.Verify(s.key, r.Method, "/"+name, r.URL.Query(), s.now()); {
	case errors.Is(err, tempurl.ErrMissing):
		http.Error(w, "401 Unauthorized: missing temp_url_sig or temp_url_expires", http.StatusUnauthorized)
		return
	case errors.Is(err, tempurl.ErrExpired):
		http.Error(w, "403 Forbidden: temp URL expired", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "403 Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	exp, ok := s.expiry(name)
	if !ok || !s.now().Before(exp) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "stat failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, name, st.ModTime(), f)
}
