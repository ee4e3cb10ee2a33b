// Package agentapi is the agent callback API: the small part of the Ironic
// REST API that an unmodified ironic-python-agent (IPA) ramdisk calls while a
// node is being deployed or cleaned.
//
// Served endpoints (JSON shapes as Ironic's):
//
//	GET  /                                        API root (IPA reads default_version.version)
//	GET  /v1                                      v1 description + version headers
//	GET  /v1/lookup?addresses=MAC,…&node_uuid=U   lookup (IPA ≥ Ocata)
//	POST /v1/heartbeat/<node>                     heartbeat {callback_url, agent_token, agent_version}
//	POST /v1/drivers/<driver>/vendor_passthru/lookup   legacy lookup, payload version "2"
//	POST /v1/nodes/<node>/vendor_passthru/heartbeat    legacy heartbeat {agent_url}
//
// A deploy or clean run registers the node's pre-generated agent token with
// [Server.Expect] (or [Server.NewToken]) before booting the ramdisk; the token
// travels to the ramdisk as `ipa-agent-token`. Lookups only find nodes with a
// registered token (Ironic's restrict_lookup), heartbeats without the right
// token are refused (401 missing, 403 wrong) and the token is never echoed:
// lookup answers config.agent_token = "******" as Ironic does for
// pre-generated tokens. Heartbeats record the agent URL, which the agent
// client (bindings/agent) then uses for /v1/commands.
//
// Nodes are found through the [Nodes] interface (the runtime backs it with
// the SQLite store), so this package has no store dependency.
package agentapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned (possibly wrapped) by a [Nodes] implementation
// when no node matches; the API answers 404.
var ErrNotFound = errors.New("node not found")

// Node is what the callback API returns to a ramdisk about a node.
type Node struct {
	UUID               string
	Name               string
	Driver             string
	Properties         map[string]any
	InstanceInfo       map[string]any
	DriverInternalInfo map[string]any
}

// Nodes finds nodes for lookups and heartbeats.
type Nodes interface {
	// NodeByUUID returns the node with this UUID (or name), or an error
	// wrapping ErrNotFound.
	NodeByUUID(ctx context.Context, uuid string) (Node, error)
	// NodeByMACs returns the single node owning a port with one of these
	// (normalised, lower-case) MAC addresses; none or more than one node
	// gives an error wrapping ErrNotFound.
	NodeByMACs(ctx context.Context, macs []string) (Node, error)
}

// Heartbeat is what the server knows about a node's running agent.
type Heartbeat struct {
	NodeUUID     string
	AgentURL     string // callback_url (or legacy agent_url)
	AgentVersion string
	AgentStatus  string // agent_status (Ironic ≥ 1.72), often empty
	// AgentVerifyCA is the PEM certificate IPA generated for its API
	// (agent_verify_ca, Ironic ≥ 1.68: IPA's enable_auto_tls, on by
	// default, then serves https). The first one a token's agent sends is
	// kept; a different one is refused, as Ironic's
	// store_agent_certificate does. Public, not a secret.
	AgentVerifyCA string
	At            time.Time
	Count         int // heartbeats since the token was registered
	// Progress is the image write progress the lightsout agent adds to
	// its heartbeats while standby.prepare_image runs (nil otherwise, and
	// always nil from IPA).
	Progress *DeployProgress
}

// DeployProgress is the `deploy_progress` heartbeat extension:
// {"written": bytes, "total": bytes (0 when unknown), "rate": bytes/s}.
type DeployProgress struct {
	Written int64 `json:"written"`
	Total   int64 `json:"total"`
	Rate    int64 `json:"rate"`
}

// valid returns p when its numbers make sense, else nil (a malformed
// extension is ignored, never a reason to refuse a heartbeat).
func (p *DeployProgress) valid() *DeployProgress {
	if p == nil || p.Written < 0 || p.Total < 0 || p.Rate < 0 {
		return nil
	}
	c := *p
	return &c
}

// Percent is the written share of total (0–100), or -1 when the total is unknown.
func (p DeployProgress) Percent() int {
	if p.Total <= 0 {
		return -1
	}
	return int(min(100, p.Written*100/p.Total))
}

