package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/bindings/image"
	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
)

// fleet is a simulator whose servers boot the emulated IPA ramdisk from
// virtual media, plus a deploy ISO the ramdisk can read.
type fleet struct {
	sim       *sim.Sim
	rd        *ramdisk.Ramdisk
	deployISO string
	dir       string

	mu       sync.Mutex
	tokens   []string            // ipa-agent-token of every ramdisk boot, read off its floppy
	floppies [][]byte            // the published floppies servers booted with (raw bytes)
	cmdlines map[string][]string // with fleetOptions.cmdlines: each server's boot ISO kernel command lines
	boots    []sim.BootEvent     // every boot of every server, in order
}

func (f *fleet) recordBoot(ev sim.BootEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boots = append(f.boots, ev)
}

// bootsOf returns the boots of server so far.
func (f *fleet) bootsOf(server string) []sim.BootEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sim.BootEvent
	for _, ev := range f.boots {
		if ev.Server == server {
			out = append(out, ev)
		}
	}
	return out
}

// bootCmdlines returns the kernel command lines of the ISOs server booted
// (fleetOptions.cmdlines).
func (f *fleet) bootCmdlines(server string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmdlines[server]...)
}

// recordCmdline reads the kernel command line off the ISO a server boots.
func (f *fleet) recordCmdline(ev sim.BootEvent) {
	path, ok := f.fetchMedium(ev, "CDROM", "cdrom-*.iso")
	if !ok {
		return
	}
	defer os.Remove(path)
	if c, err := image.KernelCmdline(path); err == nil {
		f.mu.Lock()
		f.cmdlines[ev.Server] = append(f.cmdlines[ev.Server], c)
		f.mu.Unlock()
	}
}

// fetchMedium downloads the virtual medium of kind ("CDROM", "FLOPPY") a
// server boots with into a temporary file in f.dir (the caller removes it).
func (f *fleet) fetchMedium(ev sim.BootEvent, kind, pattern string) (string, bool) {
	u, ok := ev.Media[kind]
	if !ok {
		return "", false
	}
	resp, err := http.Get(u)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(f.dir, pattern)
	if err != nil {
		return "", false
	}
	_, _ = io.Copy(tmp, resp.Body)
	tmp.Close()
	return tmp.Name(), true
}

// bootFloppies returns the floppy images the servers booted with.
func (f *fleet) bootFloppies() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.floppies...)
}

// agentTokens returns the agent tokens the ramdisks were booted with.
func (f *fleet) agentTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

// recordToken reads the agent token off the floppy a server boots with.
func (f *fleet) recordToken(ev sim.BootEvent) {
	path, ok := f.fetchMedium(ev, "FLOPPY", "floppy-*.img")
	if !ok {
		return
	}
	defer os.Remove(path)
	if raw, err := os.ReadFile(path); err == nil {
		f.mu.Lock()
		f.floppies = append(f.floppies, raw)
		f.mu.Unlock()
	}
	if p, err := image.ReadFloppyParams(path); err == nil && p["ipa-agent-token"] != "" {
		f.mu.Lock()
		f.tokens = append(f.tokens, p["ipa-agent-token"])
		f.mu.Unlock()
	}
}

type fleetOptions struct {
	nodes    []sim.NodeSpec
	diskSize int64
	hardware func(name string, g sim.Generation, idx int, hw *sim.Hardware)
	// password of every iLO (default: random per server).
	password string
	// cmdlines records the kernel command line of every boot ISO (bootCmdlines).
	cmdlines bool
	// pxeServer is the HTTP boot server the emulated ramdisk's network
	// boots fetch from (ramdisk.Options.PXEServer).
	pxeServer string
}

