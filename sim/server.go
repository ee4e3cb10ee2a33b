package sim

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Media is the state of one virtual media slot.
type Media struct {
	URL          string `json:"url"`
	Inserted     bool   `json:"inserted"`
	BootOption   string `json:"boot_option"` // BOOT_ONCE, BOOT_ALWAYS or NO_BOOT
	WriteProtect bool   `json:"write_protect"`
}

// User is an iLO account.
type User struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// License is an installed iLO licence.
type License struct {
	Type        string `json:"type"` // e.g. "iLO Advanced"
	Key         string `json:"key"`
	InstallDate string `json:"install_date"`
	Class       string `json:"class"`
}

// State is the mutable state of one server. [Server.State] returns a copy.
type State struct {
	Port  int    `json:"port"`
	Power string `json:"power"` // "ON" | "OFF"
	// OneTimeBoot is "Normal" or the device of the next boot only
	// (CDROM, HDD, NETWORK, FLOPPY, USB, UEFIHTTP, ...).
	OneTimeBoot string `json:"one_time_boot"`
	// PersistentBoot is the boot order by device class, first wins.
	PersistentBoot []string `json:"persistent_boot"`
	// ContinuousOverride is set when Redfish/REST asked for a Continuous
	// override (then PersistentBoot[0] is its target).
	ContinuousOverride bool   `json:"continuous_override"`
	BootMode           string `json:"boot_mode"`         // current: LEGACY | UEFI
	PendingBootMode    string `json:"pending_boot_mode"` // applied at the next power-on/reset
	// SecureBootEnable is the requested setting; SecureBootCurrent is what the
	// last boot ran with (the setting applies at the next boot, in UEFI only).
	SecureBootEnable  bool   `json:"secure_boot_enable"`
	SecureBootCurrent bool   `json:"secure_boot_current"`
	SecureBootKeys    string `json:"secure_boot_keys"` // "default" | "deleted"
	// Media maps "CDROM" and "FLOPPY" to their slot.
	Media    map[string]Media `json:"media"`
	Users    []User           `json:"users"`
	Licenses []License        `json:"licenses"`
	// CustomPostMessage is the BIOS attribute proliantutils toggles after
	// secure-boot changes on Gen9.
	CustomPostMessage string `json:"custom_post_message"`
	BootCount         int    `json:"boot_count"`  // power-ons and resets so far
	ILOResets         int    `json:"ilo_resets"`  // RESET_RIB / Manager.Reset
	BIOSResets        int    `json:"bios_resets"` // reset_bios_to_default
	NMIs              int    `json:"nmis"`

	// IPMIPort is the UDP port of the IPMI face (kept across restarts with a StateDir).
	IPMIPort int `json:"ipmi_port,omitempty"`
	// BIOSPending and BIOSApplied are BIOS attribute changes of a capture
	// replay: pending until the next boot, then applied.
	BIOSPending map[string]any `json:"bios_pending,omitempty"`
	// UID is the unit identification light ("ON" | "OFF"; empty: off).
	UID string `json:"uid,omitempty"`
	// AssetTag set through RIBCL SET_ASSET_TAG or Redfish (overrides
	// Hardware.AssetTag).
	AssetTag string `json:"asset_tag,omitempty"`
	// PowerOnMinutes is the lifetime power-on time before the current
	// power-on period.
	PowerOnMinutes int            `json:"power_on_minutes"`
	BIOSApplied    map[string]any `json:"bios_applied,omitempty"`
}

func (st *State) clone() State {
	c := *st
	c.PersistentBoot = slices.Clone(st.PersistentBoot)
	c.Users = slices.Clone(st.Users)
	c.Licenses = slices.Clone(st.Licenses)
	c.Media = make(map[string]Media, len(st.Media))
	for k, v := range st.Media {
		c.Media[k] = v
	}
	c.BIOSPending = cloneMap(st.BIOSPending)
	c.BIOSApplied = cloneMap(st.BIOSApplied)
	return c
}

