package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/daemon"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/qemu"
)

// pxe_ilo over real PXE (issue 14, "Real peers"): a qemu VM behind a
// simulated iLO network-boots lightsout's deploy ramdisk from a real DHCP
// server (Debian's dnsmasq, DHCP only) and lightsout's built-in TFTP server,
// the agent writes the test instance image, and the VM boots its disk.
//
// Why a network namespace, and why the test re-executes itself in it. A
// real PXE ROM needs a layer-2 network with a DHCP server that points it
// at a TFTP server; qemu's user networking has its own DHCP and TFTP, so
// the VM's NIC is a tap device (sim/qemu Options.Taps) on a bridge. The
// test creates a fresh network namespace for that bridge (`ip netns add`),
// so nothing on the host's network changes and nothing outside the
// namespace can answer (or be answered). Everything the VM talks to must
// listen on the bridge inside that namespace: dnsmasq, lightsout's TFTP
// server, the agent callback API and the image publisher. A Go process
// cannot move its threads into another namespace as a whole, so the
// parent test (root namespace) prepares what needs the host (the deploy
// ramdisk and the test image: apt-get and the build cache), creates the
// namespace, bridge, tap and dnsmasq, and runs this test binary again
// inside the namespace (`ip netns exec NS <test binary>
// -test.run '^TestPXEQemuDeploy$'`, the case in pxeChildEnv). That child
// runs the whole deploy in process, as the other end-to-end tests do: the
// simulator (iLO on the namespace's loopback, VM on the tap), the App with
// its listeners on the bridge address, and the built-in boot server
// started exactly as `lightsout serve` starts it ([pxe] builtin_server,
// daemon.PXEBoot). The parent's t.Cleanup kills every process left in the
// namespace (`ip netns pids`: the child, its qemu, dnsmasq) and deletes
// the namespace with its bridge and tap, also when the child failed.

// pxeChildEnv carries the child's case (JSON pxeChildSpec); set only in
// the child.
const pxeChildEnv = "LIGHTSOUT_TEST_PXE_NETNS_CHILD"

// The namespace's network: the bridge's address serves DHCP, TFTP, the
// callback API and the images; the VM gets one from the DHCP range.
const (
	pxeBridgeIP  = "10.77.0.1"
	pxeDHCPRange = "10.77.0.100,10.77.0.199,255.255.255.0,1h"
	pxeTap       = "tap0"
)

// pxeDeployTimeout bounds the deploy run in the child (ramdisk PXE boot,
// agent, write, instance boot under TCG: 1.5 to 3 minutes on an idle
// machine; the issue asks for about 4 a case), pxeChildTimeout the child.
const (
	pxeDeployTimeout = 6 * time.Minute
	pxeChildTimeout  = pxeDeployTimeout + 2*time.Minute
)

// pxeLogEnv names a file the parent copies each child's whole output to
// (kept after the test, for debugging a failure the tail does not explain).
const pxeLogEnv = "LIGHTSOUT_TEST_PXE_LOG"

// pxeChildSpec is what the parent hands the child.
type pxeChildSpec struct {
	Case       string // a key of pxeQemuCases
	Kernel     string // the deploy kernel and initramfs (lightsout image ramdisk)
	Initramfs  string
	Image      string // the whole-disk test image (raw) and its digest
	ImageSHA   string
	ImageSize  int64
	ImageID    string
	HostsDir   string // dnsmasq --dhcp-hostsdir / --dhcp-optsdir ([dnsmasq] in lightsout's config)
	OptsDir    string
	TFTPRoot   string // [pxe] tftp_root (the parent lists what is left in it)
	HTTPRoot   string // [deploy] http_root
	ResultFile string // the child writes pxeChildResult here
}

// pxeChildResult is what the child reports for the parent's own checks.
type pxeChildResult struct {
	MAC string // the node's PXE MAC (dnsmasq's log must show its lease)
}

