package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/states"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/watch"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// These tests drive real lightsout processes (built from cmd/lightsout)
// against the simulator and the emulated ramdisk of this process, and
// interrupt them with real signals. They synchronise on the runs' events
// in the database (or on the image server), never on sleeps.

// buildCLI builds the lightsout binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-o", bin, "github.com/lightsout/lightsout/cmd/lightsout")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lightsout: %v\n%s", err, out)
	}
	return bin
}

// proc is a lightsout child process.
type proc struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	exited chan struct{}
	err    error
}

// start starts `lightsout --config <env config> args...`.
func (e *env) start(bin string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(bin, append([]string{"--config", filepath.Join(e.dir, "lightsout.conf"), "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), "LIGHTSOUT_CONFIG=", "LIGHTSOUT_SECRET_KEY=")
	p := &proc{cmd: cmd, out: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		t.Fatalf("%v did not exit within %v\n%s", p.cmd.Args, limit, p.out.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%v: %v", p.cmd.Args, p.err)
	}
	return 0
}

// cli runs lightsout to completion and returns its exit code and output.
func (e *env) cli(bin string, args ...string) (int, string) {
	e.t.Helper()
	p := e.start(bin, args...)
	code := p.wait(e.t, 3*time.Minute)
	return code, p.out.String()
}

// waitFor polls cond (every 20 ms, up to a minute) while p runs.
func (e *env) waitFor(p *proc, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-p.exited:
			e.t.Fatalf("lightsout exited before %s: %v\n%s", what, p.err, p.out.String())
		case <-deadline:
			e.t.Fatalf("%s never happened\n%s", what, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastRun returns the node's newest run (nil when none).
func (e *env) lastRun(node string) *store.Run {
	runs, err := e.app.Store.ListRuns(context.Background(), store.RunFilter{Node: node, Limit: 1})
	if err != nil || len(runs) == 0 {
		return nil
	}
	return runs[0]
}

// reached reports whether the node's newest run recorded event kind/name.
func (e *env) reached(node, script, kind, name string) bool {
	r := e.lastRun(node)
	if r == nil || r.Script != script {
		return false
	}
	evs, _ := e.app.Store.Events(context.Background(), r.ID)
	for _, ev := range evs {
		if ev.Kind == kind && ev.Name == name {
			return true
		}
	}
	return false
}

// imageServer serves the test image; the first GET of /hold/<node>.raw
// sends half of it, reports the node on entered and blocks until release
// is closed or the client goes away (the server powered off).
type imageServer struct {
	*httptest.Server
	data    []byte
	entered chan string
	release chan struct{}
	held    sync.Map
}

func newImageServer(t *testing.T, data []byte) *imageServer {
	s := &imageServer{data: data, entered: make(chan string, 16), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method != http.MethodGet {
			return
		}
		node, hold := strings.CutPrefix(r.URL.Path, "/hold/")
		if _, again := s.held.LoadOrStore(r.URL.Path, true); hold && !again {
			half := len(data) / 2
			w.Write(data[:half])
			w.(http.Flusher).Flush()
			s.entered <- strings.TrimSuffix(node, ".raw")
			select {
			case <-s.release:
				w.Write(data[half:])
			case <-r.Context().Done():
			}
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

// pauseScript is a site deploy.lua: the bundled deploy with a phase that
// sleeps (until cancelled) after the phase named by --param pause_after.
const pauseScript = `local deploy = require("bundled.deploy")
if params.pause_after then
  deploy.add_step(params.pause_after, "test pause", function() run.sleep(3600) end)
end
deploy.run()
`

// moment is a point of a deploy at which it is interrupted.
type moment struct {
	name       string
	pauseAfter string // a phase after which the site deploy pauses
	noAgent    bool   // the ramdisk never heartbeats: the run waits for the agent
	holdImage  bool   // the image download stalls half-way: mid image write
	stallISCSI bool   // the ramdisk's iSCSI target stops reading half-way: qemu-img mid-write
	step       string // the step whose start marks the moment (pause or noAgent)
	// drivers interrupted at this moment (nil: agent_ilo): pxe_ilo once its
	// PXE files are written, iscsi_ilo while its ramdisk runs and exports
	// the disk.
	drivers []string
}

var moments = []moment{
	{name: "before power on", pauseAfter: "prepare node", step: "test pause"},
	{name: "waiting for the agent", noAgent: true, step: "wait for agent", drivers: []string{"agent_ilo", "pxe_ilo", "iscsi_ilo"}},
	{name: "mid image write", holdImage: true, drivers: []string{"agent_ilo", "pxe_ilo"}},
	{name: "mid iSCSI write", stallISCSI: true, drivers: []string{"iscsi_ilo"}},
	{name: "after write", pauseAfter: "write image", step: "test pause", drivers: []string{"agent_ilo", "pxe_ilo", "iscsi_ilo"}},
	{name: "during boot configuration", pauseAfter: "configure boot", step: "test pause"},
}

// interruption is one case of TestInterruptedDeployRecovers.
type interruption struct {
	moment
	driver string
	sig    syscall.Signal
}

// interruptions are the moments with both signals for each of the
// moment's drivers.
func interruptions() []interruption {
	var out []interruption
	for _, m := range moments {
		drivers := m.drivers
		if drivers == nil {
			drivers = []string{"agent_ilo"}
		}
		for _, d := range drivers {
			for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
				out = append(out, interruption{m, d, sig})
			}
		}
	}
	return out
}

// portalOpen reports whether something accepts on 127.0.0.1:port now.
func portalOpen(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestInterruptedDeployRecovers interrupts a real CLI deploy (UEFI, secure
// boot requested, secure boot off before) at five moments, with kill -9 and
// with SIGINT, and a pxe_ilo and an iscsi_ilo deploy at some of them. Every time the node ends in deploy failed with last_error (after
// SIGINT at once; after kill -9 once `lightsout node recover` ran):
// powered off, no virtual media inserted, nothing published, no PXE file or
// MAC link, no agent and no iSCSI target left, secure boot off as before,
// unlocked, no recovery pending; then one `lightsout deploy` (no
// arguments) deploys the image.
func TestInterruptedDeployRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout and runs 22 interrupted deploys")
	}
	bin := buildCLI(t)
	cases := interruptions()
	tftpRoot, pxeURL := pxeBootServer(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, len(cases)), pxeServer: pxeURL})
	e := open(t, f, "[lightsout]\nabort_grace = 60s\n[pxe]\ntftp_root = "+tftpRoot+"\n")
	e.importFleet()
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "deploy.lua"), []byte(pauseScript), 0o644); err != nil {
		t.Fatal(err)
	}
	imgPath, data := testImage(t, t.TempDir(), 2<<20)
	images := newImageServer(t, data)
	sum := "sha256:" + sha256hex(data)
	kernel, initrd := deployKernel(t, t.TempDir())

	for i, c := range cases {
		m, sig, node := c.moment, c.sig, fmt.Sprintf("gen10-%d", i)
		name := m.name + "/" + sig.String()
		if c.driver != "agent_ilo" {
			name = m.name + "/" + c.driver + "/" + sig.String()
		}
		t.Run(name, func(t *testing.T) {
			e := &env{t: t, app: e.app, fleet: f, dir: e.dir}
			setup := driverSetup{kernel: kernel, ramdisk: initrd}
			if c.driver == "iscsi_ilo" {
				requireISCSI(t)
				setup.iscsiPort = freeTCPPort(t)
			}
			useDriver(t, e, node, c.driver, setup)
			pxeBoot := c.driver == "pxe_ilo"
			srv := f.server(t, node)
			if st := srv.State(); st.SecureBootEnable {
				t.Fatalf("secure boot on before the deploy")
			}
			src := imgPath
			if m.holdImage {
				src = images.URL + "/hold/" + node + ".raw"
			}
			if m.noAgent {
				f.rd.SetFailures(node, ramdisk.Failures{NoHeartbeat: true})
			}
			if m.stallISCSI {
				f.rd.SetFailures(node, ramdisk.Failures{TargetStallsAfter: 1 << 20})
			}
			args := []string{"deploy", node, "--image-source", src, "--image-checksum", sum,
				"--boot-mode", "uefi", "--secure-boot", "--scripts", site}
			if m.pauseAfter != "" {
				args = append(args, "--param", "pause_after="+m.pauseAfter)
			}
			p := e.start(bin, args...)
			if m.holdImage {
				select {
				case got := <-images.entered:
					if got != node {
						t.Fatalf("image download of %s, want %s", got, node)
					}
				case <-p.exited:
					t.Fatalf("deploy exited before the image write: %v\n%s", p.err, p.out.String())
				case <-time.After(time.Minute):
					t.Fatalf("the image write never started\n%s", p.out.String())
				}
			} else if m.stallISCSI {
				e.waitFor(p, "qemu-img writing to the stalled target", func() bool {
					a := f.rd.Agent(node)
					return a != nil && a.ISCSITargetStalled()
				})
			} else {
				e.waitFor(p, m.step, func() bool { return e.reached(node, "deploy", store.EventStepStart, m.step) })
			}
			run := e.lastRun(node)
			// What the interruption leaves to undo.
			booted := m.pauseAfter != "prepare node"
			if st := srv.State(); booted && (st.Power != "ON" || st.Media["CDROM"].Inserted == pxeBoot) {
				t.Fatalf("at %s: power %s media %+v; want the ramdisk booted (pxe_ilo: without virtual media)", m.name, st.Power, st.Media)
			}
			if st := srv.State(); m.pauseAfter == "configure boot" && !st.SecureBootEnable {
				t.Fatalf("at %s: secure boot not pending on", m.name)
			}
			if left, _ := e.app.Store.Artifacts(context.Background(), e.node(node).UUID, false); booted && !pxeBoot && len(left) == 0 {
				t.Fatalf("at %s: nothing published", m.name)
			}
			if left := pxeFilesUnder(t, tftpRoot); pxeBoot && !slices.ContainsFunc(left, func(p string) bool {
				return strings.HasPrefix(p, e.node(node).UUID)
			}) {
				t.Fatalf("at %s: no PXE files of the node (%v)", m.name, left)
			}
			if c.driver == "iscsi_ilo" && (m.pauseAfter == "write image" || m.stallISCSI) && !portalOpen(setup.iscsiPort) {
				t.Fatalf("at %s: the ramdisk does not export the disk", m.name)
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t, 2*time.Minute)
			f.rd.SetFailures(node, ramdisk.Failures{})
			wantErr := "interrupted: signal interrupt"
			if sig == syscall.SIGKILL {
				wantErr = fmt.Sprintf("run %d (deploy) was interrupted: process died", run.ID)
				if n := e.node(node); n.ProvisionState != states.Deploying && n.ProvisionState != states.WaitCallBack {
					t.Fatalf("after kill -9, before any other command: %s", n.ProvisionState)
				}
				rc, out := e.cli(bin, "node", "recover", node)
				if rc != 0 || !strings.Contains(out, "recovered by run") {
					t.Fatalf("node recover: exit %d\n%s", rc, out)
				}
			} else if code == 0 {
				t.Fatalf("interrupted deploy exited 0\n%s", p.out.String())
			}
			n := e.node(node)
			if n.ProvisionState != states.DeployFailed || !strings.Contains(n.LastError, wantErr) {
				t.Fatalf("state %q last_error %q; want deploy failed with %q\n%s", n.ProvisionState, n.LastError, wantErr, e.timeline(run.ID))
			}
			if n.Reservation != 0 || n.DriverInternalInfo[store.RecoveryKey] != nil || n.DriverInternalInfo["secure_boot_before"] != nil {
				t.Errorf("left over: reservation %d, driver_internal_info %v", n.Reservation, n.DriverInternalInfo)
			}
			st := srv.State()
			if st.Power != "OFF" || st.SecureBootEnable {
				t.Errorf("server: power %s, secure boot pending %v; want off, secure boot off", st.Power, st.SecureBootEnable)
			}
			e.nothingLeft(node, tftpRoot, setup.iscsiPort)
			if got, _ := e.app.Store.GetRun(context.Background(), run.ID); got.Status == store.StatusRunning {
				t.Errorf("the interrupted run is still running")
			}

			rc, out := e.cli(bin, "deploy", node)
			if rc != 0 {
				t.Fatalf("deploy again: exit %d\n%s", rc, out)
			}
			n = e.node(node)
			st = srv.State()
			if n.ProvisionState != states.Active || st.Power != "ON" || !st.SecureBootEnable {
				t.Errorf("after the new deploy: %s, power %s, secure boot %v", n.ProvisionState, st.Power, st.SecureBootEnable)
			}
			if got := diskPrefixHash(t, srv.DiskPath(), len(data)); got != sha256hex(data) {
				t.Errorf("the disk does not hold the image after the new deploy")
			}
			e.noMediaLeft(node)
			if left := pxeFilesUnder(t, tftpRoot); len(left) > 0 {
				t.Errorf("PXE files left after the new deploy: %v", left)
			}
		})
	}
}

// TestNodeSetDuringDeployIsRefused: while a real deploy of image A runs
// (its image write held half-way), `lightsout node set` of another image
// exits 1 with "node N is locked by run R (deploy)"; the deploy then
// writes A, as it logged and recorded in its inputs.
func TestNodeSetDuringDeployIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout")
	}
	bin := buildCLI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	e := open(t, f, "")
	e.importFleet()
	const node = "gen10-0"
	e.makeAvailable(node)
	_, data := testImage(t, t.TempDir(), 1<<20)
	other, otherData := testImage(t, t.TempDir(), 1<<20)
	images := newImageServer(t, data)
	srcA := images.URL + "/hold/" + node + ".raw"
	p := e.start(bin, "deploy", node, "--image-source", srcA, "--image-checksum", "sha256:"+sha256hex(data))
	select {
	case <-images.entered:
	case <-p.exited:
		t.Fatalf("deploy exited early: %v\n%s", p.err, p.out.String())
	case <-time.After(time.Minute):
		t.Fatalf("the image write never started\n%s", p.out.String())
	}
	run := e.lastRun(node)
	want := fmt.Sprintf("node %s is locked by run %d (deploy)", node, run.ID)
	for _, args := range [][]string{
		{"node", "set", node, "--instance-info", "image_source=" + other, "--instance-info", "image_checksum=sha256:" + sha256hex(otherData)},
		{"node", "set", node, "--maintenance"},
		{"node", "unset", node, "--instance-info", "image_source"},
		{"node", "delete", node},
	} {
		rc, out := e.cli(bin, args...)
		if rc != 1 || !strings.Contains(out, want) {
			t.Errorf("%v during the deploy: exit %d\n%s\nwant exit 1 and %q", args, rc, out, want)
		}
	}
	close(images.release)
	if rc := p.wait(t, 2*time.Minute); rc != 0 {
		t.Fatalf("deploy: exit %d\n%s", rc, p.out.String())
	}
	n := e.node(node)
	if n.ProvisionState != states.Active || n.InstanceInfo["image_source"] != srcA || n.Maintenance {
		t.Fatalf("node after the deploy: %s %v maintenance %v", n.ProvisionState, n.InstanceInfo, n.Maintenance)
	}
	if got := diskPrefixHash(t, f.server(t, node).DiskPath(), len(data)); got != sha256hex(data) {
		t.Fatalf("the disk does not hold the image the deploy logged")
	}
	logged := strings.Join(e.logs(run.ID, "info"), "\n")
	if !strings.Contains(logged, "deploying "+srcA) {
		t.Errorf("the deploy did not log its image:\n%s", logged)
	}
	evs, _ := e.app.Store.Events(context.Background(), run.ID)
	for _, ev := range evs {
		if ev.Name == "inputs" {
			ii, _ := ev.Data["instance_info"].(map[string]any)
			if ii["image_source"] != srcA {
				t.Errorf("inputs event %v, want image_source %s", ev.Data, srcA)
			}
			return
		}
	}
	t.Errorf("no inputs event recorded:\n%s", e.timeline(run.ID))
}

// TestKill9OfServeWithADeployJob: `lightsout serve --watch` runs a deploy
// job (paused after boot configuration: ramdisk up, media published and
// inserted, secure boot pending on) and is killed with -9. A new serve
// re-queues the job, recovers the node (its own run), then deploys; the
// job's result lists the interrupted run and the recovery run before the
// final one.
func TestKill9OfServeWithADeployJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout")
	}
	bin := buildCLI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	e := open(t, f, "")
	e.importFleet()
	const node = "gen10-0"
	e.makeAvailable(node)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "deploy.lua"), []byte(pauseScript), 0o644); err != nil {
		t.Fatal(err)
	}
	img, data := testImage(t, t.TempDir(), 2<<20)
	spool := filepath.Join(t.TempDir(), "spool")
	if err := os.MkdirAll(filepath.Join(spool, watch.Incoming), 0o755); err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf(`{"action": "deploy", "nodes": [%q], "params": {"pause_after": "configure boot"},
	  "instance_info": {"image_source": %q, "image_checksum": "sha256:%s",
	  "capabilities": {"boot_mode": "uefi", "secure_boot": "true"}}}`, node, img, sha256hex(data))
	tmp := filepath.Join(spool, watch.Incoming, ".job.json")
	if err := os.WriteFile(tmp, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(spool, watch.Incoming, "job.json")); err != nil {
		t.Fatal(err)
	}
	serve := []string{"serve", "--watch", spool, "--listen", "127.0.0.1:0", "--settle", "0"}
	p := e.start(bin, append([]string{"--scripts", site}, serve...)...)
	e.waitFor(p, "the deploy job to pause", func() bool { return e.reached(node, "deploy", store.EventStepStart, "test pause") })
	interrupted := e.lastRun(node)
	if st := f.server(t, node).State(); st.Power != "ON" || !st.SecureBootEnable {
		t.Fatalf("at the kill: power %s secure boot pending %v", st.Power, st.SecureBootEnable)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, time.Minute)

	oldTokens := f.agentTokens()
	if len(oldTokens) != 1 {
		t.Fatalf("%d ramdisk boots before the kill, want 1", len(oldTokens))
	}
	// Restarted without the pausing site script: the bundled deploy runs.
	p = e.start(bin, append([]string{"--log-level", "info"}, serve...)...)
	resultFile := filepath.Join(spool, watch.Done, "job.result.json")
	e.waitFor(p, "the job to finish", func() bool {
		_, err := os.Stat(resultFile)
		_, ferr := os.Stat(filepath.Join(spool, watch.Failed, "job.result.json"))
		return err == nil || ferr == nil
	})
	b, err := os.ReadFile(resultFile)
	if err != nil {
		t.Fatalf("the job did not end in done/: %v\n%s", err, p.out.String())
	}
	var res watch.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "done" || len(res.Nodes) != 1 || len(res.Nodes[0].PreviousRunIDs) != 2 {
		t.Fatalf("result %s", b)
	}
	prev := res.Nodes[0].PreviousRunIDs
	ctx := context.Background()
	if prev[0] != interrupted.ID {
		t.Errorf("previous runs %v, want the interrupted run %d first", prev, interrupted.ID)
	}
	if r, _ := e.app.Store.GetRun(ctx, prev[0]); r.Status != store.StatusInterrupted {
		t.Errorf("interrupted run: %+v", r)
	}
	if r, _ := e.app.Store.GetRun(ctx, prev[1]); r.Script != "recover" || r.Status != store.StatusSucceeded {
		t.Errorf("recovery run: %+v", r)
	}
	if r, _ := e.app.Store.GetRun(ctx, res.Nodes[0].RunID); r.Script != "deploy" || r.Status != store.StatusSucceeded {
		t.Errorf("final run: %+v", r)
	}
	n := e.node(node)
	if n.ProvisionState != states.Active || n.DriverInternalInfo[store.RecoveryKey] != nil {
		t.Errorf("node after the job: %s %v", n.ProvisionState, n.DriverInternalInfo)
	}
	if got := diskPrefixHash(t, f.server(t, node).DiskPath(), len(data)); got != sha256hex(data) {
		t.Errorf("the disk does not hold the image")
	}
	e.noMediaLeft(node)
	// The interrupted run's agent token is refused by the agent API.
	m := regexp.MustCompile(`agent callback API listening.*url=(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no agent API address in the serve output:\n%s", p.out.String())
	}
	body := fmt.Sprintf(`{"callback_url": "http://127.0.0.1:9", "agent_token": %q}`, oldTokens[0])
	resp, err := http.Post(m[1]+"/v1/heartbeat/"+n.UUID, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("a heartbeat with the interrupted run's agent token: HTTP %d, want refused", resp.StatusCode)
	}
}

// TestNodeAbort: `lightsout node abort` from another process stops a
// running CLI deploy (paused after boot configuration) through its abort
// request: the deploy runs its failure path and exits 1, abort exits 0,
// and the node is in deploy failed ("aborted by operator"), clean, and
// deploys again. A second abort has nothing to do (exit 2).
func TestNodeAbort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout")
	}
	bin := buildCLI(t)
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
	e := open(t, f, "")
	e.importFleet()
	const node = "gen10-0"
	e.makeAvailable(node)
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "deploy.lua"), []byte(pauseScript), 0o644); err != nil {
		t.Fatal(err)
	}
	img, data := testImage(t, t.TempDir(), 2<<20)
	p := e.start(bin, "deploy", node, "--image-source", img, "--image-checksum", "sha256:"+sha256hex(data),
		"--boot-mode", "uefi", "--secure-boot", "--scripts", site, "--param", "pause_after=configure boot")
	e.waitFor(p, "the deploy to pause", func() bool { return e.reached(node, "deploy", store.EventStepStart, "test pause") })
	run := e.lastRun(node)
	rc, out := e.cli(bin, "node", "abort", node)
	if rc != 0 || !strings.Contains(out, fmt.Sprintf("run %d aborted (requested)", run.ID)) || !strings.Contains(out, "deploy failed") {
		t.Fatalf("node abort: exit %d\n%s", rc, out)
	}
	if code := p.wait(t, time.Minute); code != 1 {
		t.Fatalf("aborted deploy exited %d\n%s", code, p.out.String())
	}
	n := e.node(node)
	if n.ProvisionState != states.DeployFailed || !strings.Contains(n.LastError, "interrupted: aborted by operator") {
		t.Fatalf("state %s last_error %q\n%s", n.ProvisionState, n.LastError, e.timeline(run.ID))
	}
	if r, _ := e.app.Store.GetRun(context.Background(), run.ID); r.Status != store.StatusCancelled || !strings.Contains(r.Error, "aborted by operator") {
		t.Errorf("aborted run: %s %q", r.Status, r.Error)
	}
	st := f.server(t, node).State()
	if st.Power != "OFF" || st.Media["CDROM"].Inserted || st.Media["FLOPPY"].Inserted || st.SecureBootEnable {
		t.Errorf("server after abort: power %s media %+v secure boot %v", st.Power, st.Media, st.SecureBootEnable)
	}
	e.noMediaLeft(node)
	if rc, out := e.cli(bin, "node", "abort", node); rc != 2 || !strings.Contains(out, "nothing to recover") {
		t.Errorf("second abort: exit %d\n%s", rc, out)
	}
	if rc, out := e.cli(bin, "deploy", node); rc != 0 {
		t.Fatalf("deploy again: exit %d\n%s", rc, out)
	}
}

// TestInterruptedCleanAndInspectRecoverOnManage: a run that died (its
// process gone) in clean wait or inspecting leaves the node, once the next
// process starts, in clean failed / inspect failed with last_error and
// recovery pending; `node manage` (app.Manage) first runs the recovery
// (powering the server off, ejecting its media), then moves it to
// manageable.
func TestInterruptedCleanAndInspectRecoverOnManage(t *testing.T) {
	tests := []struct{ state, failed string }{
		{states.CleanWait, states.CleanFailed},
		{states.Inspecting, states.InspectFailed},
		{states.Deleting, states.Error},
	}
	f := newFleet(t, fleetOptions{nodes: gens(0, 0, len(tests))})
	e := open(t, f, "")
	e.importFleet()
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			name := fmt.Sprintf("gen10-%d", i)
			srv := f.server(t, name)
			srv.Update(func(st *sim.State) { st.Power = "ON" })
			n, err := e.app.Store.UpdateNode(ctx, name, func(n *store.Node) error { n.ProvisionState = tt.state; return nil })
			if err != nil {
				t.Fatal(err)
			}
			dead := &store.Run{Script: "clean", NodeUUID: n.UUID, NodeName: name, Host: hostname(t), PID: deadPID(t)}
			if err := e.app.Store.CreateRun(ctx, dead); err != nil {
				t.Fatal(err)
			}
			if err := e.app.Store.LockNode(ctx, n.UUID, dead.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := runtime.RecoverInterrupted(ctx, e.app.Store); err != nil {
				t.Fatal(err)
			}
			n = e.node(name)
			if n.ProvisionState != tt.failed || !strings.Contains(n.LastError, "was interrupted: process died") ||
				n.DriverInternalInfo[store.RecoveryKey] == nil || n.Reservation != 0 {
				t.Fatalf("after recovery of runs: %s %q %v reservation %d", n.ProvisionState, n.LastError, n.DriverInternalInfo, n.Reservation)
			}
			if tt.failed == states.Error {
				if _, err := e.app.RecoverIfNeeded(ctx, name); err != nil {
					t.Fatal(err)
				}
			} else if _, err := e.app.Manage(ctx, name); err != nil {
				t.Fatalf("manage: %v", err)
			}
			n = e.node(name)
			want := map[string]string{states.Error: states.Error}[tt.failed]
			if want == "" {
				want = states.Manageable
			}
			if n.ProvisionState != want || n.DriverInternalInfo[store.RecoveryKey] != nil {
				t.Fatalf("after manage: %s %v", n.ProvisionState, n.DriverInternalInfo)
			}
			if st := srv.State(); st.Power != "OFF" {
				t.Errorf("server power %s after the recovery", st.Power)
			}
			r := e.lastRun(name)
			if r.Script != "recover" || r.Status != store.StatusSucceeded {
				t.Errorf("last run %+v, want a succeeded recover run", r)
			}
		})
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

// TestNextCommandAfterKill9RecoversFirst: after kill -9 of a deploy
// waiting for its agent, the next command on the node first recovers it
// (its own run) and then does its job: the one documented command
// `lightsout deploy N` deploys again, and `lightsout run SCRIPT --node N`
// runs its script on the recovered node (left in deploy failed), like the
// verbs.
func TestNextCommandAfterKill9RecoversFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout")
	}
	bin := buildCLI(t)
	const node = "gen10-0"
	tests := []struct {
		name  string
		next  []string
		runs  string
		state string
		disk  bool // the disk holds the image afterwards
	}{
		{"deploy", []string{"deploy", node}, "deploy:interrupted recover:succeeded deploy:succeeded", states.Active, true},
		{"run", []string{"run", "hello", "--node", node}, "deploy:interrupted recover:succeeded hello:succeeded", states.DeployFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t, fleetOptions{nodes: gens(0, 0, 1)})
			e := open(t, f, "")
			e.importFleet()
			e.makeAvailable(node)
			img, data := testImage(t, t.TempDir(), 1<<20)
			f.rd.SetFailures(node, ramdisk.Failures{NoHeartbeat: true})
			p := e.start(bin, "deploy", node, "--image-source", img, "--image-checksum", "sha256:"+sha256hex(data))
			e.waitFor(p, "waiting for the agent", func() bool { return e.reached(node, "deploy", store.EventStepStart, "wait for agent") })
			interrupted := e.lastRun(node)
			p.cmd.Process.Signal(syscall.SIGKILL)
			p.wait(t, time.Minute)
			f.rd.SetFailures(node, ramdisk.Failures{})
			rc, out := e.cli(bin, tt.next...)
			if rc != 0 || !strings.Contains(out, fmt.Sprintf("recovered from an interrupted run (run %d)", interrupted.ID+1)) {
				t.Fatalf("%s after kill -9: exit %d\n%s", tt.name, rc, out)
			}
			runs, _ := e.app.Store.ListRuns(context.Background(), store.RunFilter{Node: node})
			var got []string
			for _, r := range runs {
				got = append(got, r.Script+":"+r.Status)
			}
			if strings.Join(got, " ") != tt.runs {
				t.Fatalf("runs %v, want %s", got, tt.runs)
			}
			if n := e.node(node); n.ProvisionState != tt.state {
				t.Fatalf("node %s after the %s, want %s", n.ProvisionState, tt.name, tt.state)
			}
			if tt.disk {
				if got := diskPrefixHash(t, f.server(t, node).DiskPath(), len(data)); got != sha256hex(data) {
					t.Errorf("the disk does not hold the image")
				}
			}
			e.noMediaLeft(node)
		})
	}
}