// Server is one emulated iLO and the server behind it.
type Server struct {
	sim      *Sim
	index    int
	genIndex int
	name     string
	gen      Generation
	diskPath string
	ln       net.Listener
	port     int

	mu          sync.Mutex
	st          State
	hw          Hardware
	faults      Faults
	rng         *rand.Rand
	hangCh      chan struct{}
	sessions    map[string]*session
	nextSession int
	bootCancel  context.CancelFunc
	lastBoot    *BootEvent
	resetUntil  time.Time
	post        []func()

	requests    atomic.Int64
	inflight    atomic.Int64
	maxInflight atomic.Int64
	reqLog      []string       // with Options.RequestLog: "METHOD /path body", passwords masked
	rfMux       *http.ServeMux // Redfish resources behind authentication
	ipmi        *ipmiFace      // the IPMI (lanplus) face, see ipmi.go
	capture     *captureTree   // set on a capture replay (Options.Captures)
	onSince     time.Time      // start of the current power-on period
}

type session struct {
	id    string
	token string
	user  string
}

func newServer(s *Sim, index int, name string, g Generation, genIdx int) (*Server, error) {
	srv := &Server{sim: s, index: index, genIndex: genIdx, name: name, gen: g,
		sessions: map[string]*session{},
		rng:      rand.New(rand.NewPCG(s.opts.Seed, uint64(index)+1))}
	srv.rfMux = srv.redfishMux()
	srv.hw = DefaultHardware(g, genIdx)
	if s.opts.Hardware != nil {
		def := srv.hw
		s.opts.Hardware(name, g, genIdx, &srv.hw)
		srv.hw.fillDefaults(def)
	}
	if err := srv.hw.validate(); err != nil {
		return nil, fmt.Errorf("sim: %s: %w", name, err)
	}
	srv.faults = s.opts.Faults
	srv.st = defaultState(g, &srv.hw, s.opts)
	if s.opts.StateDir != "" {
		b, err := os.ReadFile(srv.statePath())
		switch {
		case err == nil:
			var st State
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("sim: %s: %w (delete the file to start afresh)", srv.statePath(), err)
			}
			st.fillDefaults(srv.st)
			srv.st = st
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("sim: read state: %w", err)
		}
	}
	srv.diskPath = filepath.Join(s.dir, name+".disk")
	f, err := os.OpenFile(srv.diskPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sim: create disk: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < s.opts.DiskSize {
		err = f.Truncate(s.opts.DiskSize)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sim: size disk %s: %w", srv.diskPath, err)
	}
	return srv, nil
}

func defaultState(g Generation, hw *Hardware, opts Options) State {
	st := State{
		Power:           "OFF",
		OneTimeBoot:     "Normal",
		PersistentBoot:  []string{"CDROM", "HDD", "NETWORK", "USB", "FLOPPY"},
		BootMode:        "UEFI",
		SecureBootKeys:  "default",
		Media:           map[string]Media{"CDROM": {BootOption: "BOOT_ALWAYS"}, "FLOPPY": {BootOption: "BOOT_ALWAYS"}},
		Licenses:        []License{defaultLicense(hw)},
		PendingBootMode: "",
	}
	if hw.SupportedBootModes == "LEGACY_ONLY" || g == Gen8 {
		st.BootMode = "LEGACY"
	}
	if !hw.supportsMode(st.BootMode) {
		st.BootMode = "UEFI"
	}
	st.PendingBootMode = st.BootMode
	pw := opts.Password
	if pw == "" {
		pw = randomPassword()
	}
	st.Users = []User{{Login: opts.Username, Password: pw}}
	return st
}

// DefaultLicense is the licence a simulated iLO starts with unless its
// Hardware.License says otherwise.
const DefaultLicense = "iLO Advanced"

// defaultLicense is the starting licence of hw: no key (none was
// activated), class FQL for a full licence.
func defaultLicense(hw *Hardware) License {
	t := hw.License
	if t == "" {
		t = DefaultLicense
	}
	l := License{Type: t}
	if !strings.Contains(strings.ToLower(t), "standard") {
		l.Class = "FQL"
	}
	return l
}

func (st *State) fillDefaults(def State) {
	if st.Power == "" {
		st.Power = def.Power
	}
	if st.OneTimeBoot == "" {
		st.OneTimeBoot = def.OneTimeBoot
	}
	if len(st.PersistentBoot) == 0 {
		st.PersistentBoot = def.PersistentBoot
	}
	if st.BootMode == "" {
		st.BootMode = def.BootMode
	}
	if st.PendingBootMode == "" {
		st.PendingBootMode = st.BootMode
	}
	if st.SecureBootKeys == "" {
		st.SecureBootKeys = def.SecureBootKeys
	}
	if st.Media == nil {
		st.Media = def.Media
	}
	for _, d := range []string{"CDROM", "FLOPPY"} {
		if _, ok := st.Media[d]; !ok {
			st.Media[d] = def.Media[d]
		}
	}
	if len(st.Users) == 0 {
		st.Users = def.Users
	}
	if st.Licenses == nil {
		st.Licenses = def.Licenses
	}
}