// pxeQemuCase is one pxe_ilo deploy.
type pxeQemuCase struct {
	gen      sim.Generation
	node     string
	bootMode string // the capability: bios | uefi
	simMode  string // the iLO's boot mode at the NETWORK boot: LEGACY | UEFI
	// tftpFiles are what the firmware and boot loader must have fetched
	// from lightsout's TFTP server ({mac}: the port's MAC with dashes,
	// {mac:} with colons, {uuid}: the node's); SeaBIOS, iPXE and pxelinux
	// print to the screen only, so the server's log is the proof of the
	// PXE path.
	tftpFiles []string
	// ipxe: [pxe] ipxe_enabled; the configs and files are under [deploy]
	// http_root and served by the built-in HTTP boot server.
	ipxe bool
	// httpFiles are what iPXE must have fetched over HTTP.
	httpFiles []string
}

var pxeQemuCases = map[string]pxeQemuCase{
	// Gen8: SeaBIOS, the e1000's iPXE ROM, pxelinux.0 + pxelinux.cfg/01-<mac>
	"bios": {gen: sim.Gen8, node: "gen8-0", bootMode: "bios", simMode: "LEGACY",
		tftpFiles: []string{"pxelinux.0", "ldlinux.c32", "pxelinux.cfg/01-{mac}", "{uuid}/deploy_kernel", "{uuid}/deploy_ramdisk"}},
	// Gen10: OVMF's PXE over the virtio NIC, shim + GRUB (grubnetx64) + the node's GRUB config
	"uefi": {gen: sim.Gen10, node: "gen10-0", bootMode: "uefi", simMode: "UEFI",
		tftpFiles: []string{"bootx64.efi", "grubx64.efi", "grub/grub.cfg", "{mac:}.conf", "{uuid}/deploy_kernel", "{uuid}/deploy_ramdisk"}},
	// Gen8 with [pxe] ipxe_enabled: the ROM is iPXE already (DHCP option
	// 175, dnsmasq's tag:ipxe), so the node's snippet hands it the
	// boot.ipxe URL, which chains the node's script by MAC over HTTP
	"bios-ipxe": {gen: sim.Gen8, node: "gen8-0", bootMode: "bios", simMode: "LEGACY", ipxe: true,
		httpFiles: []string{"/boot.ipxe", "/pxelinux.cfg/{mac}", "/{uuid}/deploy_kernel", "/{uuid}/deploy_ramdisk"}},
}

