package redfish

import (
	"context"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/ilo/iloapi"
)

// DefaultSessionIdle is how long an unused shared session lives before it
// is deleted (an iLO's own session timeout defaults to 30 minutes).
const DefaultSessionIdle = 5 * time.Minute

// DefaultMaxIdleSessions is how many unused shared sessions a set keeps
// logged in (over every iLO) when MaxIdle is not set.
const DefaultMaxIdleSessions = 1000

// SessionEvent describes a login or logout of a Redfish session, for the
// run record or the process log. It never carries the token.
type SessionEvent struct {
	// Name is "login", "relogin" (after a 401) or "logout".
	Name string
	// Address is the iLO's host:port.
	Address string
	// Reason says why: "first use", "HTTP 401", "idle", "shutdown", "close".
	Reason string
	// Session is the session's URI on the iLO.
	Session string
}

// Sessions is the process-wide set of Redfish sessions: one per iLO and
// user, shared by every operation and every run on that iLO, created on
// first use, re-created on 401, deleted after Idle without use and at
// Close. It is safe for concurrent use.
type Sessions struct {
	// Idle is how long an unused session lives (0: DefaultSessionIdle).
	Idle time.Duration
	// MaxIdle bounds the unused sessions kept logged in (waiting for
	// Idle) over every iLO (0: DefaultMaxIdleSessions): an operation that
	// ends while MaxIdle others wait deletes its session at once, so a
	// fleet run does not leave one session per node on the iLOs and in
	// memory.
	MaxIdle int
	// OnEvent, when set, receives the logouts that happen outside any
	// operation (idle expiry, Close).
	OnEvent func(SessionEvent)

	mu     sync.Mutex
	m      map[sessionKey]*Shared
	closed bool
	held   int // sessions waiting for their idle timer
}

// hold counts one more unused session waiting for its idle timer; it
// reports false (not counted) when MaxIdle are waiting already.
func (p *Sessions) hold() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := p.MaxIdle
	if limit <= 0 {
		limit = DefaultMaxIdleSessions
	}
	if p.held >= limit {
		return false
	}
	p.held++
	return true
}

func (p *Sessions) unhold() {
	p.mu.Lock()
	p.held--
	p.mu.Unlock()
}

// Held is the number of unused sessions kept logged in (waiting for
// their idle timer).
func (p *Sessions) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

type sessionKey struct{ address, user, password string }

// NewSessions returns an empty session set.
func NewSessions() *Sessions { return &Sessions{m: map[sessionKey]*Shared{}} }

// For returns the shared session of o's iLO and user.
func (p *Sessions) For(o iloapi.Options) *Shared {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := sessionKey{o.Address(), o.Username, o.Password}
	sh := p.m[k]
	if sh == nil {
		sh = &Shared{pool: p, key: k, address: o.Address()}
		if p.m == nil {
			p.m = map[sessionKey]*Shared{}
		}
		p.m[k] = sh
	}
	return sh
}

// forget removes sh from the set when it is still the entry of its key.
// An operation that took sh from For just before keeps working with it
// (it logs in and out on its own); the next For makes a new entry.
func (p *Sessions) forget(sh *Shared) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[sh.key] == sh {
		delete(p.m, sh.key)
	}
}

// entries is the number of iLO/user entries in the set (for tests).
func (p *Sessions) entries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// Live is the number of sessions currently held (logged in).
func (p *Sessions) Live() int {
	p.mu.Lock()
	all := make([]*Shared, 0, len(p.m))
	for _, sh := range p.m {
		all = append(all, sh)
	}
	p.mu.Unlock()
	n := 0
	for _, sh := range all {
		sh.mu.Lock()
		if sh.token != "" {
			n++
		}
		sh.mu.Unlock()
	}
	return n
}

// Close deletes every session (each DELETE bounded by ctx) and stops the
// idle timers. Sessions asked for afterwards still work (and are deleted
// by their client's Close).
func (p *Sessions) Close(ctx context.Context) {
	p.mu.Lock()
	all := make([]*Shared, 0, len(p.m))
	for _, sh := range p.m {
		all = append(all, sh)
	}
	p.m = map[sessionKey]*Shared{}
	p.closed = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, sh := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.logout(ctx, "shutdown", p.OnEvent)
		}()
	}
	wg.Wait()
}

