// Package sim is a stateful HPE iLO simulator, in the spirit of
// net/http/httptest: it emulates a fleet of ProLiant servers, each on its own
// HTTPS listener at 127.0.0.1:port, speaking the protocols of its generation
// the way real iLOs (and therefore proliantutils and our own client) see them:
//
//   - gen8  (iLO 4 < 2.30): RIBCL (POST /ribcl, GET /xmldata?item=all)
//   - gen9  (iLO 4 >= 2.30): RIBCL + HP REST (/rest/v1) + Redfish with Oem.Hp
//   - gen10 (iLO 5): Redfish with Oem.Hpe + RIBCL
//   - gen11 (iLO 6): Redfish, UEFI only (no BootMode BIOS attribute,
//     UefiClass 3); RIBCL present but optional ([Hardware.RIBCL])
//   - gen12 (iLO 7): Redfish only, UEFI only; /ribcl is 404
//
// [Options.Captures] adds servers that replay captured Redfish trees (the
// layout of `lightsout capture`) with a state overlay; see capture.go.
// [Faults.Profile] charges a per-generation [LatencyProfile].
//
// Each server keeps power, boot (one-time, persistent, pending boot mode),
// secure boot, virtual media, users, licences and inventory state that tests
// read and change through the Go API ([Server.State], [Server.Update]).
// Faults (latency, error rates, resets, hangs, busy answers, session limits)
// are injected per server. A [BootHook] runs on every power-on and reset.
package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BootEvent describes a server starting up.
type BootEvent struct {
	Server     string // server name, e.g. "gen10-0"
	Generation string // "gen8" | "gen9" | "gen10" | "gen11" | "gen12"
	BootDevice string // effective device this boot: "CDROM", "HDD", "NETWORK", ...
	BootMode   string // "LEGACY" | "UEFI" (after applying the pending mode)
	SecureBoot bool
	Media      map[string]string // attached virtual media: "CDROM"/"FLOPPY" -> URL
	MACs       []string
	DiskPath   string // the server's virtual disk file (created, size configurable)
}

// BootHook is called, in its own goroutine, every time a server powers on or
// resets. ctx is cancelled when the server powers off or resets again, or
// when the simulator closes.
type BootHook func(ctx context.Context, ev BootEvent)

// NodeSpec asks for Count servers of one generation.
type NodeSpec struct {
	Generation Generation
	Count      int
}

// ParseNodes parses "gen8=2,gen9=1,gen10=2,gen11=1,gen12=1".
func ParseNodes(s string) ([]NodeSpec, error) {
	var out []NodeSpec
	seen := map[Generation]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("--nodes %q: want GEN=COUNT pairs such as gen8=2,gen10=1", part)
		}
		g, err := ParseGeneration(k)
		if err != nil {
			return nil, fmt.Errorf("--nodes: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--nodes %q: count must be a non-negative integer", part)
		}
		if seen[g] {
			return nil, fmt.Errorf("--nodes: %s given twice", g)
		}
		seen[g] = true
		out = append(out, NodeSpec{Generation: g, Count: n})
	}
	if len(out) == 0 {
		return nil, errors.New("--nodes: no servers requested; e.g. --nodes gen8=2,gen10=1")
	}
	return out, nil
}