func randomPassword() string {
	b := make([]byte, 9)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) statePath() string {
	return filepath.Join(s.sim.opts.StateDir, s.name+".json")
}

// listen opens the server's listener, on its saved port when it has one.
func (s *Server) listen() error {
	var ln net.Listener
	var err error
	if p := s.st.Port; p > 0 && s.sim.opts.StateDir != "" {
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	}
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("sim: listen for %s: %w", s.name, err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.mu.Lock()
	s.st.Port = s.port
	err = s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		ln.Close()
		return err
	}
	cfg := s.sim.certs.tlsConfig.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.handshakeDelay() // the latency profile's handshake cost, if any
		return nil, nil
	}
	s.ln = tls.NewListener(&serverListener{Listener: ln, srv: s}, cfg)
	return nil
}

// saveLocked persists the state when a state dir is configured.
func (s *Server) saveLocked() error {
	if s.sim.opts.StateDir == "" {
		return nil
	}
	b, err := json.MarshalIndent(&s.st, "", "  ")
	if err != nil {
		return fmt.Errorf("sim: encode state of %s: %w", s.name, err)
	}
	if err := writeFileAtomic(s.statePath(), b, 0o600); err != nil {
		s.sim.log.Error("sim: save state", "server", s.name, "err", err)
		return err
	}
	return nil
}

// Name is the server's name, e.g. "gen10-0".
func (s *Server) Name() string { return s.name }

// Generation is the server's generation.
func (s *Server) Generation() Generation { return s.gen }

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is "https://127.0.0.1:PORT".
func (s *Server) URL() string { return "https://" + s.Addr() }

// DiskPath is the server's virtual disk file.
func (s *Server) DiskPath() string { return s.diskPath }

// Username is the administrator login.
func (s *Server) Username() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Users[0].Login
}

// Password is the administrator's current password.
func (s *Server) Password() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Users[0].Password
}

// Requests is the number of HTTP requests the server has received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// MaxInFlight is the highest number of requests the server has served at
// once (what a client-side concurrency limit must bound).
func (s *Server) MaxInFlight() int64 { return s.maxInflight.Load() }

// maxRequestLog bounds the request log of one server.
const maxRequestLog = 4096

// RequestLog returns the requests seen so far as "METHOD /path body" (the
// body trimmed, every account's password replaced by ******), oldest
// first. It is empty unless [Options.RequestLog] is set.
func (s *Server) RequestLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqLog)
}

// logRequest records r (its body is read and put back).
func (s *Server) logRequest(r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	text := strings.TrimSpace(string(body))
	for _, u := range s.st.Users {
		if u.Password == "" {
			continue
		}
		var esc strings.Builder
		_ = xml.EscapeText(&esc, []byte(u.Password))
		text = strings.ReplaceAll(strings.ReplaceAll(text, u.Password, "******"), esc.String(), "******")
	}
	if len(s.reqLog) >= maxRequestLog {
		s.reqLog = s.reqLog[1:]
	}
	s.reqLog = append(s.reqLog, r.Method+" "+r.URL.Path+" "+text)
}

// State returns a copy of the server's state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.clone()
}

// Update changes the state under the server's lock (no boot hook runs; use
// [Server.PowerOn] to boot). The state is saved afterwards.
func (s *Server) Update(fn func(st *State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.st)
	_ = s.saveLocked()
}

// Hardware returns a copy of the server's inventory.
func (s *Server) Hardware() Hardware {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hw
	h.CPUs = slices.Clone(h.CPUs)
	h.LogicalDrivesGB = slices.Clone(h.LogicalDrivesGB)
	h.NICs = slices.Clone(h.NICs)
	h.GPUs = slices.Clone(h.GPUs)
	return h
}

