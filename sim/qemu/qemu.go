// Package qemu backs simulated iLOs with real qemu virtual machines, as
// sushy-tools' libvirt driver backs Redfish with libvirt domains: every
// power-on (or reset) of a qemu-backed server starts one qemu process with
// the virtual media the iLO has inserted (fetched from their URLs, as a real
// iLO does), the boot device the simulator computed (one-time or
// persistent), SeaBIOS for LEGACY and OVMF for UEFI (secure boot: OVMF's
// secure-boot code with a per-server copy of the Microsoft-keys variable
// store, on q35 with SMM), a persistent qcow2 disk, a NIC with the server's
// first MAC on qemu user networking (or on a tap device, see
// [Options.Taps]), and the serial console on the server's console stream
// (what IPMI SOL carries).
//
// User networking needs nothing from the host but gives the guest a
// private network: the host is 10.0.2.2, the guest is reached through
// port forwards, and its DHCP server is qemu's own. A PXE boot served by a
// real DHCP server (dnsmasq) and lightsout's TFTP server needs the guest on
// a real layer-2 network instead: Options.Taps puts a server's NIC on an
// existing tap device (`-netdev tap,ifname=…,script=no,downscript=no`),
// which the caller creates and bridges, typically inside a network
// namespace it owns (then qemu, i.e. the process using the backend, runs in
// that namespace: a tap is found by name in the caller's namespace). No
// helper script and no setuid bridge helper are involved, so the backend
// changes nothing on the host's network.
//
// A guest that powers off powers the simulated server off; a guest that
// reboots resets it (the one-time boot device is consumed and qemu starts
// again with the next one). iLO power off and reset kill the VM; the
// graceful power button sends an ACPI power button event through QMP.
//
// Wiring (see [Backend.Attach]):
//
//	b, err := qemu.New(qemu.Options{Dir: dir})
//	opts := sim.Options{Nodes: ...}
//	b.Attach(&opts)
//	s, err := sim.New(opts)
//	b.UseSim(s)
//	defer s.Close(); defer b.Close() // b.Close after s.Close
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/runtime/localport"
	"github.com/lightsout/lightsout/sim"
)

// GuestAgentPort is the guest port the host forward of each VM reaches: the
// port the Ironic agent (and lightsout's agent) listens on.
const GuestAgentPort = 9999

// GuestISCSIPort is the guest port of the deploy ramdisk's iSCSI target
// (iscsi.start_iscsi_target's default portal_port), forwarded from a
// second host port so the iscsi_ilo driver writes through it.
const GuestISCSIPort = 3260

// Options configure a [Backend].
type Options struct {
	// Dir holds per-server state: Dir/<server>/disk.qcow2, the UEFI
	// variable stores, media/, console.log, and Dir/ports.json (the host
	// port forwarded to each guest's agent port). Empty: a temporary
	// directory removed by Close.
	Dir string
	// HostAlias is the host name under which the VM reaches the host's
	// loopback (qemu user networking: "10.0.2.2", the default). A media URL
	// on this host is fetched from 127.0.0.1 (same port, same TLS name).
	HostAlias string
	// Memory of each VM in MiB (default 512; UEFI needs at least 384).
	Memory int
	// CPUs of each VM (default 1).
	CPUs int
	// DiskSize of each server's qcow2 disk in bytes (default 4 GiB; sparse).
	DiskSize int64
	// Accel is "auto" (default: KVM when a probe guest runs under it, else
	// TCG), "kvm" (an error when the probe fails) or "tcg".
	Accel string
	// QemuBinary is the qemu system emulator (default qemu-system-x86_64).
	QemuBinary string
	// QemuImg is qemu-img (default qemu-img).
	QemuImg string
	// FirmwareDir holds Debian's ovmf files (default /usr/share/OVMF).
	FirmwareDir string
	// Logger receives backend errors and VM starts/exits (default: discard).
	Logger *slog.Logger
	// Servers names the qemu-backed servers; nil or empty: all of them.
	Servers []string
	// Fallback is the boot hook of the servers not backed by qemu (e.g.
	// the emulated ramdisk's); nil: they boot nothing.
	Fallback sim.BootHook
	// HTTPClient fetches media (default: the simulator's, see UseSim).
	HTTPClient *http.Client
	// Taps puts the NIC of the named servers on an existing tap interface
	// (server name → interface name, e.g. a persistent tap made with `ip
	// tuntap add dev tap0 mode tap` and enslaved to a bridge) instead of
	// user networking: no port forwards, the guest gets its address from
	// the DHCP server on that network and advertises it to the conductor
	// itself. The tap must exist in the network namespace of the process.
	Taps map[string]string
}

