package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/qemu"
)

// The real chain (issue 13): qemu-backed simulated servers (sim/qemu) boot
// the deploy ramdisk `lightsout image ramdisk` builds (Debian's kernel + the
// static lightsout binary as /init, i.e. `lightsout agent`), the agent
// writes the test instance image (testdata/tools/build-test-disk.sh) to the
// VM's qcow2 disk, and the VM then boots that disk. Everything runs under
// TCG on 2 cores: images are 64 MiB, deadlines are minutes.
//
// Network: qemu user networking. The VM reaches the host's loopback as
// 10.0.2.2, so the callback API and the publisher listen on 127.0.0.1 and
// are advertised as http://10.0.2.2:<port> ([conductor] api_url, [lightsout]
// publish_url); the iLO (sim) fetches the same URLs from 127.0.0.1. The
// conductor reaches the agent through the backend's host forward
// (driver_info.kernel_append_params ipa-advertise-host/port).

// qemuHostAlias is the host's loopback as a qemu user-networking guest sees it.
const qemuHostAlias = "10.0.2.2"

// qemuDeployTimeout bounds one deploy under TCG: ramdisk boot (~20 s),
// agent, 64 MiB write, instance boot (~15 s), with slack for a busy machine.
const qemuDeployTimeout = 8 * time.Minute

// requireQemuE2E skips (or under `make test` fails) unless every tool of the
// real chain is installed.
func requireQemuE2E(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("qemu deploys take minutes under TCG")
	}
	qemutest.Require(t, qemutest.UEFI, qemutest.UEFISecureBoot)
	testenv.RequireTools(t, "go", "apt-get", "dpkg-deb", "sfdisk", "blkid")
}

// qemuFleet is a simulator whose servers are qemu VMs.
type qemuFleet struct {
	*fleet
	qb *qemu.Backend
}

// newQemuFleet starts a simulator with qemu-backed servers (disks of
// diskSize bytes) keeping its state in dir (default a t.TempDir(); scripts
// may read files in the directory above it).
func newQemuFleet(t testing.TB, dir string, nodes []sim.NodeSpec, diskSize int64) *qemuFleet {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	// LIGHTSOUT_QEMU_CPUS: vCPUs of each VM (default 1; the benchmark's
	// figures name it)
	qb, err := qemu.New(qemu.Options{Dir: filepath.Join(dir, "qemu"), Accel: "tcg", Memory: 512,
		CPUs: envInt("LIGHTSOUT_QEMU_CPUS", 1), DiskSize: diskSize, HostAlias: qemuHostAlias})
	if err != nil {
		t.Fatal(err)
	}
	opts := sim.Options{Nodes: nodes, Dir: dir, DiskSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)}
	qb.Attach(&opts)
	s := startQemuSim(t, qb, opts)
	return &qemuFleet{fleet: &fleet{sim: s, dir: dir}, qb: qb}
}

// startQemuSim starts the simulator with opts, its servers qb's VMs
// (qb.Attach ran on opts), and closes both at t's cleanup; it closes qb
// when the simulator does not start.
func startQemuSim(t testing.TB, qb *qemu.Backend, opts sim.Options) *sim.Sim {
	t.Helper()
	s, err := sim.New(opts)
	if err != nil {
		qb.Close()
		t.Fatal(err)
	}
	qb.UseSim(s)
	t.Cleanup(func() {
		s.Close()
		qb.Close()
	})
	return s
}