// Options configures a Server.
type Options struct {
	// HeartbeatTimeout is sent to the agent as config.heartbeat_timeout
	// ([agent] heartbeat_timeout, default 300 s). IPA heartbeats every
	// 0.3–0.6 × this value.
	HeartbeatTimeout time.Duration
	// OnHeartbeat, if set, is called after each accepted heartbeat (e.g.
	// to persist driver_internal_info.agent_url). It must not block long.
	OnHeartbeat func(ctx context.Context, hb Heartbeat)
	// Logger receives request errors; nil discards them (the App passes
	// its own, so --log-level and redaction apply).
	Logger *slog.Logger
}

// APIVersion is the maximum Ironic API microversion the server claims. IPA
// sends agent_token from 1.62 and agent_version from 1.36.
const (
	APIVersion    = "1.72"
	APIMinVersion = "1.1"
)

// nodeState is the per-node expectation set by a run.
type nodeState struct {
	token    string
	since    time.Time
	hb       Heartbeat
	seen     bool
	changed  chan struct{} // closed and replaced at every heartbeat or Forget
	withdraw bool
	waiters  int // goroutines blocked in WaitHeartbeat (for tests and metrics)
}

// Server is the agent callback API. It is safe for concurrent use.
type Server struct {
	nodes Nodes
	opts  Options
	log   *slog.Logger

	mu     sync.Mutex
	states map[string]*nodeState

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
}

// New returns a server finding nodes through nodes. Call Listen (or mount
// Handler yourself) to serve it.
func New(nodes Nodes, opts Options) *Server {
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = 300 * time.Second
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Server{nodes: nodes, opts: opts, log: lg, states: map[string]*nodeState{}}
}

// Listen starts serving on addr ("127.0.0.1:6385"; port 0 picks a free
// one) in the background until ctx is cancelled or Close is called.
func (s *Server) Listen(ctx context.Context, addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("agent callback API: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.srvMu.Lock()
	if s.srv != nil {
		s.srvMu.Unlock()
		ln.Close()
		return errors.New("agent callback API: already listening")
	}
	s.srv, s.ln, s.done = srv, ln, make(chan struct{})
	done := s.done
	s.srvMu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("agent callback API stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-done:
		}
	}()
	return nil
}

// URL is the base URL the server listens on ("http://127.0.0.1:PORT"), or
// "" when it is not listening. Ramdisks should be given CallbackURL instead.
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the listener and waits for the serving goroutine to end.
func (s *Server) Close() error {
	s.srvMu.Lock()
	srv, done := s.srv, s.done
	s.srv, s.ln = nil, nil
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// a ramdisk's request still in a handler after 5 s (a loaded
		// machine): the process is closing, so cut it; the ramdisk retries
		// against the next process as it does after any restart
		err = srv.Close()
	}
	<-done
	return err
}