// SetHardware replaces the inventory (zero fields keep their defaults).
func (s *Server) SetHardware(h Hardware) error {
	h.fillDefaults(DefaultHardware(s.gen, s.genIndex))
	if err := h.validate(); err != nil {
		return fmt.Errorf("sim: %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.hw = h
	s.mu.Unlock()
	return nil
}

// LastBoot returns the event of the most recent boot.
func (s *Server) LastBoot() (BootEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastBoot == nil {
		return BootEvent{}, false
	}
	ev := *s.lastBoot
	ev.Media = maps2(ev.Media)
	ev.MACs = slices.Clone(ev.MACs)
	return ev, true
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func maps2(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Sessions is the number of open Redfish sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// SessionInfo is one open Redfish session as the admin endpoint shows it.
type SessionInfo struct {
	ID   string `json:"id"`
	User string `json:"user"`
}

// SessionList returns the open Redfish sessions, sorted by id.
func (s *Server) SessionList() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, se := range s.sessions {
		out = append(out, SessionInfo{ID: se.id, User: se.user})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// EndSessions ends the Redfish session id (every session when id is
// empty) the way an iLO expires one: its token stops working. It returns
// how many sessions ended.
func (s *Server) EndSessions(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for tok, se := range s.sessions {
		if id == "" || strings.EqualFold(se.id, id) {
			delete(s.sessions, tok)
			n++
		}
	}
	return n
}

// PowerOn powers the server on (no-op when on), running the boot hook.
func (s *Server) PowerOn() {
	s.do(func(st *State) error {
		if st.Power != "ON" {
			s.bootLocked()
		}
		return nil
	})
}

// PowerOff powers the server off (no-op when off) and cancels the boot
// hook's context.
func (s *Server) PowerOff() {
	s.do(func(st *State) error {
		s.powerOffLocked()
		return nil
	})
}

// Reset restarts a powered-on server (or powers on an off one).
func (s *Server) Reset() {
	s.do(func(st *State) error {
		s.bootLocked()
		return nil
	})
}

// OSPowerOff powers the server off on behalf of the operating system of the
// boot whose hook context is ctx (a guest that shut down). Nothing happens
// when that boot already ended (the server was powered off or reset
// meanwhile, which cancelled ctx), so a late guest exit never powers off
// the next boot. Call it from the hook, before it returns (ctx ends with
// the hook).
func (s *Server) OSPowerOff(ctx context.Context) {
	s.do(func(st *State) error {
		if ctx.Err() == nil {
			s.powerOffLocked()
		}
		return nil
	})
}

// OSReset resets the server on behalf of the operating system of the boot
// whose hook context is ctx (a guest that rebooted): the one-time boot
// device is consumed as on any reset and the boot hook runs again. Nothing
// happens when that boot already ended.
func (s *Server) OSReset(ctx context.Context) {
	s.do(func(st *State) error {
		if ctx.Err() == nil {
			s.bootLocked()
		}
		return nil
	})
}

// gracefulLocked delivers a graceful shutdown request to a powered-on
// server: to the running OS when [Options.GracefulShutdown] takes it, else
// the server powers off at once.
func (s *Server) gracefulLocked() {
	if g := s.sim.opts.GracefulShutdown; g != nil && g(s.name) {
		return
	}
	s.powerOffLocked()
}

// do runs fn under the lock, saves the state when fn succeeds, then runs the
// actions fn queued (boot hooks) after unlocking.
func (s *Server) do(fn func(st *State) error) error {
	s.mu.Lock()
	err := fn(&s.st)
	if err == nil {
		_ = s.saveLocked()
	}
	post := s.post
	s.post = nil
	s.mu.Unlock()
	for _, f := range post {
		f()
	}
	return err
}

func (s *Server) powerOffLocked() {
	if s.st.Power == "ON" && !s.onSince.IsZero() {
		s.st.PowerOnMinutes += int(time.Since(s.onSince) / time.Minute)
	}
	s.onSince = time.Time{}
	s.st.Power = "OFF"
	if s.bootCancel != nil {
		s.bootCancel()
		s.bootCancel = nil
	}
}

// bootLocked powers on (or resets) the server: applies the pending boot
// mode and secure boot, picks the boot device, and queues the boot hook.
func (s *Server) bootLocked() {
	st := &s.st
	if s.bootCancel != nil {
		s.bootCancel()
		s.bootCancel = nil
	}
	if st.Power != "ON" || s.onSince.IsZero() {
		s.onSince = time.Now()
	}
	st.Power = "ON"
	s.applyBIOSLocked()
	if st.PendingBootMode != "" && s.hw.supportsMode(st.PendingBootMode) {
		st.BootMode = st.PendingBootMode
	}
	st.SecureBootCurrent = st.SecureBootEnable && st.BootMode == "UEFI" && st.SecureBootKeys != "deleted"
	dev := ""
	if st.OneTimeBoot != "" && !strings.EqualFold(st.OneTimeBoot, "Normal") {
		dev = strings.ToUpper(st.OneTimeBoot)
		st.OneTimeBoot = "Normal"
	}
	if dev == "" {
		for _, d := range []string{"CDROM", "FLOPPY"} {
			if m := st.Media[d]; m.Inserted && m.BootOption == "BOOT_ONCE" {
				dev = d
				m.BootOption = "BOOT_ALWAYS"
				st.Media[d] = m
				break
			}
		}
	}
	if dev == "" {
		for _, d := range st.PersistentBoot {
			if d == "CDROM" || d == "FLOPPY" {
				if m := st.Media[d]; !m.Inserted || m.BootOption == "NO_BOOT" {
					continue
				}
			}
			if d == "HDD" && len(s.hw.LogicalDrivesGB) == 0 {
				continue
			}
			dev = d
			break
		}
	}
	if dev == "" {
		dev = "NETWORK"
	}
	st.BootCount++
	ev := BootEvent{
		Server:     s.name,
		Generation: string(s.gen),
		BootDevice: dev,
		BootMode:   st.BootMode,
		SecureBoot: st.SecureBootCurrent,
		Media:      map[string]string{},
		MACs:       s.hw.MACs(),
		DiskPath:   s.diskPath,
	}
	for d, m := range st.Media {
		if m.Inserted {
			ev.Media[d] = m.URL
		}
	}
	s.lastBoot = &ev
	hook := s.sim.opts.BootHook
	if hook == nil {
		return
	}
	s.sim.closeMu.Lock()
	closed := s.sim.closed
	if !closed {
		s.sim.hookWG.Add(1)
	}
	s.sim.closeMu.Unlock()
	if closed {
		return
	}
	ctx, cancel := context.WithCancel(s.sim.baseCtx)
	s.bootCancel = cancel
	hookEv := ev
	hookEv.Media = maps2(ev.Media)
	hookEv.MACs = slices.Clone(ev.MACs)
	s.post = append(s.post, func() {
		go func() {
			defer s.sim.hookWG.Done()
			defer cancel()
			hook(ctx, hookEv)
		}()
	})
}

// checkLogin reports whether login/password is a valid account.
func (s *Server) checkLoginLocked(login, password string) bool {
	for _, u := range s.st.Users {
		if u.Login == login && u.Password == password {
			return true
		}
	}
	return false
}

// serverListener tags accepted connections with their server.
type serverListener struct {
	net.Listener
	srv *Server
}

func (l *serverListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: c, srv: l.srv}, nil
}

type serverConn struct {
	net.Conn
	srv *Server
}

type ctxKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*serverConn); ok {
		return context.WithValue(ctx, ctxKey{}, sc.srv)
	}
	return ctx
}

func serverFromContext(ctx context.Context) *Server {
	srv, _ := ctx.Value(ctxKey{}).(*Server)
	return srv
}

// resetConnection aborts the TCP connection (RST) like a crashing iLO.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*serverConn); ok {
		c = sc.Conn
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	c.Close()
}

// ServeHTTP answers one request to this iLO.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for m := s.maxInflight.Load(); n > m && !s.maxInflight.CompareAndSwap(m, n); m = s.maxInflight.Load() {
	}
	if s.sim.opts.RequestLog {
		s.logRequest(r)
	}
	if !s.preflight(w, r) {
		return
	}
	if s.capture != nil {
		s.serveCapture(w, r)
		return
	}
	p := r.URL.Path
	switch {
	case strings.EqualFold(p, "/ribcl"):
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveRIBCL(w, r)
	case strings.EqualFold(p, "/xmldata"):
		s.serveXMLData(w, r)
	case hasPrefixFold(p, "/rest/v1") && s.gen.rest():
		s.serveREST(w, r)
	case hasPrefixFold(p, "/redfish") && s.gen.redfish():
		s.serveRedfish(w, r)
	default:
		http.NotFound(w, r)
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