// freePort returns a port free on 127.0.0.1 now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// deployRamdisk builds the lightsout binary (static) and the deploy kernel
// and initramfs with `lightsout image ramdisk`; the kernel package is cached
// under the test cache. It returns the kernel and initramfs paths (in dir,
// default a t.TempDir()).
func deployRamdisk(t testing.TB, dir string) (kernel, initramfs string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	bin := filepath.Join(dir, "lightsout")
	build := exec.Command("go", "build", "-o", bin, "github.com/lightsout/lightsout/cmd/lightsout")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "ramdisk")
	start := time.Now()
	cmd := exec.Command(bin, "image", "ramdisk", "-o", out, "--no-progress", "--cache-dir", qemutest.CacheDir("ramdisk-kernel"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lightsout image ramdisk: %v\n%s", err, b)
	}
	kernel, initramfs = filepath.Join(out, "lightsout-deploy.kernel"), filepath.Join(out, "lightsout-deploy.initramfs")
	fi, err := os.Stat(initramfs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy ramdisk: %.1f MB initramfs, built in %.1fs", float64(fi.Size())/1e6, time.Since(start).Seconds())
	return kernel, initramfs
}

// qemuConfig is the lightsout configuration of the end-to-end tests:
// node-facing URLs on the host alias, listeners on the loopback, the deploy
// ramdisk, and waits sized for TCG.
func qemuConfig(t testing.TB) string {
	t.Helper()
	agentPort, pubPort := freePort(t), freePort(t)
	return fmt.Sprintf(`
[lightsout]
agent_address = 127.0.0.1:%[1]d
publish_address = 127.0.0.1:%[2]d
publish_url = http://%[3]s:%[2]d
[conductor]
api_url = http://%[3]s:%[1]d
deploy_callback_timeout = 300
clean_callback_timeout = 300
[ilo]
power_wait = 0.2
[agent]
post_deploy_get_power_state_retries = 600
post_deploy_get_power_state_retry_interval = 0.2
`, agentPort, pubPort, qemuHostAlias)
}

// importQemuFleet imports every simulated server as a node whose
// driver_info names the deploy kernel and ramdisk (ilo-virtual-media builds
// the deploy ISO from them), and manages it.
func (e *env) importQemuFleet(kernel, initramfs string) {
	e.t.Helper()
	ctx := context.Background()
	nodes := e.fleet.sim.Inventory()
	for i := range nodes {
		nodes[i].DriverInfo["deploy_kernel"] = kernel
		nodes[i].DriverInfo["deploy_ramdisk"] = initramfs
	}
	b, err := json.Marshal(nodes)
	if err != nil {
		e.t.Fatal(err)
	}
	inv := filepath.Join(e.dir, "inventory.json")
	if err := os.WriteFile(inv, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	ns, err := e.app.ImportNodes(ctx, inv)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range ns {
		if _, err := e.app.Manage(ctx, n.Name); err != nil {
			e.t.Fatalf("manage %s: %v", n.Name, err)
		}
	}
}

// waitInstanceScript is a site deploy.lua: the bundled deploy, then a phase
// that waits until the instance powers itself off (the test image does,
// right after its marker), so the run's console capture holds the
// instance's boot.
const waitInstanceScript = `local deploy = require("bundled.deploy")
local power = require("power")
deploy.add_step("boot instance", "test: instance boots and powers off", function(ctx)
  power.wait(ctx.bmc, "power off", { retries = 1500, interval = 0.2 })
end)
deploy.run()
`

// siteDir writes the site scripts of the qemu tests.
func qemuSiteDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deploy.lua"), []byte(waitInstanceScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testImages copies the test instance image (raw and qcow2) into a
// directory scripts may read and returns it with the digests.
type instanceImage struct {
	disk                  qemutest.TestDisk
	raw, qcow2            string
	rawSHA256, qcowSHA256 string
	rawSize               int64
}

func testInstanceImage(t testing.TB) instanceImage {
	t.Helper()
	d := qemutest.BuildTestDisk(t)
	dir := t.TempDir()
	im := instanceImage{disk: d, raw: filepath.Join(dir, "testimage.raw"), qcow2: filepath.Join(dir, "testimage.qcow2")}
	qemutest.CopyFile(t, d.Raw, im.raw)
	qemutest.CopyFile(t, d.QCOW2, im.qcow2)
	im.rawSHA256, im.rawSize = fileSHA256(t, im.raw)
	im.qcowSHA256, _ = fileSHA256(t, im.qcow2)
	return im
}

func fileSHA256(t testing.TB, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// diskRaw converts a VM's qcow2 disk to a raw file (sparse) for checks.
func diskRaw(t testing.TB, qcow2 string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "disk.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", qcow2, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", qcow2, err, b)
	}
	return out
}

// partitionTable is what sfdisk reads off a raw disk ("" when none) and
// what blkid probes (partition table type, file system).
func partitionTable(t testing.TB, raw string) (sfdisk, blkid string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "-d", raw).CombinedOutput()
	if err == nil {
		sfdisk = string(out)
	}
	b, _ := exec.Command("blkid", "-p", "-o", "export", raw).CombinedOutput()
	return sfdisk, strings.TrimSpace(string(b))
}

// phaseTimes are the durations of a deploy's phases, from the run's step
// events and the VM's console.
type phaseTimes struct {
	bootRamdisk time.Duration // power on with the deploy ISO until the agent's first console line
	agentUp     time.Duration // agent start until its first heartbeat ended "wait for agent"
	writeImage  time.Duration // the "write image" phase (download, checksum, write)
	reboot      time.Duration // agent power off ... instance marker
	total       time.Duration
}

func (p phaseTimes) String() string {
	return fmt.Sprintf("boot ramdisk %.1fs, agent up %.1fs, image write %.1fs, reboot to instance %.1fs, total %.1fs",
		p.bootRamdisk.Seconds(), p.agentUp.Seconds(), p.writeImage.Seconds(), p.reboot.Seconds(), p.total.Seconds())
}

// consoleClock records when markers first appear on a server's console
// (backend side, live), from start.
type consoleClock struct {
	at map[string]time.Duration
}

// watchConsole waits, in order, for each marker on server's VM console and
// returns a channel that yields the times once all appeared or ctx ended.
func watchConsole(ctx context.Context, qb *qemu.Backend, server string, markers ...string) <-chan consoleClock {
	ch := make(chan consoleClock, 1)
	start := time.Now()
	go func() {
		c := consoleClock{at: map[string]time.Duration{}}
		for _, m := range markers {
			if _, err := qb.WaitConsole(ctx, server, m); err != nil {
				break
			}
			c.at[m] = time.Since(start)
		}
		ch <- c
	}()
	return ch
}

// stepSpan is the time between the start of step from and the end of step to.
func stepSpan(evs []store.Event, from, to string) time.Duration {
	t0, t1 := stepStart(evs, from), stepEnd(evs, to)
	if t0.IsZero() || t1.IsZero() {
		return 0
	}
	return t1.Sub(t0)
}

// envInt reads a positive integer from the environment (benchmarks' sizes).

// stepStart is when step name first started (zero when it did not).
func stepStart(evs []store.Event, name string) time.Time {
	for _, ev := range evs {
		if ev.Kind == store.EventStepStart && ev.Name == name {
			return ev.Time
		}
	}
	return time.Time{}
}

// stepEnd is when step name last ended (zero when it did not).
func stepEnd(evs []store.Event, name string) time.Time {
	var t time.Time
	for _, ev := range evs {
		if ev.Kind == store.EventStepEnd && ev.Name == name {
			t = ev.Time
		}
	}
	return t
}

// mustEventsTB reads a run's events.
func mustEventsTB(t testing.TB, e *env, id int64) []store.Event {
	t.Helper()
	evs, err := e.app.Store.Events(context.Background(), id)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of run %d: %d, %v", id, len(evs), err)
	}
	return evs
}

// qemuDeploys runs the deploy on the qemu-backed nodes two at a time (TCG
// runs one guest CPU per host core), logs how long they took, naming them
// what, and returns the results by node.
func (e *env) qemuDeploys(nodes []string, what string) map[string]runtime.Result {
	e.t.Helper()
	start := time.Now()
	res, _ := e.app.Engine.RunMany(context.Background(), runtime.RunRequest{Script: app.ScriptDeploy, Timeout: qemuDeployTimeout}, nodes, 2, nil)
	e.t.Logf("%d %s (2 at a time) took %.1fs", len(nodes), what, time.Since(start).Seconds())
	byNode := map[string]runtime.Result{}
	for _, r := range res {
		byNode[r.Node] = r
	}
	return byNode
}