func (p *Sessions) idle() time.Duration {
	if p == nil || p.Idle <= 0 {
		return DefaultSessionIdle
	}
	return p.Idle
}

// Shared is one iLO session shared by operations (and runs). The token is
// never exposed outside the package.
type Shared struct {
	pool    *Sessions // nil: private to one Client, deleted at its Close
	key     sessionKey
	address string

	login sync.Mutex // serialises logins

	mu       sync.Mutex
	token    string
	location string
	t        *iloapi.Transport // the transport that logged in (for the idle logout)
	inUse    int
	timer    *time.Timer
	held     bool // counted in pool.held (the idle timer is armed)
}

// unholdLocked gives back the pool's count of this idle session. The
// caller holds sh.mu.
func (sh *Shared) unholdLocked() {
	if sh.held {
		sh.held = false
		sh.pool.unhold()
	}
}

// current returns the token and location (empty when logged out).
func (sh *Shared) current() (string, string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.token, sh.location
}

func (sh *Shared) set(token, location string, t *iloapi.Transport) {
	sh.mu.Lock()
	sh.token, sh.location, sh.t = token, location, t
	sh.mu.Unlock()
}

// invalidate forgets token when it is still the current one (a 401 said
// the iLO dropped it); it reports whether it did.
func (sh *Shared) invalidate(token string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.token != token || token == "" {
		return false
	}
	sh.token, sh.location = "", ""
	return true
}

// begin marks an operation in progress (no idle logout meanwhile).
func (sh *Shared) begin() {
	sh.mu.Lock()
	sh.inUse++
	if sh.timer != nil {
		sh.timer.Stop()
	}
	sh.unholdLocked()
	sh.mu.Unlock()
}

// end ends an operation; the last one arms the idle timer.
func (sh *Shared) end() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.inUse--
	if sh.inUse > 0 || sh.pool == nil || sh.token == "" {
		return
	}
	if !sh.held {
		if !sh.pool.hold() {
			// MaxIdle unused sessions wait already: delete this one now.
			timeout := DefaultTimeoutOf(sh.t)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				sh.logout(ctx, "idle", sh.pool.OnEvent)
			}()
			return
		}
		sh.held = true
	}
	d := sh.pool.idle()
	if sh.timer == nil {
		sh.timer = time.AfterFunc(d, sh.expire)
	} else {
		sh.timer.Reset(d)
	}
}

// expire deletes an idle session.
func (sh *Shared) expire() {
	sh.mu.Lock()
	busy := sh.inUse > 0
	timeout := DefaultTimeoutOf(sh.t)
	sh.mu.Unlock()
	if busy {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sh.logout(ctx, "idle", sh.pool.OnEvent)
}

// DefaultTimeoutOf is the logout bound for t: min(10 s, client_timeout).
func DefaultTimeoutOf(t *iloapi.Transport) time.Duration {
	if t == nil {
		return 10 * time.Second
	}
	return min(10*time.Second, t.Options().Timeout)
}

// logout deletes the session (when logged in) and reports it to on.
func (sh *Shared) logout(ctx context.Context, reason string, on func(SessionEvent)) {
	sh.login.Lock()
	defer sh.login.Unlock()
	sh.mu.Lock()
	token, location, t := sh.token, sh.location, sh.t
	sh.token, sh.location = "", ""
	if sh.timer != nil {
		sh.timer.Stop()
	}
	unused := sh.inUse == 0
	if unused {
		sh.unholdLocked()
		sh.t = nil // the run's transport (its TLS config, CA pool) can go
	}
	sh.mu.Unlock()
	if unused && sh.pool != nil {
		// Logged out and unused: the set forgets the iLO (a later
		// operation makes a new entry), so a long-lived process does not
		// keep one entry per iLO and password it ever used.
		sh.pool.forget(sh)
	}
	if token == "" || location == "" || t == nil {
		return
	}
	deleteSession(ctx, t, token, location, nil)
	if on != nil {
		on(SessionEvent{Name: "logout", Address: sh.address, Reason: reason, Session: location})
	}
}