// NewToken generates a fresh agent token (256 random bits, hex) for the
// node and registers it with Expect. Callers must treat it as a secret.
func (s *Server) NewToken(nodeUUID string) (string, error) {
	if nodeUUID == "" {
		return "", errors.New("agent token: node UUID is empty")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	tok := hex.EncodeToString(b)
	s.Expect(nodeUUID, tok)
	return tok, nil
}

// Expect registers token as the only agent token accepted for nodeUUID and
// forgets any earlier heartbeat: the next agent to heartbeat with this token
// is the node's agent. Lookups find the node from now on.
func (s *Server) Expect(nodeUUID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.states[nodeUUID]; ok {
		old.withdraw = true
		close(old.changed)
	}
	s.states[nodeUUID] = &nodeState{token: token, since: time.Now(), changed: make(chan struct{})}
}

// Forget withdraws the node's token: later heartbeats are refused and
// waiters return an error.
func (s *Server) Forget(nodeUUID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[nodeUUID]; ok {
		st.withdraw = true
		close(st.changed)
		delete(s.states, nodeUUID)
	}
}

// Token returns the registered token of a node (the agent client sends it
// as agent_token to the agent's /v1/commands).
func (s *Server) Token(nodeUUID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[nodeUUID]
	if !ok {
		return "", false
	}
	return st.token, true
}

// Agent returns the node's last heartbeat since its token was registered.
func (s *Server) Agent(nodeUUID string) (Heartbeat, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[nodeUUID]
	if !ok || !st.seen {
		return Heartbeat{}, false
	}
	return st.hb, true
}

// ErrWithdrawn is returned by waits when the node's token was replaced or
// forgotten while waiting.
var ErrWithdrawn = errors.New("agent expectation withdrawn (token replaced or forgotten)")

// ErrNotExpected is returned by waits for a node with no registered token.
var ErrNotExpected = errors.New("no agent token registered for node (call NewToken/Expect first)")

// Waiters returns how many callers are blocked in WaitHeartbeat for the node.
func (s *Server) Waiters(nodeUUID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.states[nodeUUID]; ok {
		return st.waiters
	}
	return 0
}

// Changed returns a channel closed at the node's next heartbeat (or when
// its token is replaced/forgotten), and false when no token is registered.
func (s *Server) Changed(nodeUUID string) (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[nodeUUID]
	if !ok {
		return nil, false
	}
	return st.changed, true
}

// WaitHeartbeat blocks until the node's agent has heartbeated at a time
// after `after` (zero: any heartbeat since the token was registered),
// returning that heartbeat. It returns ctx's error when ctx ends first. It
// starts no goroutine.
func (s *Server) WaitHeartbeat(ctx context.Context, nodeUUID string, after time.Time) (Heartbeat, error) {
	for {
		s.mu.Lock()
		st, ok := s.states[nodeUUID]
		if !ok {
			s.mu.Unlock()
			return Heartbeat{}, ErrNotExpected
		}
		if st.seen && st.hb.At.After(after) {
			hb := st.hb
			s.mu.Unlock()
			return hb, nil
		}
		ch := st.changed
		st.waiters++
		s.mu.Unlock()
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
		st.waiters--
		withdrawn := st.withdraw
		s.mu.Unlock()
		if err != nil {
			return Heartbeat{}, err
		}
		if withdrawn {
			return Heartbeat{}, ErrWithdrawn
		}
	}
}

// checkToken compares a presented token with the registered one in
// constant time. It returns the state (locked by the caller) or an HTTP
// status: 404 unknown node, 401 missing token, 403 wrong token.
func (s *Server) checkTokenLocked(nodeUUID, presented string) (*nodeState, int) {
	st, ok := s.states[nodeUUID]
	if !ok {
		return nil, http.StatusNotFound
	}
	if presented == "" {
		return nil, http.StatusUnauthorized
	}
	if subtle.ConstantTimeCompare([]byte(st.token), []byte(presented)) != 1 {
		return nil, http.StatusForbidden
	}
	return st, 0
}

// recordHeartbeat stores an accepted heartbeat and wakes waiters.
func (s *Server) recordHeartbeat(ctx context.Context, nodeUUID, token string, hb Heartbeat) (int, string) {
	s.mu.Lock()
	st, code := s.checkTokenLocked(nodeUUID, token)
	if code != 0 {
		s.mu.Unlock()
		switch code {
		case http.StatusNotFound:
			return code, "Node " + nodeUUID + " is not waiting for an agent (no agent token registered)."
		default:
			return code, "Invalid or missing agent token received."
		}
	}
	if prev := st.hb.AgentVerifyCA; prev != "" {
		if hb.AgentVerifyCA != "" && strings.TrimSpace(hb.AgentVerifyCA) != strings.TrimSpace(prev) {
			s.mu.Unlock()
			return http.StatusBadRequest, `Detected change in ramdisk provided "agent_verify_ca"`
		}
		hb.AgentVerifyCA = prev
	}
	hb.NodeUUID = nodeUUID
	hb.At = time.Now()
	if !hb.At.After(st.hb.At) { // keep heartbeat times strictly increasing
		hb.At = st.hb.At.Add(time.Nanosecond)
	}
	hb.Count = st.hb.Count + 1
	st.hb, st.seen = hb, true
	close(st.changed)
	st.changed = make(chan struct{})
	s.mu.Unlock()
	if s.opts.OnHeartbeat != nil {
		s.opts.OnHeartbeat(ctx, hb)
	}
	return 0, ""
}

// expected reports whether a node has a registered token.
func (s *Server) expected(nodeUUID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.states[nodeUUID]
	return ok
}

// NormalizeMAC lower-cases a MAC address and accepts ':' or '-' separators;
// it returns "" for anything that is not six hex octets.
func NormalizeMAC(mac string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}
