package ramdisk

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
)

// AgentVersion is the IPA version the emulated agent reports.
const AgentVersion = "10.0.0"

// IPAISCSIVersion is the agent_version of an agent with
// Failures.UnmodifiedIPA: ironic-python-agent 7.1.0, the last release with
// the iscsi extension.
const IPAISCSIVersion = "7.1.0"

// version is the agent_version the agent reports.
func (a *Agent) version() string {
	if a.cfg.Failures.UnmodifiedIPA {
		return IPAISCSIVersion
	}
	return AgentVersion
}

// hardwareManagerVersion is the GenericHardwareManager version reported by
// clean.get_clean_steps and checked by clean.execute_clean_step.
const hardwareManagerVersion = "1.2"

// AgentConfig describes one emulated IPA agent.
type AgentConfig struct {
	// Server is the simulated server name (passed to PowerOff).
	Server string
	// APIURLs are the Ironic API URLs to call back (ipa-api-url, which may
	// list several separated by commas); the first that answers is used.
	APIURLs []string
	// Token is the pre-generated agent token (ipa-agent-token).
	Token string
	// MACs are the server's NIC addresses, used for lookup.
	MACs []string
	// DiskPath is the server's virtual disk file.
	DiskPath string
	// Params are all kernel/floppy parameters (kept for inspection).
	Params map[string]string
	// Failures to inject.
	Failures Failures
	// HeartbeatInterval between heartbeats (default 5 s).
	HeartbeatInterval time.Duration
	// LookupInterval is the first retry delay of lookups (default 1 s,
	// doubling up to 5 s).
	LookupInterval time.Duration
	// WorkDir holds downloads (default os.TempDir()).
	WorkDir string
	// HTTPClient downloads images and calls the API (default: a plain client).
	HTTPClient *http.Client
	// PowerOff powers the server off (standby.power_off). Nil: the agent
	// just stops, as a halted ramdisk would.
	PowerOff func(ctx context.Context, server string) error
	// QemuImg is the qemu-img command (default "qemu-img").
	QemuImg string
	// Logger (default: discard).
	Logger *slog.Logger
}

// Agent is a running emulated ironic-python-agent.
type Agent struct {
	cfg    AgentConfig
	log    *slog.Logger
	client *http.Client
	ln     net.Listener
	srv    *http.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}

	caPEM string // agent_verify_ca (Failures.UnmodifiedIPA's automatic TLS)

	mu            sync.Mutex
	token         string
	tokenRequired bool
	getToken      bool // a GET presented a token: GETs require it from now on
	apiURL        string
	nodeUUID      string
	heartbeats    int
	cmds          []*command
	force         chan struct{} // heartbeat now (after an async command ends)
	lastErr       string
	target        *tgt.Target // the iSCSI target (iscsi.start_iscsi_target)
	relay         *relay      // in front of target with Failures.TargetVanishesAfter
}

// StartAgent starts an agent listening on 127.0.0.1 (a free port) that
// looks itself up, heartbeats and serves /v1/commands until ctx ends or
// Stop is called. It does not need boot media: Ramdisk.Boot uses it after
// reading the parameters, and tests of the agent client use it directly.
func StartAgent(ctx context.Context, cfg AgentConfig) (*Agent, error) {
	if len(cfg.APIURLs) == 0 {
		return nil, errors.New("ramdisk agent: no ipa-api-url")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.LookupInterval <= 0 {
		cfg.LookupInterval = time.Second
	}
	if cfg.QemuImg == "" {
		cfg.QemuImg = "qemu-img"
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, client: cfg.HTTPClient, token: cfg.Token,
		done: make(chan struct{}), force: make(chan struct{}, 1)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("server", cfg.Server)
	if a.client == nil {
		a.client = &http.Client{}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ramdisk agent: listen: %w", err)
	}
	if cfg.Failures.UnmodifiedIPA {
		// IPA's enable_auto_tls (default on; lightsout's API is ≥ 1.68):
		// a self-signed certificate for the advertised address, sent as
		// agent_verify_ca. (IPA decides after its version discovery; the
		// emulation serves https from the start.)
		cert, caPEM, err := autoTLSCertificate("127.0.0.1")
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("ramdisk agent: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		a.caPEM = caPEM
	}
	a.ln = ln
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.srv = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelDebug), // TLS handshake errors
		BaseContext: func(net.Listener) context.Context { return a.ctx }}
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent API stopped", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		a.loop()
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-a.ctx.Done():
		}
		a.shutdown()
	}()
	return a, nil
}

// URL is the agent's callback URL (http://127.0.0.1:PORT; https with
// Failures.UnmodifiedIPA, whose certificate is VerifyCA).
func (a *Agent) URL() string {
	if a.caPEM != "" {
		return "https://" + a.ln.Addr().String()
	}
	return "http://" + a.ln.Addr().String()
}

// VerifyCA is the PEM certificate the agent sends as agent_verify_ca ("" when
// it serves plain http).
func (a *Agent) VerifyCA() string { return a.caPEM }