// TestPXEQemuDeploy deploys the whole-disk test image with pxe_ilo to a
// qemu-backed Gen8 in BIOS mode (SeaBIOS + iPXE ROM + pxelinux over TFTP;
// and with [pxe] ipxe_enabled, iPXE scripts and files over HTTP) and a
// Gen10 in UEFI mode (OVMF + shim + GRUB), all with only iLO Standard: the deploy
// ramdisk is PXE-booted from dnsmasq's DHCP and lightsout's TFTP server,
// the agent writes the image, the disk holds it and boots it (the image's
// marker on the console), the iLO was asked for NETWORK then HDD boot in
// the deploy's boot mode, no virtual media was ever attached, dnsmasq
// leased the node's MAC with the node's snippet, and no PXE file of the
// node is left once the deploy switched to local boot.
func TestPXEQemuDeploy(t *testing.T) {
	if spec := os.Getenv(pxeChildEnv); spec != "" {
		runPXEChild(t, spec)
		return
	}
	requireQemuE2E(t)
	requireNetns(t)
	testenv.RequireTools(t, "ip", "dnsmasq")
	testenv.RequireFiles(t, "/usr/lib/PXELINUX/pxelinux.0", "/usr/lib/syslinux/modules/bios/ldlinux.c32",
		"/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
	im := testInstanceImage(t)
	kernel, initramfs := deployRamdisk(t, "")
	for _, name := range []string{"bios", "uefi", "bios-ipxe"} {
		t.Run(name, func(t *testing.T) {
			// each case has its own namespace, dnsmasq and child process:
			// they run side by side (one TCG vCPU each, as TestQemuDeploy's two at a time)
			t.Parallel()
			c := pxeQemuCases[name]
			dir := t.TempDir()
			spec := pxeChildSpec{Case: name, Kernel: kernel, Initramfs: initramfs,
				Image: im.raw, ImageSHA: im.rawSHA256, ImageSize: im.rawSize, ImageID: im.disk.ID,
				HostsDir: filepath.Join(dir, "hostsdir"), OptsDir: filepath.Join(dir, "optsdir"),
				TFTPRoot: filepath.Join(dir, "tftpboot"), HTTPRoot: filepath.Join(dir, "httpboot"),
				ResultFile: filepath.Join(dir, "result.json")}
			for _, d := range []string{spec.HostsDir, spec.OptsDir, spec.TFTPRoot, spec.HTTPRoot} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ns := newPXENetns(t)
			dnsmasqLog := ns.startDnsmasq(t, spec.HostsDir, spec.OptsDir, dir)
			start := time.Now()
			out, err := ns.runChild(t, spec)
			if p := os.Getenv(pxeLogEnv); p != "" {
				_ = os.WriteFile(p+"."+name, []byte(out), 0o644)
			}
			t.Logf("%s deploy in the namespace took %.1fs", name, time.Since(start).Seconds())
			for _, l := range strings.Split(out, "\n") { // the child's own log lines
				if strings.Contains(l, "pxe_qemu_test.go:") {
					t.Log(strings.TrimSpace(l))
				}
			}
			dlog, _ := os.ReadFile(dnsmasqLog)
			if err != nil || !strings.Contains(out, "--- PASS: TestPXEQemuDeploy") {
				t.Fatalf("the deploy in the namespace failed (%v):\n%s\ndnsmasq log (tail):\n%s", err, tailText(out, 20000), tailText(string(dlog), 4000))
			}
			var res pxeChildResult
			if b, err := os.ReadFile(spec.ResultFile); err != nil || json.Unmarshal(b, &res) != nil || res.MAC == "" {
				t.Fatalf("the child's result %s: %v", spec.ResultFile, err)
			}
			// dnsmasq gave the node's MAC a lease with the node's tag (the
			// snippet pxe.prepare wrote) and the boot file for the mode
			bootfile, tags := map[string]string{"bios": "pxelinux.0", "uefi": "bootx64.efi"}[c.bootMode], []string{"lightsout-"}
			if c.ipxe {
				bootfile, tags = "http://"+pxeBridgeIP+":8088/boot.ipxe", []string{"lightsout-", "ipxe"}
			}
			tagged := slices.ContainsFunc(strings.Split(string(dlog), "\n"), func(l string) bool {
				_, after, ok := strings.Cut(l, " tags: ")
				return ok && !slices.ContainsFunc(tags, func(tag string) bool { return !strings.Contains(after, tag) })
			})
			if !strings.Contains(string(dlog), "DHCPACK(br0)") || !strings.Contains(string(dlog), res.MAC) ||
				!tagged || !strings.Contains(string(dlog), "bootfile-name  "+bootfile) {
				t.Errorf("dnsmasq's log lacks the lease of %s with tags %v and boot file %s:\n%s", res.MAC, tags, bootfile, tailText(string(dlog), 4000))
			}
		})
	}
}

// requireNetns skips (fails with LIGHTSOUT_INTEGRATION=1) unless the test
// can create network namespaces and tap devices: root and /dev/net/tun.
func requireNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root (network namespaces and tap devices need CAP_NET_ADMIN)"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		why = "no /dev/net/tun (tap devices): " + err.Error()
	}
	if why == "" {
		return
	}
	if testenv.Integration() {
		t.Fatalf("pxe_ilo over real PXE: %s", why)
	}
	t.Skipf("pxe_ilo over real PXE: %s", why)
}

// pxeNetns is a network namespace the test created: lo up, a bridge br0
// with pxeBridgeIP, and a persistent tap (pxeTap) on the bridge for the VM.
type pxeNetns struct {
	name string
}

func newPXENetns(t *testing.T) *pxeNetns {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := &pxeNetns{name: "lightsout-pxe-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns.name, err, out)
	}
	t.Cleanup(func() { ns.destroy(t) })
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge", "forward_delay", "0"},
		{"tuntap", "add", "dev", pxeTap, "mode", "tap"},
		{"link", "set", pxeTap, "master", "br0"},
		{"addr", "add", pxeBridgeIP + "/24", "dev", "br0"},
		{"link", "set", "br0", "up"},
		{"link", "set", pxeTap, "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns.name}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v\n%s", ns.name, strings.Join(c, " "), err, out)
		}
	}
	return ns
}