// Options configure a simulator.
type Options struct {
	// Nodes lists how many servers of each generation to emulate. Servers are
	// named "<gen>-<i>" (i from 0 per generation) in the order given.
	Nodes []NodeSpec
	// Captures are folders of captured Redfish trees (the layout of
	// `lightsout capture`): each is served as one more server, named after
	// its folder, answering from the tree with a state overlay (see
	// capture.go).
	Captures []string
	// Dir holds the CA certificate and the virtual disks. Empty: StateDir if
	// set, else a temporary directory removed by Close.
	Dir string
	// StateDir makes state (and the CA, ports and passwords) survive a restart.
	StateDir string
	// Username of the administrator account (default "Administrator").
	Username string
	// Password of the administrator account. Empty: a random password per server.
	Password string
	// DiskSize is the size of each sparse virtual disk (default 1 GiB).
	DiskSize int64
	// Hardware, when set, customises the inventory of each server at start.
	Hardware func(name string, g Generation, idx int, hw *Hardware)
	// BootHook is called on every power-on and reset.
	BootHook BootHook
	// Faults applied to every server at start (change per server later).
	Faults Faults
	// LatencyProfiles override [DefaultLatencyProfile] per generation for
	// servers whose Faults.Profile is set.
	LatencyProfiles map[Generation]LatencyProfile
	// ILOResetTime is how long an iLO stays unreachable after a reset
	// (RESET_RIB, Manager.Reset). Default 0: it answers again at once.
	ILOResetTime time.Duration
	// DeployISO is written as driver_info.ilo_deploy_iso in the inventory.
	DeployISO string
	// Logger receives request errors and state-save failures (default: discard).
	Logger *slog.Logger
	// HTTPClient fetches virtual media URLs (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Seed makes fault injection reproducible (default 1).
	Seed uint64
	// RequestLog keeps each server's requests for [Server.RequestLog]
	// (tests that check what a client put on the wire).
	RequestLog bool
	// DriverInfo, when set, adds keys to a server's driver_info in the
	// inventory: a machine backend's per-node settings (sim/qemu's
	// kernel_append_params). A nil or empty map adds nothing.
	DriverInfo func(server string) map[string]string
	// GracefulShutdown, when set, is asked first when a powered-on server
	// gets a graceful shutdown request (Redfish PushPowerButton / Press /
	// GracefulShutdown, RIBCL PRESS_PWR_BTN, IPMI chassis power soft). true
	// means the request reached a running OS (an ACPI power button event):
	// the server stays on until that OS powers off ([Server.OSPowerOff]).
	// false (or nil) keeps the emulated behaviour: the server powers off at
	// once. It runs under the server's lock: it must not call back into the
	// simulator.
	GracefulShutdown func(server string) bool
}

// Sim is a running simulator. Create it with [New]; Close it when done.
type Sim struct {
	opts     Options
	dir      string
	tempDir  bool
	certs    *certs
	caFile   string
	servers  []*Server
	byName   map[string]*Server
	srv      *http.Server
	hookWG   sync.WaitGroup
	baseCtx  context.Context
	cancel   context.CancelFunc
	log      *slog.Logger
	client   *http.Client
	serveWG  sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	admin    *http.Server
	adminLn  net.Listener
	adminURL string
}

// New starts a simulator: every listener is up when it returns.
func New(opts Options) (*Sim, error) {
	if len(opts.Nodes) == 0 && len(opts.Captures) == 0 {
		return nil, errors.New("sim: Options.Nodes and Options.Captures are empty; ask for at least one server")
	}
	if opts.Username == "" {
		opts.Username = "Administrator"
	}
	if opts.DiskSize == 0 {
		opts.DiskSize = 1 << 30
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if err := opts.Faults.validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	for g, p := range opts.LatencyProfiles {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("sim: Options.LatencyProfiles[%s]: %w", g, err)
		}
	}
	s := &Sim{opts: opts, byName: map[string]*Server{}, log: opts.Logger, client: opts.HTTPClient}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	s.dir = opts.Dir
	if s.dir == "" {
		s.dir = opts.StateDir
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "lightsout-sim-")
		if err != nil {
			return nil, fmt.Errorf("sim: temp dir: %w", err)
		}
		s.dir, s.tempDir = d, true
	}
	for _, d := range []string{s.dir, opts.StateDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("sim: create %s: %w", d, err)
		}
	}
	certDir := s.dir
	if opts.StateDir != "" {
		certDir = opts.StateDir
	}
	c, err := loadOrCreateCerts(certDir, opts.StateDir != "")
	if err != nil {
		s.cleanupDir()
		return nil, err
	}
	s.certs = c
	s.caFile = filepath.Join(certDir, "ca.pem")
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		ConnContext:       connContext,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	if err := s.startServers(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sim) startServers() error {
	var err error
	for _, spec := range s.opts.Nodes {
		if spec.Count < 0 {
			return fmt.Errorf("sim: %s count %d: must not be negative", spec.Generation, spec.Count)
		}
		if _, e := ParseGeneration(string(spec.Generation)); e != nil {
			return fmt.Errorf("sim: %w", e)
		}
		for i := 0; i < spec.Count; i++ {
			name := fmt.Sprintf("%s-%d", spec.Generation, i)
			if _, dup := s.byName[name]; dup {
				return fmt.Errorf("sim: server %s requested twice", name)
			}
			srv, e := newServer(s, len(s.servers), name, spec.Generation, i)
			if e != nil {
				return e
			}
			s.servers = append(s.servers, srv)
			s.byName[name] = srv
		}
	}
	for i, dir := range s.opts.Captures {
		if strings.TrimSpace(dir) == "" {
			return errNoCapture
		}
		t, info, e := loadCapture(dir)
		if e != nil {
			return e
		}
		name := captureName(dir)
		if _, dup := s.byName[name]; dup {
			return fmt.Errorf("sim: --capture %s: a server named %s already exists; rename the folder", dir, name)
		}
		fresh := true
		if s.opts.StateDir != "" {
			_, e := os.Stat(filepath.Join(s.opts.StateDir, name+".json"))
			fresh = e != nil
		}
		srv, e := newServer(s, len(s.servers), name, info.Generation, 1000+i)
		if e != nil {
			return e
		}
		srv.applyCapture(t, info, fresh)
		s.servers = append(s.servers, srv)
		s.byName[name] = srv
	}
	if len(s.servers) == 0 {
		return errors.New("sim: no servers requested (all counts are 0)")
	}
	for _, srv := range s.servers {
		if err = srv.listen(); err != nil {
			return err
		}
		if err = s.startIPMI(srv); err != nil {
			return err
		}
	}
	for _, srv := range s.servers {
		s.serveWG.Add(1)
		go func(srv *Server) {
			defer s.serveWG.Done()
			_ = s.srv.Serve(srv.ln)
		}(srv)
	}
	return nil
}

