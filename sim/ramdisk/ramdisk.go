// Package ramdisk emulates an ironic-python-agent (IPA) deploy ramdisk
// booted by a simulated ProLiant server (package sim) from virtual media.
//
// When a simulated server boots from CDROM with virtual media attached,
// [Ramdisk.Boot] downloads the ISO and the floppy from their URLs, reads the
// kernel command line from isolinux.cfg/grub.cfg and the floppy's
// parameters.txt (through package image, as a real ramdisk reads them), and,
// if they carry `ipa-api-url`, runs an IPA-compatible agent on 127.0.0.1:
// lookup by the server's MACs, heartbeats with `ipa-agent-token`, and the
// /v1/commands API with standby.prepare_image (download, checksum, write
// to the server's virtual disk, qcow2 through qemu-img), standby.power_off,
// standby.get_partition_uuids, image.install_bootloader,
// clean.get_clean_steps, clean.execute_clean_step (erase_devices zeroes the
// disk), deploy.get_deploy_steps and deploy.execute_deploy_step.
//
// A network (PXE) boot fetches the server's MAC-named PXE config from
// Options.PXEServer, then the kernel and ramdisk it names, and reads the
// kernel command line from the config (pxe.go); without a config it prints
// the PXE ROM's failure on the console and does not boot.
//
// Failures (checksum mismatch, 404 on download, no heartbeat, failing
// commands) are injected per server with [Ramdisk.SetFailures].
package ramdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
)

// BootEvent describes a server starting up (the same fields as
// sim.BootEvent, which converts to it directly).
type BootEvent struct {
	Server     string            // server name, e.g. "gen10-0"
	Generation string            // "gen8" | "gen9" | "gen10" | "gen11"
	BootDevice string            // "CDROM", "HDD", "NETWORK", ...
	BootMode   string            // "LEGACY" | "UEFI"
	SecureBoot bool              // secure boot active this boot
	Media      map[string]string // "CDROM"/"FLOPPY" -> URL
	MACs       []string
	DiskPath   string
}

// Failures are injectable ramdisk failures.
type Failures struct {
	// ChecksumMismatch makes prepare_image report a checksum mismatch.
	ChecksumMismatch bool
	// DownloadNotFound makes the image download fail with HTTP 404.
	DownloadNotFound bool
	// NoHeartbeat: the agent looks itself up but never heartbeats.
	NoHeartbeat bool
	// FailCommands lists commands that fail ("standby.prepare_image" or
	// the short "prepare_image").
	FailCommands []string
	// WrongCHAPSecret: iscsi.start_iscsi_target binds another CHAP secret
	// than the one it was given (the conductor's login is refused).
	WrongCHAPSecret bool
	// TargetVanishesAfter > 0: the iSCSI target of iscsi.start_iscsi_target
	// vanishes mid-write — once the initiator has sent this many bytes its
	// connections are cut, the portal stops accepting and tgtd is stopped
	// (a ramdisk that crashed or lost its network during the write).
	TargetVanishesAfter int64
	// TargetStallsAfter > 0: once the initiator has sent this many bytes the
	// target stops reading from it (the write hangs mid-way, connections
	// open) until the target is stopped; Agent.ISCSITargetStalled reports it.
	TargetStallsAfter int64
	// UnmodifiedIPA: the ramdisk is an unmodified ironic-python-agent
	// IPAISCSIVersion, not the IPA-compatible agent with lightsout's
	// extensions. It reports that agent_version and refuses parameters
	// IPA's commands do not take (chap_user and chap_secret of
	// iscsi.start_iscsi_target) as IPA does: a synchronous command answers
	// HTTP 500 "Object of type TypeError is not JSON serializable", an
	// asynchronous one fails with "<command>() got an unexpected keyword
	// argument '<name>'".
	UnmodifiedIPA bool
}

