package iloapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultMaxRequests is the default number of requests in flight to one iLO.
const DefaultMaxRequests = 4

// maxBody caps a response body read from an iLO.
const maxBody = 32 << 20

// Limiter bounds the number of requests in flight to one iLO.
type Limiter struct {
	ch chan struct{}
}

// NewLimiter returns a limiter allowing n requests at once (n < 1 means 1).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{ch: make(chan struct{}, n)}
}

// Acquire waits for a slot or for ctx.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release() { <-l.ch }

// InFlight returns the number of slots in use.
func (l *Limiter) InFlight() int { return len(l.ch) }

// Cap returns the number of slots.
func (l *Limiter) Cap() int { return cap(l.ch) }

// Limiters hands out one Limiter per iLO address. One value is shared by
// every run of a process (it lives in the ilo Module).
type Limiters struct {
	mu sync.Mutex
	n  int
	m  map[string]*Limiter
}

// NewLimiters returns a set of per-address limiters of n slots each.
func NewLimiters(n int) *Limiters {
	if n < 1 {
		n = DefaultMaxRequests
	}
	return &Limiters{n: n, m: map[string]*Limiter{}}
}

// Get returns the limiter of address, creating it on first use.
func (ls *Limiters) Get(address string) *Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[address]
	if !ok {
		l = NewLimiter(ls.n)
		ls.m[address] = l
	}
	return l
}

// Request is one HTTP request to the iLO; Path starts with "/".
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Transport talks HTTPS to one iLO with the node's TLS policy and the
// shared per-iLO limiter. It is safe for concurrent use.
type Transport struct {
	opts    Options
	client  *http.Client
	limiter *Limiter

	mu       sync.Mutex
	pin      string // expected fingerprint, "" = none yet
	observed string // fingerprint of the last presented leaf certificate

	// MinBackoff and MaxBackoff bound the retry delays (defaults 250 ms, 4 s).
	MinBackoff, MaxBackoff time.Duration
}

// NewTransport builds a transport for o. lim may be nil (a private limiter
// of DefaultMaxRequests is used then).
func NewTransport(o Options, lim *Limiter) (*Transport, error) {
	return NewLimitedTransport(o, lim, nil)
}

// NewLimitedTransport is NewTransport whose connections also count
// against the process-wide conns (nil: no process-wide bound).
func NewLimitedTransport(o Options, lim *Limiter, conns *ConnLimiter) (*Transport, error) {
	return NewPooledTransport(o, lim, conns, nil)
}

// NewPooledTransport is NewLimitedTransport whose ilo_verify_ca bundle
// comes from cas, parsed once for the process's transports (nil: read
// for this transport).
func NewPooledTransport(o Options, lim *Limiter, conns *ConnLimiter, cas *CAPools) (*Transport, error) {
	if lim == nil {
		lim = NewLimiter(DefaultMaxRequests)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	t := &Transport{opts: o, limiter: lim, pin: o.CertPin, MinBackoff: 250 * time.Millisecond, MaxBackoff: 4 * time.Second}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.Host}
	switch {
	case o.Insecure:
		cfg.InsecureSkipVerify = true
	case o.VerifyCASet && !o.VerifyCA:
		cfg.InsecureSkipVerify = true
	case o.Pinning() && !o.VerifyCASet:
		// The pin is the trust anchor (self-signed iLO certificates).
		cfg.InsecureSkipVerify = true
	}
	if o.CAPath != "" && !cfg.InsecureSkipVerify {
		pool, err := cas.Get(o.CAPath)
		if err != nil {
			return nil, fmt.Errorf("ilo_verify_ca %s: %w", o.CAPath, err)
		}
		cfg.RootCAs = pool
	}
	if o.Pinning() {
		cfg.VerifyConnection = t.verifyPin
	}
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if conns != nil {
		dial = conns.dial(dial)
	}
	tr := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: o.Timeout,
		MaxIdleConnsPerHost: lim.Cap(),
		IdleConnTimeout:     15 * time.Second,
		DisableCompression:  true,
	}
	t.client = &http.Client{
		Transport: tr,
		// iLO redirects are followed by the protocol code where needed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return t, nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if pool.AppendCertsFromPEM(b) {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return pool, nil
}