// pids are the processes in the namespace.
func (ns *pxeNetns) pids() []int {
	out, _ := exec.Command("ip", "netns", "pids", ns.name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// destroy kills what still runs in the namespace (a child that failed
// half-way, its qemu, dnsmasq) and deletes it with its bridge and tap.
func (ns *pxeNetns) destroy(t *testing.T) {
	for try := 0; try < 50; try++ {
		pids := ns.pids()
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond) // polling for the kernel to reap them; bounded
	}
	if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
	}
}

// startDnsmasq runs dnsmasq in the namespace: DHCP only (--port=0) on the
// bridge, the node's host and option snippets from hostsDir/optsDir (as
// docs/pxe.md tells a site to configure it); it returns its log file.
func (ns *pxeNetns) startDnsmasq(t *testing.T, hostsDir, optsDir, dir string) string {
	t.Helper()
	logFile := filepath.Join(dir, "dnsmasq.log")
	cmd := exec.Command("ip", "netns", "exec", ns.name, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--interface=br0", "--bind-interfaces", "--dhcp-range="+pxeDHCPRange, "--dhcp-authoritative",
		"--dhcp-hostsdir="+hostsDir, "--dhcp-optsdir="+optsDir, "--dhcp-match=set:ipxe,175",
		"--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
		"--log-dhcp", "--log-facility="+logFile, "--user=root", "--group=root")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// ready once it logged that DHCP is up (or it exited)
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "DHCP, IP range") {
			return logFile
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("dnsmasq exited: %v\n%s\n%s", err, stderr.String(), b)
		case <-deadline.C:
			t.Fatalf("dnsmasq did not start DHCP within 20s:\n%s\n%s", stderr.String(), b)
		case <-tick.C:
		}
	}
}

// runChild runs this test binary inside the namespace with spec and
// returns its output (-test.v).
func (ns *pxeNetns) runChild(t *testing.T, spec pxeChildSpec) (string, error) {
	t.Helper()
	b, _ := json.Marshal(spec)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pxeChildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.name, self, "-test.run", "^TestPXEQemuDeploy$",
		"-test.v", "-test.count=1", "-test.timeout", (pxeChildTimeout - 30*time.Second).String())
	cmd.Env = append(os.Environ(), pxeChildEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after %s: %w", pxeChildTimeout, err)
	}
	return string(out), err
}