// Close stops every listener, cancels boot hooks, waits for them and saves state.
func (s *Sim) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.admin.Shutdown(ctx)
		cancel()
	}
	if s.srv != nil {
		_ = s.srv.Close()
		for _, srv := range s.servers {
			if srv.ln != nil {
				srv.ln.Close()
			}
		}
		for _, srv := range s.servers {
			srv.ipmi.close()
		}
		s.serveWG.Wait()
	}
	for _, srv := range s.servers {
		srv.stopHang()
	}
	s.hookWG.Wait()
	for _, srv := range s.servers {
		srv.mu.Lock()
		if err := srv.saveLocked(); err != nil {
			errs = append(errs, err)
		}
		srv.mu.Unlock()
	}
	s.cleanupDir()
	return errors.Join(errs...)
}

func (s *Sim) cleanupDir() {
	if s.tempDir {
		os.RemoveAll(s.dir)
	}
}

// Servers returns every server in creation order.
func (s *Sim) Servers() []*Server { return append([]*Server(nil), s.servers...) }

// Server returns server i (creation order). It panics when i is out of range,
// like a slice index.
func (s *Sim) Server(i int) *Server { return s.servers[i] }

// Len is the number of servers.
func (s *Sim) Len() int { return len(s.servers) }

// ServerByName returns the named server, e.g. "gen10-0".
func (s *Sim) ServerByName(name string) (*Server, bool) {
	srv, ok := s.byName[name]
	return srv, ok
}

// CAPEM is the PEM of the simulator's CA certificate.
func (s *Sim) CAPEM() []byte { return append([]byte(nil), s.certs.caPEM...) }

// CAFile is the path of the CA certificate file (what ilo_verify_ca points at).
func (s *Sim) CAFile() string { return s.caFile }

// CAFingerprint is the SHA-256 fingerprint of the CA certificate
// (upper-case hex with colons).
func (s *Sim) CAFingerprint() string { return fingerprint(s.certs.caDER) }

// CertFingerprint is the SHA-256 fingerprint of the certificate every server
// presents (what a trust-on-first-use pin records).
func (s *Sim) CertFingerprint() string { return fingerprint(s.certs.leafDER) }

// CertDER is the DER of the presented server certificate.
func (s *Sim) CertDER() []byte { return append([]byte(nil), s.certs.leafDER...) }