// Backend starts and stops the VMs of qemu-backed servers. Create it with
// [New], plug it into the simulator with [Backend.Attach] (or Hook,
// DriverInfo and GracefulShutdown one by one) and [Backend.UseSim], and
// Close it after the simulator.
type Backend struct {
	opts    Options
	dir     string
	tempDir bool
	sockDir string // short directory for QMP sockets (path length limit)
	log     *slog.Logger
	accel   string
	// accelWhy says why auto fell back to TCG ("" otherwise).
	accelWhy string
	servers  map[string]bool

	mu     sync.Mutex
	sim    *sim.Sim
	client *http.Client
	ports  map[string]int
	nodes  map[string]*node
	closed bool
	done   chan struct{} // closed by Close: running VMs stop
	wg     sync.WaitGroup
}

// node is the backend's per-server state.
type node struct {
	name string
	// slot is held by the boot hook whose VM runs (one VM per server at a
	// time: a new boot waits until the previous qemu has exited).
	slot chan struct{}

	mu      sync.Mutex
	vm      *vm      // running VM, nil when none
	lastCmd []string // command line of the last qemu started
	console consoleBuf
}

// New checks the options and prepares Dir. It starts no process.
func New(opts Options) (*Backend, error) {
	if opts.HostAlias == "" {
		opts.HostAlias = "10.0.2.2"
	}
	if opts.Memory == 0 {
		opts.Memory = 512
	}
	if opts.CPUs == 0 {
		opts.CPUs = 1
	}
	if opts.DiskSize == 0 {
		opts.DiskSize = 4 << 30
	}
	if opts.QemuBinary == "" {
		opts.QemuBinary = "qemu-system-x86_64"
	}
	if opts.QemuImg == "" {
		opts.QemuImg = "qemu-img"
	}
	if opts.FirmwareDir == "" {
		opts.FirmwareDir = "/usr/share/OVMF"
	}
	switch {
	case opts.Memory < 128:
		return nil, fmt.Errorf("qemu: Options.Memory %d MiB: give at least 128 (UEFI needs 384)", opts.Memory)
	case opts.CPUs < 1 || opts.CPUs > 64:
		return nil, fmt.Errorf("qemu: Options.CPUs %d: give 1 to 64", opts.CPUs)
	case opts.DiskSize < 1<<20:
		return nil, fmt.Errorf("qemu: Options.DiskSize %d: give at least 1 MiB", opts.DiskSize)
	}
	b := &Backend{opts: opts, log: opts.Logger, ports: map[string]int{}, nodes: map[string]*node{}, done: make(chan struct{})}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	accel, why, err := pickAccel(context.Background(), opts.Accel, opts.QemuBinary)
	if err != nil {
		return nil, err
	}
	if why != "" {
		b.log.Info("qemu: KVM unusable, using TCG (software emulation)", "reason", why)
	}
	b.accel, b.accelWhy = accel, why
	if len(opts.Servers) > 0 {
		b.servers = map[string]bool{}
		for _, s := range opts.Servers {
			b.servers[strings.TrimSpace(s)] = true
		}
	}
	b.dir = opts.Dir
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "lightsout-qemu-"); err != nil {
			return nil, fmt.Errorf("qemu: temp dir: %w", err)
		}
		b.tempDir = true
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("qemu: Options.Dir: %w", err)
	}
	if b.sockDir, err = os.MkdirTemp("", "lo-qmp-"); err != nil {
		b.cleanup()
		return nil, fmt.Errorf("qemu: socket dir: %w", err)
	}
	if err := b.loadPorts(); err != nil {
		b.cleanup()
		return nil, err
	}
	return b, nil
}

// pickAccel resolves Options.Accel. KVM is taken only when a probe guest
// reaches long mode under it (probeAccel); auto says in why what made it
// fall back to TCG.
func pickAccel(ctx context.Context, a, qemuBinary string) (accel, why string, err error) {
	kvm := func() error {
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return err
		}
		f.Close()
		return probeAccel(ctx, qemuBinary, "kvm")
	}
	switch strings.ToLower(strings.TrimSpace(a)) {
	case "", "auto":
		if err := kvm(); err != nil {
			return "tcg", err.Error(), nil
		}
		return "kvm", "", nil
	case "kvm":
		if err := kvm(); err != nil {
			return "", "", fmt.Errorf("qemu: Options.Accel kvm: %w (use auto or tcg)", err)
		}
		return "kvm", "", nil
	case "tcg":
		return "tcg", "", nil
	}
	return "", "", fmt.Errorf("qemu: Options.Accel %q: give auto, kvm or tcg", a)
}