// Fingerprint returns the lower-case hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

func (t *Transport) verifyPin(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("iLO %s presented no certificate", t.opts.Address())
	}
	fp := Fingerprint(cs.PeerCertificates[0].Raw)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observed = fp
	if t.pin == "" {
		t.pin = fp // trust on first use
		return nil
	}
	if t.pin != fp {
		return &PinMismatchError{Address: t.opts.Address(), Expected: t.pin, Got: fp}
	}
	return nil
}

// Pin returns the fingerprint in force: the configured or stored pin, or
// the one recorded on first use ("" before any contact).
func (t *Transport) Pin() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pin
}

// Options returns the options the transport was built with.
func (t *Transport) Options() Options { return t.opts }

// Limiter returns the per-iLO limiter.
func (t *Transport) Limiter() *Limiter { return t.limiter }

// Close drops idle connections.
func (t *Transport) Close() { t.client.CloseIdleConnections() }

// Do sends one request (one attempt) and reads the whole response. A
// connection failure is a transient error; TLS and pin failures are not.
func (t *Transport) Do(ctx context.Context, r Request) (*Response, error) {
	if err := t.limiter.Acquire(ctx); err != nil {
		return nil, err
	}
	defer t.limiter.Release()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, "https://"+t.opts.Address()+r.Path, body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", r.Method, r.Path, err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, t.classify(ctx, r, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, t.classify(ctx, r, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (t *Transport) classify(ctx context.Context, r Request, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", r.Method, r.Path, ctx.Err())
	}
	var pin *PinMismatchError
	if errors.As(err, &pin) {
		return &Error{Kind: KindOther, Message: pin.Error(), Err: pin}
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rec tls.RecordHeaderError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rec) {
		return &Error{Kind: KindOther, Err: err,
			Message: fmt.Sprintf("TLS to iLO %s failed: %v (give driver_info ilo_verify_ca the iLO's CA file, or set ilo_cert_pin to pin its certificate)", t.opts.Address(), err)}
	}
	return Transient("", fmt.Sprintf("connection to iLO %s failed: %v", t.opts.Address(), err), err)
}

// Retry runs fn until it succeeds, fails with a non-transient error, or
// client_timeout (counted from the first attempt) runs out. Delays grow
// exponentially with jitter. fn gets a context bounded by what is left of
// client_timeout.
func (t *Transport) Retry(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	start := time.Now()
	cctx, cancel := context.WithDeadline(ctx, start.Add(t.opts.Timeout))
	defer cancel()
	backoff := t.MinBackoff
	var last error
	for attempt := 1; ; attempt++ {
		err := fn(cctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && IsTransient(err) {
				// The caller's deadline (e.g. a probe's share of
				// client_timeout) ended a run of transient failures.
				return Transient(op, fmt.Sprintf("gave up after %d attempt(s) within the deadline: %v", attempt, err), err)
			}
			return WithOperation(op, fmt.Errorf("%w (after %d attempt(s))", ctx.Err(), attempt))
		}
		if cctx.Err() != nil && !IsTransient(err) {
			msg := fmt.Sprintf("iLO %s did not answer within client_timeout %s", t.opts.Address(), t.opts.Timeout)
			if last != nil {
				msg += "; earlier attempt: " + last.Error()
			}
			return Timeout(op, msg, err)
		}
		if !IsTransient(err) {
			return WithOperation(op, err)
		}
		last = err
		wait := backoff + rand.N(backoff/2+1)
		remaining := time.Until(start.Add(t.opts.Timeout))
		if remaining <= wait {
			return Transient(op, fmt.Sprintf("gave up after %d attempt(s) within client_timeout %s: %v", attempt, t.opts.Timeout, err), err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-cctx.Done():
			timer.Stop()
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return WithOperation(op, ctx.Err())
			}
			return Transient(op, fmt.Sprintf("gave up after %d attempt(s) within client_timeout %s: %v", attempt, t.opts.Timeout, err), err)
		}
		backoff *= 2
		if backoff > t.MaxBackoff {
			backoff = t.MaxBackoff
		}
	}
}
