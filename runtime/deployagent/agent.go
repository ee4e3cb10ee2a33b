// Package deployagent is lightsout's deploy agent: a small replacement of
// ironic-python-agent (IPA) that runs from lightsout's own ramdisk. Toward
// the callback API (runtime/agentapi) it speaks IPA's protocol (lookup,
// heartbeat with the agent token, /v1/commands); it inventories the
// machine, cleans disks, streams images (raw and qcow2, checksummed while
// written) to the root device picked by Ironic's root device hints, or
// exports that device over iSCSI for the iscsi_ilo driver
// (iscsi.start_iscsi_target: tgtd, package tgt), and powers the machine off.
//
// Progress of an image write goes out in heartbeats as the
// `deploy_progress` extension and on the console as LIGHTSOUT-AGENT-WRITE
// lines (see ConsoleLine* constants).
package deployagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightsout/lightsout/runtime/deployagent/tgt"
)

// Version is the agent version reported as agent_version.
const Version = "lightsout-agent-1.0"

// Console markers (one line each on the console).
const (
	ConsoleStart    = "LIGHTSOUT-AGENT-START"
	ConsoleUp       = "LIGHTSOUT-AGENT-UP"
	ConsoleWrite    = "LIGHTSOUT-AGENT-WRITE"
	ConsolePowerOff = "LIGHTSOUT-AGENT-POWEROFF"
	ConsoleFatal    = "LIGHTSOUT-AGENT-FATAL"
	// ConsoleBootloader starts the lines of image.install_bootloader
	// ("start ..." before, "installed ..." after the boot loader install).
	ConsoleBootloader = "LIGHTSOUT-AGENT-BOOTLOADER"
)

// Config configures an Agent. Zero values are the ramdisk defaults.
type Config struct {
	// Params are the boot parameters (required: APIURLs).
	Params Params
	// Root is the filesystem root where /proc, /sys and /dev are read
	// ("" is "/"); tests point it at a fake tree.
	Root string
	// ListenAddr is the agent API address (default ":<ListenPort>").
	ListenAddr string
	// ISCSIAddr is the address iscsi.start_iscsi_target's tgtd listens on
	// (default "0.0.0.0"; tests use 127.0.0.1).
	ISCSIAddr string
	// AdvertiseURL overrides the callback_url sent in heartbeats.
	AdvertiseURL string
	// MACs are the lookup addresses (default: the NICs in the inventory,
	// BOOTIF first).
	MACs []string
	// Disks lists the block devices (default ListDisks(Root)).
	Disks func() ([]Disk, error)
	// HeartbeatInterval overrides IPA's interval (0.3–0.6 × the
	// heartbeat_timeout the lookup returned).
	HeartbeatInterval time.Duration
	// ProgressInterval is how often a running image write is reported
	// (console line and heartbeat); default 5 s.
	ProgressInterval time.Duration
	// LookupRetry is the first lookup retry delay (default 1 s, doubling to 10 s).
	LookupRetry time.Duration
	// HTTPClient calls the API and downloads images (default: one honouring
	// ipa-insecure and ipa-cafile).
	HTTPClient *http.Client
	// PowerOff syncs and powers the machine off (default: the reboot
	// syscall on Linux). Tests inject one.
	PowerOff func(ctx context.Context) error
	// Sync flushes file system buffers (default: the sync syscall).
	Sync func()
	// Console receives the LIGHTSOUT-AGENT-* lines (default os.Stdout).
	Console io.Writer
	// Logger receives the agent's log (default: discard).
	Logger *slog.Logger
	// StartLinePrinted tells Start that LIGHTSOUT-AGENT-START was already
	// printed (Main prints it first thing, before the network is up).
	StartLinePrinted bool
}

// Agent is a running deploy agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	start  time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ln       net.Listener
	srv      *http.Server
	consMu   sync.Mutex
	progress atomic.Pointer[writeProgress]
	force    chan struct{}

	mu            sync.Mutex
	token         string
	tokenRequired bool
	getToken      bool
	apiURL        string
	apiVersion    string
	node          map[string]any
	nodeUUID      string
	hbTimeout     time.Duration
	heartbeats    int
	lastErr       string
	cmds          []*command
	rootDisk      *Disk
	target        *tgt.Target // iscsi.start_iscsi_target's tgtd
	advertised    string
	up            chan struct{}
}