// autoTLSCertificate makes a certificate as IPA 7.1.0's
// tls_utils._generate_tls_certificate: self-signed ECDSA P-256, SHA-256,
// the IP address as subject alternative name, valid 30 days.
func autoTLSCertificate(ip string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("auto TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("auto TLS serial: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("auto TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}

// NodeUUID is the node found by lookup ("" before).
func (a *Agent) NodeUUID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeUUID
}

// Heartbeats is the number of accepted heartbeats.
func (a *Agent) Heartbeats() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.heartbeats
}

// LastError is the last lookup or heartbeat failure ("" when none).
func (a *Agent) LastError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr
}

// Params returns a copy of the parameters the agent booted with.
func (a *Agent) Params() map[string]string {
	out := make(map[string]string, len(a.cfg.Params))
	for k, v := range a.cfg.Params {
		out[k] = v
	}
	return out
}

// Done is closed when the agent has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Stop stops the agent and waits for its goroutines.
func (a *Agent) Stop() {
	a.cancel()
	<-a.done
}

func (a *Agent) shutdown() {
	a.cancel()
	a.stopISCSITarget()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	a.wg.Wait()
	close(a.done)
}

func (a *Agent) setErr(err error) {
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
}

// loop looks the node up, then heartbeats until the agent stops.
func (a *Agent) loop() {
	delay := a.cfg.LookupInterval
	for {
		err := a.lookup(a.ctx)
		if err == nil {
			break
		}
		a.setErr(err)
		a.log.Debug("lookup failed, retrying", "err", err)
		if !sleepCtx(a.ctx, delay) {
			return
		}
		delay = min(delay*2, 5*time.Second)
	}
	if a.cfg.Failures.NoHeartbeat {
		a.log.Info("injected failure: no heartbeat")
		<-a.ctx.Done()
		return
	}
	timer := time.NewTimer(0) // IPA heartbeats at once after lookup
	defer timer.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-timer.C:
		case <-a.force:
		}
		if err := a.heartbeat(a.ctx); err != nil {
			if a.ctx.Err() != nil {
				return
			}
			a.setErr(err)
			a.log.Warn("heartbeat failed", "err", err)
		}
		timer.Reset(a.cfg.HeartbeatInterval)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// apiVersion asks GET / for the API version (IPA falls back to 1.31).
func (a *Agent) apiVersion(ctx context.Context, api string) string {
	var root struct {
		DefaultVersion struct {
			Version string `json:"version"`
		} `json:"default_version"`
	}
	if err := a.call(ctx, http.MethodGet, api+"/", "", nil, &root, http.StatusOK); err != nil || root.DefaultVersion.Version == "" {
		return "1.31"
	}
	return root.DefaultVersion.Version
}

// versionAtLeast compares "1.62"-style versions.
func versionAtLeast(v, want string) bool {
	pv := strings.SplitN(v, ".", 2)
	pw := strings.SplitN(want, ".", 2)
	if len(pv) != 2 || len(pw) != 2 {
		return false
	}
	a1, _ := strconv.Atoi(pv[0])
	a2, _ := strconv.Atoi(pv[1])
	b1, _ := strconv.Atoi(pw[0])
	b2, _ := strconv.Atoi(pw[1])
	return a1 > b1 || (a1 == b1 && a2 >= b2)
}

// lookup does IPA's GET /v1/lookup?addresses=… against each API URL.
func (a *Agent) lookup(ctx context.Context) error {
	var errs []error
	for _, api := range a.cfg.APIURLs {
		api = strings.TrimRight(api, "/")
		ver := a.apiVersion(ctx, api)
		hdrVer := ver
		if versionAtLeast(ver, "1.62") {
			hdrVer = "1.62"
		}
		q := url.Values{"addresses": {strings.Join(a.cfg.MACs, ",")}}
		var res struct {
			Node struct {
				UUID string `json:"uuid"`
			} `json:"node"`
			Config map[string]any `json:"config"`
		}
		if err := a.call(ctx, http.MethodGet, api+"/v1/lookup?"+q.Encode(), hdrVer, nil, &res, http.StatusOK); err != nil {
			errs = append(errs, err)
			continue
		}
		if res.Node.UUID == "" || res.Config == nil {
			errs = append(errs, fmt.Errorf("lookup at %s: answer without node.uuid or config", api))
			continue
		}
		a.mu.Lock()
		a.apiURL, a.nodeUUID = api, res.Node.UUID
		if tok, _ := res.Config["agent_token"].(string); len(tok) >= 32 {
			a.token = tok // Ironic-generated token (none pre-generated)
		}
		if req, _ := res.Config["agent_token_required"].(bool); req {
			a.tokenRequired = true
		}
		a.mu.Unlock()
		a.log.Info("looked up", "node", res.Node.UUID, "api", api)
		return nil
	}
	return errors.Join(errs...)
}