// Accel is the accelerator the VMs use: "kvm" or "tcg".
func (b *Backend) Accel() string { return b.accel }

// AccelFallback says why Accel "auto" chose TCG although /dev/kvm may exist
// ("" when KVM was taken, or TCG was asked for).
func (b *Backend) AccelFallback() string { return b.accelWhy }

// Dir is the backend's state directory.
func (b *Backend) Dir() string { return b.dir }

// Handles reports whether server is qemu-backed.
func (b *Backend) Handles(server string) bool {
	return b.servers == nil || b.servers[server]
}

// Attach sets the simulator options the backend needs: BootHook (with the
// previous hook, if any and no Options.Fallback was given, as the fallback
// of the other servers), DriverInfo, GracefulShutdown, and an HTTPClient
// that reaches the HostAlias on 127.0.0.1.
func (b *Backend) Attach(o *sim.Options) {
	if b.opts.Fallback == nil {
		b.opts.Fallback = o.BootHook
	}
	o.BootHook = b.Hook()
	o.DriverInfo = b.DriverInfo
	o.GracefulShutdown = b.GracefulShutdown
	// the iLO checks media URLs when they are inserted: a URL on the
	// HostAlias (the host as the VM sees it) is reached on 127.0.0.1
	c := o.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	o.HTTPClient = aliasClient(c, b.opts.HostAlias)
}

// UseSim gives the backend the started simulator: guest power off and
// reboot change its power state, the serial console goes to its servers'
// console streams, and media are fetched with its HTTP client's trust.
// Call it before the first power-on. A qemu-backed server that a state
// directory brings back powered on is powered off: its VM did not survive
// the simulator's restart (a power loss).
func (b *Backend) UseSim(s *sim.Sim) {
	defer func() {
		for _, srv := range s.Servers() {
			if b.Handles(srv.Name()) && srv.State().Power == "ON" && !b.Running(srv.Name()) {
				srv.PowerOff()
			}
		}
	}()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sim = s
	if b.opts.HTTPClient != nil {
		b.client = b.opts.HTTPClient
	} else {
		b.client = s.HTTPClient()
	}
	b.client = aliasClient(b.client, b.opts.HostAlias)
	if b.client.Timeout != 0 && b.client.Timeout < 10*time.Minute {
		b.client.Timeout = 10 * time.Minute // an ISO is bigger than an iLO's URL check
	}
}

// DriverInfo is the driver_info the inventory carries for a qemu-backed
// server (sim.Options.DriverInfo): kernel_append_params with the serial
// console and the agent's advertised address (the host forward). A server
// on a tap (Options.Taps) gets the serial console only: its agent
// advertises the address DHCP gave it.
func (b *Backend) DriverInfo(server string) map[string]string {
	if !b.Handles(server) {
		return nil
	}
	if b.Tap(server) != "" {
		return map[string]string{"kernel_append_params": "nofb nomodeset vga=normal console=ttyS0"}
	}
	port, err := b.agentPort(server)
	if err != nil {
		b.log.Error("qemu: agent port", "server", server, "err", err)
		return nil
	}
	di := map[string]string{"kernel_append_params": fmt.Sprintf(
		"nofb nomodeset vga=normal console=ttyS0 ipa-advertise-host=127.0.0.1 ipa-advertise-port=%d", port)}
	if ip, err := b.allocPort(server + iscsiSuffix); err == nil {
		// iscsi_ilo: the conductor reaches the ramdisk's target through the forward
		di["iscsi_portal"] = fmt.Sprintf("127.0.0.1:%d", ip)
	}
	return di
}

// Tap is the tap interface server's NIC is on ("" = user networking).
func (b *Backend) Tap(server string) string {
	if !b.Handles(server) {
		return ""
	}
	return b.opts.Taps[server]
}

// AgentPort is the host port (on 127.0.0.1) forwarded to the server's
// guest port 9999, allocated once and kept in Dir/ports.json; 0 when the
// server is not qemu-backed, is on a tap, or no port could be allocated.
func (b *Backend) AgentPort(server string) int {
	if !b.Handles(server) || b.Tap(server) != "" {
		return 0
	}
	p, err := b.agentPort(server)
	if err != nil {
		b.log.Error("qemu: agent port", "server", server, "err", err)
		return 0
	}
	return p
}

func (b *Backend) portsFile() string { return filepath.Join(b.dir, "ports.json") }

func (b *Backend) loadPorts() error {
	data, err := os.ReadFile(b.portsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(data, &b.ports)
	}
	if err != nil {
		return fmt.Errorf("qemu: %s: %w (delete it to allocate new ports)", b.portsFile(), err)
	}
	return nil
}