func newFleet(t testing.TB, o fleetOptions) *fleet {
	t.Helper()
	dir := t.TempDir()
	if o.diskSize == 0 {
		o.diskSize = 32 << 20
	}
	iso := buildDeployISO(t, dir)
	rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: time.Second, LookupInterval: 20 * time.Millisecond,
		WorkDir: dir, PXEServer: o.pxeServer, Logger: slog.New(slog.DiscardHandler)})
	f := &fleet{rd: rd, deployISO: iso, dir: dir, cmdlines: map[string][]string{}}
	s, err := sim.New(sim.Options{Nodes: o.nodes, Dir: dir, DiskSize: o.diskSize, DeployISO: iso, Password: o.password,
		Hardware: o.hardware, Logger: slog.New(slog.DiscardHandler),
		BootHook: func(ctx context.Context, ev sim.BootEvent) {
			f.recordToken(ev)
			f.recordBoot(ev)
			if o.cmdlines {
				f.recordCmdline(ev)
			}
			_ = rd.Boot(ctx, ramdisk.BootEvent(ev))
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.sim = s
	rd.UseSim(s) // power off, and the ramdisk's log on each server's serial console
	t.Cleanup(func() {
		rd.Close()
		s.Close()
	})
	return f
}

// server returns the simulated server behind a node name.
func (f *fleet) server(t testing.TB, name string) *sim.Server {
	t.Helper()
	srv, ok := f.sim.ServerByName(name)
	if !ok {
		t.Fatalf("no simulated server %s", name)
	}
	return srv
}

// buildDeployISO builds a BIOS boot ISO (placeholder kernel and boot
// loader: only the emulated ramdisk reads it) whose kernel command line
// tells IPA to read its parameters from the virtual floppy.
func buildDeployISO(t testing.TB, dir string) string {
	t.Helper()
	for _, n := range []string{"vmlinuz", "initrd", "isolinux.bin", "ldlinux.c32"} {
		if err := os.WriteFile(filepath.Join(dir, n), bytes.Repeat([]byte(n), 512), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "ipa-deploy.iso")
	err := image.WriteISO(context.Background(), out, image.ISOOptions{
		Kernel: filepath.Join(dir, "vmlinuz"), Ramdisk: filepath.Join(dir, "initrd"),
		Append: "nofb nomodeset vga=normal boot_method=vmedia", BIOSOnly: true,
		Isolinux: filepath.Join(dir, "isolinux.bin"), Ldlinux: filepath.Join(dir, "ldlinux.c32"), TempDir: dir,
	})
	if err != nil {
		t.Fatalf("deploy ISO: %v", err)
	}
	return out
}

// env is an opened lightsout installation driving a fleet.
type env struct {
	t     testing.TB
	app   *app.App
	fleet *fleet
	dir   string
}

// baseConfig keeps the polls of the playbooks short: the simulator
// answers at once, so only the product's own poll intervals matter.
const baseConfig = `
[ilo]
power_wait = 0.02
client_timeout = 30
reset_ilo_settle = 0.1
[agent]
post_deploy_get_power_state_retries = 500
post_deploy_get_power_state_retry_interval = 0.02
[conductor]
deploy_callback_timeout = 60
clean_callback_timeout = 60
`

// open opens an App on a fresh state dir with baseConfig plus extra
// (INI text; later keys win) and the given site script directories.
func open(t testing.TB, f *fleet, extra string, scriptDirs ...string) *env {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "lightsout.conf")
	// Images live in the temporary directories of the test and of the
	// test that made the fleet (t.TempDir() siblings of its deploy ISO):
	// the operator allows them to scripts.
	allowed := filepath.Dir(dir)
	if f != nil {
		allowed += ":" + filepath.Dir(f.dir)
	}
	text := "[lightsout]\nstate_dir = " + dir + "\nscript_paths = " + allowed + "\n" + mergeINI(baseConfig, extra)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, ScriptDirs: scriptDirs,
		Stdout: io.Discard, Stderr: io.Discard, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &env{t: t, app: a, fleet: f, dir: dir}
}

// mergeINI concatenates INI texts section by section (later keys win).
func mergeINI(texts ...string) string {
	type kv struct{ k, v string }
	order := []string{}
	secs := map[string][]kv{}
	for _, text := range texts {
		sec := ""
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			switch {
			case line == "" || line[0] == '#':
			case line[0] == '[':
				sec = strings.Trim(line, "[]")
				if _, ok := secs[sec]; !ok {
					order = append(order, sec)
					secs[sec] = nil
				}
			default:
				k, v, _ := strings.Cut(line, "=")
				k = strings.TrimSpace(k)
				list := secs[sec]
				replaced := false
				for i := range list {
					if list[i].k == k {
						list[i].v, replaced = strings.TrimSpace(v), true
					}
				}
				if !replaced {
					list = append(list, kv{k, strings.TrimSpace(v)})
				}
				secs[sec] = list
			}
		}
	}
	var b strings.Builder
	for _, s := range order {
		fmt.Fprintf(&b, "[%s]\n", s)
		for _, e := range secs[s] {
			fmt.Fprintf(&b, "%s = %s\n", e.k, e.v)
		}
	}
	return b.String()
}

// importFleet imports every simulated server as a node and manages it.
func (e *env) importFleet() {
	e.t.Helper()
	ctx := context.Background()
	inv := filepath.Join(e.dir, "inventory.json")
	if err := e.fleet.sim.WriteInventory(inv); err != nil {
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

// node reads a node.
func (e *env) node(name string) *store.Node {
	e.t.Helper()
	n, err := e.app.Store.GetNode(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// makeAvailable moves a manageable node to available without cleaning
// (for tests whose subject is not cleaning).
func (e *env) makeAvailable(name string) {
	e.t.Helper()
	ctx := context.Background()
	for _, ev := range []string{"provide", "done"} {
		if _, err := e.app.Store.Transition(ctx, name, ev); err != nil {
			e.t.Fatal(err)
		}
	}
}

// runs runs script on nodes in parallel and returns the results by node.
func (e *env) runs(script string, nodes []string, params map[string]string) map[string]runtime.Result {
	e.t.Helper()
	res, _ := e.app.Engine.RunMany(context.Background(), runtime.RunRequest{Script: script, Params: params,
		Timeout: 2 * time.Minute}, nodes, len(nodes), nil)
	out := map[string]runtime.Result{}
	for _, r := range res {
		out[r.Node] = r
	}
	return out
}

// mustSucceed fails the test with the run's timeline when r failed.
func (e *env) mustSucceed(r runtime.Result) {
	e.t.Helper()
	if !r.Succeeded() {
		e.t.Fatalf("run %d (%s on %s) %s: %s\n%s", r.RunID, r.Script, r.Node, r.Status, r.Error, e.timeline(r.RunID))
	}
}

// timeline renders a run's events, for failure messages.
func (e *env) timeline(id int64) string {
	evs, _ := e.app.Store.Events(context.Background(), id)
	var b strings.Builder
	for _, ev := range evs {
		d, _ := json.Marshal(ev.Data)
		fmt.Fprintf(&b, "  %s %s %s\n", ev.Kind, ev.Name, d)
	}
	return b.String()
}

// steps lists the names of the steps a run started, in order.
func (e *env) steps(id int64, prefix string) []string {
	e.t.Helper()
	evs, err := e.app.Store.Events(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Kind == store.EventStepStart && strings.HasPrefix(ev.Name, prefix) {
			out = append(out, strings.TrimPrefix(ev.Name, prefix))
		}
	}
	return out
}

// stepStatus returns the end status of each step with the prefix.
func (e *env) stepStatus(id int64, prefix string) map[string]string {
	e.t.Helper()
	evs, _ := e.app.Store.Events(context.Background(), id)
	out := map[string]string{}
	for _, ev := range evs {
		if ev.Kind == store.EventStepEnd && strings.HasPrefix(ev.Name, prefix) {
			out[strings.TrimPrefix(ev.Name, prefix)], _ = ev.Data["status"].(string)
		}
	}
	return out
}

// logs returns the messages of a run's log events at level.
func (e *env) logs(id int64, level string) []string {
	evs, _ := e.app.Store.Events(context.Background(), id)
	var out []string
	for _, ev := range evs {
		if ev.Kind == store.EventLog && ev.Name == level {
			if m, ok := ev.Data["msg"].(string); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// noMediaLeft checks that nothing the node's runs published is left: no
// undeleted artifact and no file in the web store's directory for it.
func (e *env) noMediaLeft(name string) {
	e.t.Helper()
	n := e.node(name)
	left, err := e.app.Store.Artifacts(context.Background(), n.UUID, false)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(left) > 0 {
		e.t.Errorf("%s: published objects left: %+v", name, left)
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "published"))
	for _, en := range entries {
		if strings.Contains(en.Name(), n.UUID) {
			e.t.Errorf("%s: published file left: %s", name, en.Name())
		}
	}
}

// testImage writes a random raw image of size bytes and returns its path,
// md5-free sha256 and md5 digests.
func testImage(t testing.TB, dir string, size int) (path string, data []byte) {
	t.Helper()
	data = make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "image.raw")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func sha512hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// diskPrefixHash hashes the first n bytes of a virtual disk.
func diskPrefixHash(t testing.TB, path string, n int) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, int64(n)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diskIsZero reports whether every byte of the virtual disk is zero.
func diskIsZero(t testing.TB, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return false
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// noSecretsAtRest closes the App (flushing every event) and checks that no
// state file but the key files (and the test's own sim inventory) holds a secret in clear: the given values
// (agent tokens, iLO passwords), the publisher's temp-URL key, or a temp-URL
// signature.
func (e *env) noSecretsAtRest(values []string) {
	e.t.Helper()
	if key, err := os.ReadFile(filepath.Join(e.dir, "webstore.key")); err == nil {
		values = append(values, strings.TrimSpace(string(key)))
	}
	if err := e.app.Close(); err != nil {
		e.t.Fatal(err)
	}
	sig := regexp.MustCompile(`temp_url_sig=[0-9a-fA-F]{16,}`)
	checked := 0
	err := filepath.Walk(e.dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		name := filepath.Base(p)
		if name == "secret.key" || name == "webstore.key" || name == "inventory.json" || strings.HasPrefix(p, filepath.Join(e.dir, "published")) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checked++
		for _, v := range values {
			if len(v) >= 4 && bytes.Contains(data, []byte(v)) {
				e.t.Errorf("%s holds a secret in clear (%.4s…)", p, v)
			}
		}
		if m := sig.Find(data); m != nil {
			e.t.Errorf("%s holds a temp-URL signature: %.24s…", p, m)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if checked == 0 {
		e.t.Fatal("no state file was checked")
	}
}