// HTTPClient is the client the simulated iLOs fetch virtual media with
// ([Options.HTTPClient] or the default): machine backends fetch the same
// URLs with the same trust.
func (s *Sim) HTTPClient() *http.Client { return s.client }

// Dir is the directory holding the CA file and the virtual disks.
func (s *Sim) Dir() string { return s.dir }

// PowerOff powers the named server off the way an operating system shutdown
// does. Boot hooks call it to end an emulated OS.
func (s *Sim) PowerOff(server string) error {
	srv, ok := s.byName[server]
	if !ok {
		return fmt.Errorf("sim: no server %q", server)
	}
	srv.PowerOff()
	return nil
}

// Node is one entry of the inventory, in the `lightsout node import` shape.
type Node struct {
	Name       string         `json:"name"`
	Driver     string         `json:"driver"`
	DriverInfo map[string]any `json:"driver_info"`
	Properties map[string]any `json:"properties"`
	Ports      []Port         `json:"ports"`
}

// Port is a node's NIC.
type Port struct {
	Address string `json:"address"`
}

// Inventory describes every server as a node to import.
func (s *Sim) Inventory() []Node {
	out := make([]Node, 0, len(s.servers))
	for _, srv := range s.servers {
		st := srv.State()
		hw := srv.Hardware()
		di := map[string]any{
			"ilo_address":   "127.0.0.1",
			"client_port":   srv.Port(),
			"ilo_username":  s.opts.Username,
			"ilo_password":  srv.Password(),
			"ilo_verify_ca": s.caFile,
		}
		if p := srv.IPMIPort(); p != 0 {
			di["ipmi_address"], di["ipmi_port"] = "127.0.0.1", p
		}
		if s.opts.DeployISO != "" {
			di["ilo_deploy_iso"] = s.opts.DeployISO
		}
		if s.opts.DriverInfo != nil {
			for k, v := range s.opts.DriverInfo(srv.Name()) {
				di[k] = v
			}
		}
		props := map[string]any{
			"memory_mb": hw.MemoryMB,
			"cpus":      hw.TotalThreads(),
			"cpu_arch":  "x86_64",
			"local_gb":  hw.LocalGB(),
			"capabilities": fmt.Sprintf("boot_mode:%s,server_model:%s",
				genericBootMode(st.BootMode), hw.Model),
		}
		n := Node{Name: srv.Name(), Driver: "agent_ilo", DriverInfo: di, Properties: props}
		for _, nic := range hw.NICs {
			n.Ports = append(n.Ports, Port{Address: nic.MAC})
		}
		out = append(out, n)
	}
	return out
}

// WriteInventory writes [Sim.Inventory] as indented JSON (mode 0600: it
// holds passwords).
func (s *Sim) WriteInventory(path string) error {
	b, err := json.MarshalIndent(s.Inventory(), "", "  ")
	if err != nil {
		return fmt.Errorf("sim: encode inventory: %w", err)
	}
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return nil
}

// serveHTTP routes a request to the server owning the listener.
func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	srv := serverFromContext(r.Context())
	if srv == nil {
		http.Error(w, "unknown listener", http.StatusInternalServerError)
		return
	}
	srv.ServeHTTP(w, r)
}

// names returns server names sorted, for messages.
func (s *Sim) names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// FleetOptions returns cheap options for a benchmark fleet of gen8 and
// gen10 servers: a fixed password, 1 MiB virtual disks and default
// inventories. One process serves 2,000 servers this way (one listener and
// one accept goroutine per server, nothing else per server).
func FleetOptions(gen8, gen10 int) Options {
	var n []NodeSpec
	if gen8 > 0 {
		n = append(n, NodeSpec{Generation: Gen8, Count: gen8})
	}
	if gen10 > 0 {
		n = append(n, NodeSpec{Generation: Gen10, Count: gen10})
	}
	return Options{Nodes: n, Password: "bench-password", DiskSize: 1 << 20}
}

// genericBootMode maps the iLO boot mode to Ironic's capability value
// (LEGACY -> bios, UEFI -> uefi).
func genericBootMode(mode string) string {
	if strings.EqualFold(mode, "LEGACY") {
		return "bios"
	}
	return strings.ToLower(mode)
}