// iscsiSuffix keys a server's iSCSI forward in ports.json.
const iscsiSuffix = "#iscsi"

func (b *Backend) agentPort(server string) (int, error) { return b.allocPort(server) }

// allocPort returns the host port kept under key in ports.json, allocating it once.
func (b *Backend) allocPort(server string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.ports[server]; ok {
		return p, nil
	}
	p, err := stablePort()
	if err != nil {
		return 0, err
	}
	b.ports[server] = p
	data, _ := json.MarshalIndent(b.ports, "", "  ")
	tmp := b.portsFile() + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return 0, fmt.Errorf("save ports: %w", err)
	}
	if err := os.Rename(tmp, b.portsFile()); err != nil {
		return 0, fmt.Errorf("save ports: %w", err)
	}
	return p, nil
}

// stablePort picks a free port on 127.0.0.1 below the kernel's ephemeral
// range. The port is kept across power-ons (the node's kernel_append_params
// advertise it) but only bound while a VM runs: a port from the ephemeral
// range would be taken, between two boots, by any connection or ":0"
// listener on the host, and qemu then fails with "Could not set up host
// forwarding rule".
func stablePort() (int, error) { return localport.Free() }

// GracefulShutdown delivers a graceful shutdown request (the power button)
// to the server's running VM as an ACPI power button event through QMP
// (sim.Options.GracefulShutdown). It reports false, so that the simulator
// powers off at once, when the server is not qemu-backed or no VM runs.
func (b *Backend) GracefulShutdown(server string) bool {
	if !b.Handles(server) {
		return false
	}
	n := b.node(server)
	n.mu.Lock()
	v := n.vm
	n.mu.Unlock()
	if v == nil {
		return false
	}
	if err := v.qmpCommand("system_powerdown"); err != nil {
		b.log.Warn("qemu: ACPI power button", "server", server, "err", err)
		return false
	}
	return true
}

func (b *Backend) node(server string) *node {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.nodes[server]
	if n == nil {
		n = &node{name: server, slot: make(chan struct{}, 1)}
		b.nodes[server] = n
	}
	return n
}

// Running reports whether a VM of server runs.
func (b *Backend) Running(server string) bool {
	n := b.node(server)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.vm != nil
}

// LastCommand is the command line of the last qemu started for server.
func (b *Backend) LastCommand(server string) []string {
	n := b.node(server)
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lastCmd...)
}

// DiskPath is server's persistent qcow2 disk.
func (b *Backend) DiskPath(server string) string {
	return filepath.Join(b.serverDir(server), "disk.qcow2")
}

// ConsoleLogPath is the file every VM of server appends its serial output
// to (kept across power cycles).
func (b *Backend) ConsoleLogPath(server string) string {
	return filepath.Join(b.serverDir(server), "console.log")
}

// Console is the serial output of server's VMs since the backend started
// (the last 4 MiB), with ANSI escapes and carriage returns removed.
func (b *Backend) Console(server string) string {
	return b.node(server).console.String()
}

// WaitConsole waits until server's console output since the backend
// started contains marker (ANSI escapes and carriage returns removed) and
// returns the output; it returns ctx's error, with the output so far, when
// ctx ends first.
func (b *Backend) WaitConsole(ctx context.Context, server, marker string) (string, error) {
	return b.node(server).console.wait(ctx, 0, marker)
}

// ConsoleMark is the current end of server's console output, for
// [Backend.WaitConsoleAfter]: take it before an action whose output to wait
// for (e.g. before a power-on when earlier boots printed the same marker).
func (b *Backend) ConsoleMark(server string) int {
	return b.node(server).console.mark()
}

// WaitConsoleAfter is WaitConsole on the output after mark (a
// [Backend.ConsoleMark]); it returns that output.
func (b *Backend) WaitConsoleAfter(ctx context.Context, server string, mark int, marker string) (string, error) {
	return b.node(server).console.wait(ctx, mark, marker)
}

func (b *Backend) serverDir(server string) string {
	return filepath.Join(b.dir, safeName(server))
}

var unsafeRE = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeName(s string) string { return unsafeRE.ReplaceAllString(s, "_") }

// Close stops every VM (and waits for the processes) and removes a
// temporary Dir. Close the simulator first: its Close cancels the boot
// hooks, which stop their VMs; Close then waits for them.
func (b *Backend) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	b.wg.Wait() // every VM sees done, stops and is waited for
	b.cleanup()
	return nil
}

func (b *Backend) cleanup() {
	if b.sockDir != "" {
		os.RemoveAll(b.sockDir)
	}
	if b.tempDir {
		os.RemoveAll(b.dir)
	}
}