// heartbeat does IPA's POST /v1/heartbeat/<uuid>.
func (a *Agent) heartbeat(ctx context.Context) error {
	a.mu.Lock()
	api, uuid, tok := a.apiURL, a.nodeUUID, a.token
	a.mu.Unlock()
	body := map[string]any{"callback_url": a.URL(), "agent_version": a.version(), "agent_token": tok}
	hdr := "1.62"
	if a.caPEM != "" {
		body["agent_verify_ca"], hdr = a.caPEM, "1.68"
	}
	if err := a.call(ctx, http.MethodPost, api+"/v1/heartbeat/"+url.PathEscape(uuid), hdr, body, nil, http.StatusAccepted); err != nil {
		return err
	}
	a.mu.Lock()
	a.heartbeats++
	a.mu.Unlock()
	return nil
}

// forceHeartbeat asks for a heartbeat now (IPA does so when an
// asynchronous command ends).
func (a *Agent) forceHeartbeat() {
	select {
	case a.force <- struct{}{}:
	default:
	}
}

// call performs one JSON request to the Ironic API.
func (a *Agent) call(ctx context.Context, method, u, apiVer string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if apiVer != "" {
		req.Header.Set("X-OpenStack-Ironic-API-Version", apiVer)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, stripQuery(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, stripQuery(u), resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, stripQuery(u), err)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// stripQuery removes the query string (temp URL signatures, tokens) of a
// URL for messages.
func stripQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// ---- the agent's own API (/v1/commands) ----

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.apiRoot)
	mux.HandleFunc("GET /v1", a.apiRoot)
	mux.HandleFunc("GET /v1/{$}", a.apiRoot)
	mux.HandleFunc("GET /v1/status", a.apiStatus)
	mux.HandleFunc("GET /v1/commands", a.apiList)
	mux.HandleFunc("GET /v1/commands/{$}", a.apiList)
	mux.HandleFunc("GET /v1/commands/{id}", a.apiGet)
	mux.HandleFunc("POST /v1/commands", a.apiRun)
	mux.HandleFunc("POST /v1/commands/{$}", a.apiRun)
	return mux
}

func (a *Agent) apiRoot(w http.ResponseWriter, r *http.Request) {
	v := map[string]any{"id": "v1", "links": []any{map[string]any{"href": "http://" + r.Host + "/v1/", "rel": "self"}}}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":            "OpenStack Ironic Python Agent API (lightsout emulation)",
		"versions":        []any{v},
		"default_version": v,
	})
}

func (a *Agent) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": a.version()})
}

// tokenOK applies IPA's checks: POST always validates the token; GETs
// validate it once any GET presented one.
func (a *Agent) tokenOK(r *http.Request, post bool) bool {
	tok := r.URL.Query().Get("agent_token")
	a.mu.Lock()
	defer a.mu.Unlock()
	if !post {
		if tok != "" {
			a.getToken = true
		}
		if !a.getToken {
			return true
		}
	}
	if a.token == "" && !a.tokenRequired {
		return true
	}
	return a.token != "" && subtle.ConstantTimeCompare([]byte(a.token), []byte(tok)) == 1
}

func (a *Agent) apiList(w http.ResponseWriter, r *http.Request) {
	if !a.tokenOK(r, false) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	a.mu.Lock()
	cmds := append([]*command(nil), a.cmds...)
	a.mu.Unlock()
	list := make([]any, 0, len(cmds))
	for _, c := range cmds {
		list = append(list, c.serialize())
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": list})
}

func (a *Agent) apiGet(w http.ResponseWriter, r *http.Request) {
	if !a.tokenOK(r, false) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	id := r.PathValue("id")
	var found *command
	a.mu.Lock()
	for _, c := range a.cmds {
		if c.id == id {
			found = c
		}
	}
	a.mu.Unlock()
	if found == nil {
		writeFault(w, http.StatusNotFound, fmt.Sprintf("Command result with id %s not found.", id))
		return
	}
	if strings.EqualFold(r.URL.Query().Get("wait"), "true") {
		select {
		case <-found.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, found.serialize())
}

func (a *Agent) apiRun(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string         `json:"name"`
		Params map[string]any `json:"params"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil || json.Unmarshal(data, &body) != nil || body.Name == "" || body.Params == nil {
		writeFault(w, http.StatusBadRequest, "Missing or invalid name or params")
		return
	}
	if !a.tokenOK(r, true) {
		writeFault(w, http.StatusUnauthorized, "Token invalid.")
		return
	}
	c, code, msg := a.execute(body.Name, body.Params)
	if code != 0 {
		writeFault(w, code, msg)
		return
	}
	if strings.EqualFold(r.URL.Query().Get("wait"), "true") {
		select {
		case <-c.done:
		case <-r.Context().Done():
			return
		}
	}
	writeJSON(w, http.StatusOK, c.serialize())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFault writes IPA's error shape {faultcode, faultstring}.
func writeFault(w http.ResponseWriter, code int, msg string) {
	fc := "Client"
	if code >= 500 {
		fc = "Server"
	}
	writeJSON(w, code, map[string]any{"faultcode": fc, "faultstring": msg})
}

// newID returns a random UUID-shaped id.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