// New checks cfg and returns an agent; Start or Run it.
func New(cfg Config) (*Agent, error) {
	if len(cfg.Params.APIURLs) == 0 {
		return nil, errors.New("deploy agent: no ipa-api-url: give it on the kernel command line or in the virtual floppy's parameters.txt")
	}
	if cfg.Params.ListenPort == 0 {
		cfg.Params.ListenPort = DefaultListenPort
	}
	if cfg.Params.AdvertisePort == 0 {
		cfg.Params.AdvertisePort = cfg.Params.ListenPort
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":" + strconv.Itoa(cfg.Params.ListenPort)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 5 * time.Second
	}
	if cfg.LookupRetry <= 0 {
		cfg.LookupRetry = time.Second
	}
	if cfg.Console == nil {
		cfg.Console = os.Stdout
	}
	if cfg.Disks == nil {
		root := cfg.Root
		cfg.Disks = func() ([]Disk, error) { return ListDisks(root) }
	}
	if cfg.Sync == nil {
		cfg.Sync = syncFS
	}
	if cfg.PowerOff == nil {
		cfg.PowerOff = powerOffMachine
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, client: cfg.HTTPClient, start: time.Now(),
		token: cfg.Params.Token, force: make(chan struct{}, 1), up: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.client == nil {
		c, err := newHTTPClient(cfg.Params)
		if err != nil {
			return nil, err
		}
		a.client = c
	}
	return a, nil
}

// newHTTPClient honours ipa-insecure and ipa-cafile.
func newHTTPClient(p Params) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: p.Insecure} //nolint:gosec // ipa-insecure asks for it
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ipa-cafile %s: %w", p.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ipa-cafile %s: no PEM certificate found", p.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

// Console writes one LIGHTSOUT-AGENT line.
func (a *Agent) Console(format string, args ...any) {
	a.consMu.Lock()
	defer a.consMu.Unlock()
	fmt.Fprintf(a.cfg.Console, format+"\n", args...)
}

// Uptime returns the machine's uptime in seconds from root/proc/uptime
// (the agent's own age when it cannot be read).
func Uptime(root string) string {
	if root == "" {
		root = "/"
	}
	if b, err := os.ReadFile(filepath.Join(root, "proc", "uptime")); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f[0]
		}
	}
	return "?"
}

// Start starts the agent API and the lookup/heartbeat loop in the
// background; they stop when ctx ends or Stop is called.
func (a *Agent) Start(ctx context.Context) error {
	if !a.cfg.StartLinePrinted {
		a.Console("%s uptime=%s", ConsoleStart, Uptime(a.cfg.Root))
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("deploy agent: listen on %s: %w (set ipa-listen-port)", a.cfg.ListenAddr, err)
	}
	a.ln = ln
	if _, port, _ := net.SplitHostPort(a.cfg.ListenAddr); port == "0" {
		// a free port was asked for (tests): advertise the one we got
		a.cfg.Params.AdvertisePort = ln.Addr().(*net.TCPAddr).Port
	}
	a.ctx, a.cancel = context.WithCancel(ctx)
	a.srv = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
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
		<-a.ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.srv.Shutdown(sctx)
	}()
	return nil
}

// Run starts the agent and blocks until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-a.ctx.Done()
	a.wg.Wait()
	a.stopISCSITarget()
	return nil
}

// Stop stops the agent and waits for its goroutines.
func (a *Agent) Stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	a.stopISCSITarget()
}

// Addr is the agent API's listening address.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Up is closed after a successful lookup.
func (a *Agent) Up() <-chan struct{} { return a.up }

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

func (a *Agent) setErr(err error) {
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
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

// redact removes the agent token from s.
func (a *Agent) redact(s string) string {
	if a.token != "" {
		s = strings.ReplaceAll(s, a.token, "******")
	}
	return s
}