// Options configure a Ramdisk.
type Options struct {
	// HeartbeatInterval between heartbeats (default 5 s).
	HeartbeatInterval time.Duration
	// LookupInterval is the first lookup retry delay (default 1 s).
	LookupInterval time.Duration
	// WorkDir holds downloaded media and images (default os.TempDir()).
	WorkDir string
	// HTTPClient fetches media and images and calls the API (default: a
	// client with a 30 s connect/header timeout and no overall limit).
	HTTPClient *http.Client
	// PowerOff powers a server off (standby.power_off); see UseSim.
	PowerOff func(ctx context.Context, server string) error
	// QemuImg is the qemu-img command (default "qemu-img").
	QemuImg string
	// PXEServer is the base URL of the HTTP boot server serving [pxe]
	// tftp_root (pxe.HTTPHandler) that a network boot fetches the
	// server's PXE config, kernel and ramdisk from; "" fails every
	// network boot as a PXE ROM without a boot server does.
	PXEServer string
	// Failures applied to servers without SetFailures.
	Failures Failures
	// Logger (default: discard).
	Logger *slog.Logger
}

// Ramdisk runs emulated deploy ramdisks for simulated servers. It is safe
// for concurrent use; create one per simulator.
type Ramdisk struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	failures map[string]Failures
	agents   map[string]*Agent
	powerOff func(ctx context.Context, server string) error
	console  func(server, line string)
}

// New returns a Ramdisk.
func New(opts Options) *Ramdisk {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   4,
		}}
	}
	return &Ramdisk{opts: opts, log: lg, failures: map[string]Failures{}, agents: map[string]*Agent{},
		powerOff: opts.PowerOff}
}

// SetFailures sets the failures injected into the server's next boots.
func (r *Ramdisk) SetFailures(server string, f Failures) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures[server] = f
}

// SetPowerOff sets how standby.power_off powers a server off.
func (r *Ramdisk) SetPowerOff(fn func(ctx context.Context, server string) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.powerOff = fn
}

func (r *Ramdisk) failuresLocked(server string) Failures {
	if f, ok := r.failures[server]; ok {
		return f
	}
	return r.opts.Failures
}

// Agent returns the server's running agent, or nil.
func (r *Ramdisk) Agent(server string) *Agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.agents[server]
}

// ErrNotRamdisk is returned by Boot when the boot is not an IPA ramdisk
// boot (not from CDROM, no media, or no ipa-api-url in the parameters).
var ErrNotRamdisk = errors.New("not an agent ramdisk boot")