// runPXEChild is the deploy inside the namespace (see the top of the file).
func runPXEChild(t *testing.T, specJSON string) {
	var spec pxeChildSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		t.Fatalf("%s: %v", pxeChildEnv, err)
	}
	c, ok := pxeQemuCases[spec.Case]
	if !ok {
		t.Fatalf("%s: no case %q", pxeChildEnv, spec.Case)
	}
	ctx := context.Background()
	dir := t.TempDir()
	// scripts read files only below the test's temporary directories (open):
	// link the parent's deploy ramdisk and image into the child's
	files := t.TempDir()
	for _, p := range []*string{&spec.Kernel, &spec.Initramfs, &spec.Image} {
		to := filepath.Join(files, filepath.Base(*p))
		if err := os.Link(*p, to); err != nil {
			qemutest.CopyFile(t, *p, to)
		}
		*p = to
	}

	// the simulator: one server, iLO Standard (no virtual media licence),
	// its VM on the tap; every boot recorded
	qb, err := qemu.New(qemu.Options{Dir: filepath.Join(dir, "qemu"), Accel: "tcg", Memory: 512,
		DiskSize: 256 << 20, Servers: []string{c.node}, Taps: map[string]string{c.node: pxeTap}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{dir: dir}
	opts := sim.Options{Nodes: []sim.NodeSpec{{Generation: c.gen, Count: 1}}, Dir: dir, DiskSize: 1 << 20,
		Logger:   slog.New(slog.DiscardHandler),
		Hardware: func(name string, g sim.Generation, idx int, hw *sim.Hardware) { hw.License = "iLO Standard" }}
	qb.Attach(&opts)
	hook := opts.BootHook
	opts.BootHook = func(ctx context.Context, ev sim.BootEvent) {
		f.recordBoot(ev)
		hook(ctx, ev)
	}
	s := startQemuSim(t, qb, opts)
	f.sim = s

	// lightsout: listeners on the bridge, the PXE files under TFTPRoot,
	// the dnsmasq snippets where the parent's dnsmasq reads them
	conf := fmt.Sprintf(`
[lightsout]
agent_address = %[1]s:6385
publish_address = %[1]s:8080
publish_url = http://%[1]s:8080
[conductor]
api_url = http://%[1]s:6385
deploy_callback_timeout = 300
clean_nodes = false
[ilo]
power_wait = 0.2
[agent]
command_timeout = 20
post_deploy_get_power_state_retries = 600
post_deploy_get_power_state_retry_interval = 0.2
[pxe]
builtin_server = true
tftp_root = %[2]s
tftp_address = %[1]s:69
tftp_server = %[1]s
pxe_append_params = nofb nomodeset vga=normal console=ttyS0
[dnsmasq]
dhcp_hostsdir = %[3]s
dhcp_optsdir = %[4]s
`, pxeBridgeIP, spec.TFTPRoot, spec.HostsDir, spec.OptsDir)
	if c.ipxe {
		conf += fmt.Sprintf(`
[pxe]
ipxe_enabled = true
http_address = %[1]s:8088
[deploy]
http_root = %[2]s
http_url = http://%[1]s:8088/
`, pxeBridgeIP, spec.HTTPRoot)
	}
	e := open(t, f, conf, qemuSiteDir(t))
	// the boot server as `lightsout serve` runs it, its log (every file
	// sent, at debug level) kept for the checks below
	tftpLog := &testenv.SyncBuffer{}
	appLog := e.app.Log
	e.app.Log = slog.New(slog.NewTextHandler(tftpLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boot := daemon.PXEBoot(e.app)
	err = boot.Start(ctx)
	e.app.Log = appLog
	if err != nil {
		t.Fatalf("PXE boot server: %v", err)
	}
	t.Cleanup(func() { boot.Close() })

	e.importQemuFleet(spec.Kernel, spec.Initramfs)
	e.makeAvailable(c.node)
	if _, err := e.app.UpdateNode(ctx, c.node, app.NodeChange{Driver: "pxe_ilo"}); err != nil {
		t.Fatal(err)
	}
	n := e.node(c.node)
	if len(n.Ports) == 0 {
		t.Fatal("the node has no ports")
	}
	mac := strings.ToLower(n.Ports[0].Address)
	if _, err := e.app.PrepareDeploy(ctx, c.node, app.DeployOptions{ImageSource: spec.Image, ImageChecksum: "sha256:" + spec.ImageSHA,
		Capabilities: map[string]string{"boot_mode": c.bootMode}}); err != nil {
		t.Fatal(err)
	}

	// the run's own timeout ends it (timed_out, with its timeline below)
	// well before the child's -test.timeout would dump goroutines instead
	res, _ := e.app.Engine.RunMany(ctx, runtime.RunRequest{Script: app.ScriptDeploy, Timeout: pxeDeployTimeout},
		[]string{c.node}, 1, nil)
	if len(res) != 1 {
		t.Fatalf("deploy: %d results", len(res))
	}
	r := res[0]
	console, _ := e.app.RunConsole(ctx, r.RunID)
	vmConsole := qb.Console(c.node)
	tl := e.timeline(r.RunID)
	dump := func() string {
		return "timeline:\n" + tl + "\nVM console (tail):\n" + tailText(vmConsole, 8000) +
			"\nqemu: " + strings.Join(qb.LastCommand(c.node), " ")
	}
	if !r.Succeeded() {
		t.Fatalf("deploy %s: %s\n%s", r.Status, r.Error, dump())
	}
	evs := mustEvents(t, e, r.RunID)
	t.Logf("%s: PXE boot of the ramdisk..agent %.1fs, write image %.1fs, power off ramdisk..instance off %.1fs, run %.1fs",
		c.node, stepSpan(evs, "boot deploy ramdisk", "wait for agent").Seconds(),
		stepSpan(evs, "write image", "write image").Seconds(),
		stepSpan(evs, "power off ramdisk", "test: instance boots and powers off").Seconds(),
		stepSpan(evs, "validate", "test: instance boots and powers off").Seconds())

	// the PXE path: the files sent by our TFTP server
	sent := map[string][]string{}
	for _, l := range strings.Split(tftpLog.String(), "\n") {
		for _, proto := range []string{"tftp", "http boot"} {
			if strings.Contains(l, "msg=\""+proto+": sent\"") {
				if i := strings.Index(l, " file="); i >= 0 {
					sent[proto] = append(sent[proto], strings.Fields(l[i+6:])[0])
				}
			}
		}
	}
	t.Logf("%s: TFTP sent %s; HTTP sent %s", c.node, strings.Join(sent["tftp"], " "), strings.Join(sent["http boot"], " "))
	expand := strings.NewReplacer("{mac}", strings.ReplaceAll(mac, ":", "-"), "{mac:}", mac, "{uuid}", n.UUID).Replace
	for _, name := range c.httpFiles {
		if name = expand(name); !slices.Contains(sent["http boot"], name) {
			t.Errorf("the HTTP boot server did not send %s (sent %v)", name, sent["http boot"])
		}
	}
	for _, name := range c.tftpFiles {
		if name = expand(name); !slices.Contains(sent["tftp"], name) && !slices.Contains(sent["tftp"], "/"+name) {
			t.Errorf("the TFTP server did not send %s (sent %v)", name, sent["tftp"])
		}
	}
	if c.ipxe && slices.ContainsFunc(sent["tftp"], func(f string) bool { return strings.Contains(f, n.UUID) }) {
		t.Errorf("with iPXE the node's files came over TFTP: %v", sent["tftp"])
	}
	if !strings.Contains(vmConsole, "LIGHTSOUT-AGENT-UP") {
		t.Errorf("the VM console lacks the agent's LIGHTSOUT-AGENT-UP\n%s", dump())
	}
	fw, sb, ok := qemutest.ParseBootMarker(console + vmConsole)
	if !ok || fw != c.bootMode || sb {
		t.Fatalf("instance marker firmware=%q secureboot=%v (found %v), want %q\n%s", fw, sb, ok, c.bootMode, dump())
	}
	if !strings.Contains(vmConsole, "LIGHTSOUT-TEST-IMAGE-ID "+spec.ImageID) {
		t.Errorf("the console lacks the image id %s", spec.ImageID)
	}
	if n := e.node(c.node); n.ProvisionState != states.Active || n.LastError != "" {
		t.Errorf("state %s last_error %q", n.ProvisionState, n.LastError)
	}
	if got, _ := prefixSHA256(t, diskRaw(t, qb.DiskPath(c.node)), spec.ImageSize); got != spec.ImageSHA {
		t.Errorf("the disk does not start with the image (sha256 %s, want %s)", got, spec.ImageSHA)
	}
	if !strings.Contains(tl, "PXE config written") {
		t.Errorf("the run did not write a PXE config:\n%s", tl)
	}

	// the iLO side: NETWORK boot of the ramdisk, HDD boot of the instance,
	// both in the deploy's boot mode; never a virtual medium
	boots := f.bootsOf(c.node)
	if len(boots) < 2 || boots[0].BootDevice != "NETWORK" || boots[0].BootMode != c.simMode {
		t.Errorf("boots %+v: want a NETWORK boot of the ramdisk in %s first", boots, c.simMode)
	}
	if last := boots[len(boots)-1]; last.BootDevice != "HDD" || last.BootMode != c.simMode {
		t.Errorf("the instance booted from %s in %s, want HDD in %s", last.BootDevice, last.BootMode, c.simMode)
	}
	(&pxeEnv{f: f}).noVirtualMedia(t, c.node, tl)
	if st := f.server(t, c.node).State(); st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted {
		t.Errorf("virtual media inserted after the deploy: %+v", st.Media)
	}

	// switched to local boot: no config, link or snippet of the node left
	for _, root := range []string{spec.TFTPRoot, spec.HTTPRoot} {
		if left := (&pxeEnv{tftpRoot: root}).pxeFiles(t); len(left) > 0 {
			t.Errorf("PXE files left in %s after the deploy: %v", root, left)
		}
	}
	for _, d := range []string{spec.HostsDir, spec.OptsDir} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("dnsmasq snippets left in %s: %d", d, len(ents))
		}
	}
	b, _ := json.Marshal(pxeChildResult{MAC: mac})
	if err := os.WriteFile(spec.ResultFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