// Boot emulates the server booting: for a CDROM boot with virtual media it
// reads the ISO's kernel command line and the floppy's parameters (for a
// NETWORK boot, the PXE config's; see Options.PXEServer) and, when
// they carry ipa-api-url, runs the agent until ctx ends (the sim cancels it
// at power off or reset) or the agent powers the server off. Boot blocks
// while the agent runs; it returns ErrNotRamdisk (wrapped) at once for any
// other boot, and media errors as they happen.
func (r *Ramdisk) Boot(ctx context.Context, ev BootEvent) error {
	network := isNetworkBoot(ev.BootDevice)
	if !network && !strings.EqualFold(ev.BootDevice, "CDROM") {
		return fmt.Errorf("%s boots from %s: %w", ev.Server, ev.BootDevice, ErrNotRamdisk)
	}
	if isoURL := ev.Media["CDROM"]; !network && isoURL == "" {
		return fmt.Errorf("%s boots from CDROM without virtual media: %w", ev.Server, ErrNotRamdisk)
	}
	dir, err := os.MkdirTemp(r.opts.WorkDir, "ramdisk-"+safeName(ev.Server)+"-")
	if err != nil {
		return fmt.Errorf("ramdisk %s: %w", ev.Server, err)
	}
	defer os.RemoveAll(dir)
	var params map[string]string
	if network {
		params, err = r.pxeParams(ctx, dir, ev)
	} else {
		params, err = r.readParams(ctx, dir, ev)
	}
	if err != nil {
		return fmt.Errorf("ramdisk %s: %w", ev.Server, err)
	}
	api := params["ipa-api-url"]
	if api == "" {
		return fmt.Errorf("%s: boot media carry no ipa-api-url: %w", ev.Server, ErrNotRamdisk)
	}
	var urls []string
	for _, u := range strings.Split(api, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	// Register the agent under the lock it is started with, so it is
	// visible through Agent before its first heartbeat.
	r.mu.Lock()
	a, err := StartAgent(ctx, AgentConfig{
		Server: ev.Server, APIURLs: urls, Token: params["ipa-agent-token"], MACs: ev.MACs,
		DiskPath: ev.DiskPath, Params: params, Failures: r.failuresLocked(ev.Server),
		HeartbeatInterval: r.opts.HeartbeatInterval, LookupInterval: r.opts.LookupInterval,
		WorkDir: dir, HTTPClient: r.opts.HTTPClient, PowerOff: r.powerOff, QemuImg: r.opts.QemuImg,
		Logger: r.log,
	})
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("ramdisk %s: %w", ev.Server, err)
	}
	if old := r.agents[ev.Server]; old != nil {
		old.cancel() // a reboot ends the previous ramdisk
	}
	r.agents[ev.Server] = a
	r.mu.Unlock()
	r.log.Info("ramdisk agent started", "server", ev.Server, "agent_url", a.URL())
	<-a.Done()
	r.mu.Lock()
	if r.agents[ev.Server] == a {
		delete(r.agents, ev.Server)
	}
	r.mu.Unlock()
	return nil
}

// readParams downloads the media and merges the kernel command line with
// the floppy's parameters.txt, as IPA's get_agent_params does: the floppy
// is read when the command line says boot_method=vmedia, or when it does
// not carry ipa-api-url itself; floppy values win.
func (r *Ramdisk) readParams(ctx context.Context, dir string, ev BootEvent) (map[string]string, error) {
	isoPath := filepath.Join(dir, "cdrom.iso")
	if err := r.download(ctx, ev.Media["CDROM"], isoPath); err != nil {
		return nil, fmt.Errorf("virtual CDROM: %w", err)
	}
	cmdline, err := image.KernelCmdline(isoPath)
	if err != nil {
		return nil, fmt.Errorf("virtual CDROM: %w", err)
	}
	params := ParseCmdline(cmdline)
	floppyURL := ev.Media["FLOPPY"]
	if floppyURL != "" && (params["boot_method"] == "vmedia" || params["ipa-api-url"] == "") {
		fPath := filepath.Join(dir, "floppy.img")
		if err := r.download(ctx, floppyURL, fPath); err != nil {
			return nil, fmt.Errorf("virtual floppy: %w", err)
		}
		fp, err := image.ReadFloppyParams(fPath)
		if err != nil {
			return nil, fmt.Errorf("virtual floppy: %w", err)
		}
		for k, v := range fp {
			params[k] = v
		}
	}
	return params, nil
}

// ParseCmdline parses a kernel command line the way IPA does: whitespace
// separated words, key=value pairs kept (split at the first '='), bare
// words ignored.
func ParseCmdline(cmdline string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// download fetches u into path.
func (r *Ramdisk) download(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("invalid media URL %s: %w", stripQuery(u), err)
	}
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", stripQuery(u), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", stripQuery(u), resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(f, resp.Body, make([]byte, 1<<20)); err != nil {
		f.Close()
		return fmt.Errorf("GET %s: %w", stripQuery(u), err)
	}
	return f.Close()
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Close stops every running agent and closes idle connections.
func (r *Ramdisk) Close() {
	r.mu.Lock()
	agents := make([]*Agent, 0, len(r.agents))
	for _, a := range r.agents {
		agents = append(agents, a)
	}
	r.mu.Unlock()
	for _, a := range agents {
		a.Stop()
	}
	r.opts.HTTPClient.CloseIdleConnections()
}
