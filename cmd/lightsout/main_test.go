package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli runs the CLI in-process with XDG_STATE_HOME pointing at state.
type cli struct {
	t     *testing.T
	state string
	// all output ever produced, to check that no secret leaks
	allOut bytes.Buffer
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	c := &cli{t: t, state: t.TempDir()}
	t.Setenv("XDG_STATE_HOME", c.state)
	t.Setenv("LIGHTSOUT_CONFIG", "")
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	return c
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	c.allOut.Write(o.Bytes())
	c.allOut.Write(e.Bytes())
	return code, o.String(), e.String()
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("lightsout %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

const sentinel = "Sentinel-Pa55-7f3a9"

func (c *cli) createNode(name string) {
	c.t.Helper()
	c.must("node", "create", name, "--driver", "agent_ilo", "-i", "ilo_address=127.0.0.1",
		"-i", "ilo_username=admin", "-i", "ilo_password="+sentinel, "-i", "ilo_deploy_iso=http://127.0.0.1/ipa.iso",
		"-p", "capabilities=boot_mode:uefi")
}

func TestExitCodesAndBadInput(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown driver", []string{"node", "create", "x", "--driver", "bogus", "-i", "ilo_address=a"}, 2, "unknown driver"},
		{"-i without =", []string{"node", "create", "x", "--driver", "agent_ilo", "-i", "ilo_address"}, 2, "expected KEY=VALUE"},
		{"-i without = does not echo a password", []string{"node", "create", "x", "--driver", "agent_ilo", "-i", "ilo_password:" + sentinel}, 2, `"******": expected KEY=VALUE`},
		{"missing keys named together", []string{"node", "create", "x", "--driver", "agent_ilo", "-i", "ilo_address=a"}, 2,
			"['ilo_username', 'ilo_password']"},
		{"non-integers named together", []string{"node", "create", "x", "--driver", "agent_ilo", "-i", "ilo_address=a",
			"-i", "ilo_username=u", "-i", "ilo_password=p", "-i", "client_port=x", "-i", "client_timeout=y"}, 2,
			"['client_port', 'client_timeout']"},
		{"duplicate name", []string{"node", "create", "n1", "--driver", "agent_ilo", "-i", "ilo_address=a",
			"-i", "ilo_username=u", "-i", "ilo_password=p"}, 2, "already exists"},
		{"invalid capabilities", []string{"node", "set", "n1", "-p", "capabilities=boot_mode:floppy"}, 2, "Acceptable values are: bios, uefi"},
		{"unknown script prints search path", []string{"run", "nosuch", "--node", "n1"}, 2, "bundled"},
		{"unknown node", []string{"run", "hello", "--node", "ghost"}, 2, "ghost"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown subcommand of a group", []string{"node", "frobnicate"}, 2, `unknown command "frobnicate" for "lightsout node"`},
		{"unknown flag", []string{"node", "list", "--frobnicate"}, 2, "unknown flag"},
		{"flag needs an argument", []string{"run", "hello", "--node"}, 2, "flag needs an argument"},
		{"bad flag value", []string{"run", "hello", "--timeout", "soon"}, 2, "invalid argument"},
		{"too many arguments", []string{"run", "a", "b"}, 2, "accepts 1 arg(s)"},
		{"required flag", []string{"node", "create", "x"}, 2, `required flag(s) "driver" not set`},
		{"mutually exclusive flags", []string{"image", "iso", "-o", "x.iso", "--bios-only", "--uefi-only"}, 2, "bios-only uefi-only"},
		{"invalid transition", []string{"node", "provide", "n1"}, 2, "allowed events: manage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.msg) {
				t.Fatalf("exit %d (want %d), output %q lacks %q", code, tt.code, out+errOut, tt.msg)
			}
		})
	}
	if strings.Contains(c.allOut.String(), sentinel) {
		t.Fatal("a bad-input error echoed the password")
	}
	// The duplicate attempt did not change the original node.
	var n map[string]any
	json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n)
	if n["driver_info"].(map[string]any)["ilo_address"] != "127.0.0.1" {
		t.Fatalf("node changed: %v", n)
	}
}

func TestNodeLifecycleAndJSONSchema(t *testing.T) {
	c := newCLI(t)
	// No BMC here: provide skips automated cleaning ([conductor] clean_nodes).
	conf := filepath.Join(t.TempDir(), "l.conf")
	os.WriteFile(conf, []byte("[conductor]\nclean_nodes = false\n"), 0o644)
	t.Setenv("LIGHTSOUT_CONFIG", conf)
	c.createNode("n1")
	c.must("node", "set", "n1", "--port", "52:54:00:aa:bb:cc", "-i", "client_port=8443")
	c.must("node", "manage", "n1")
	c.must("node", "provide", "n1")
	var n map[string]any
	if err := json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "uuid", "driver", "driver_info", "properties", "instance_info", "provision_state", "power_state", "last_error"} {
		if _, ok := n[k]; !ok {
			t.Errorf("node show --json lacks %q", k)
		}
	}
	if n["provision_state"] != "available" {
		t.Fatalf("state = %v", n["provision_state"])
	}
	if n["driver_info"].(map[string]any)["ilo_password"] != "******" {
		t.Fatalf("password not masked: %v", n["driver_info"])
	}
	c.must("node", "unset", "n1", "--port", "52:54:00:aa:bb:cc")
	c.must("node", "delete", "n1")
	if code, _, _ := c.run("node", "show", "n1"); code != 2 {
		t.Fatalf("deleted node still shown")
	}
}

func TestImportIronicAndBifrostLists(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	ironic := filepath.Join(dir, "nodes.json")
	os.WriteFile(ironic, []byte(`[{"name":"a","driver":"ilo","driver_info":{"ilo_address":"10.0.0.1","ilo_username":"u","ilo_password":"`+sentinel+`","client_port":443},
		"properties":{"cpus":4},"ports":[{"address":"52:54:00:00:00:01"}]}]`), 0o644)
	bifrost := filepath.Join(dir, "bifrost.yaml")
	os.WriteFile(bifrost, []byte("b:\n  driver: agent_ilo\n  driver_info:\n    ilo_address: 10.0.0.2\n    ilo_username: u\n    ilo_password: p4ssword\n  nics:\n    - mac: 52:54:00:00:00:02\n"), 0o644)
	c.must("node", "import", ironic)
	c.must("node", "import", bifrost)
	out := c.must("node", "list", "--json")
	var nodes []map[string]any
	json.Unmarshal([]byte(out), &nodes)
	if len(nodes) != 2 || nodes[1]["ports"].([]any)[0].(map[string]any)["address"] != "52:54:00:00:00:02" {
		t.Fatalf("import: %s", out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"name":"c","driver":"agent_ilo","driver_info":{"ilo_address":"x"}}]`), 0o644)
	if code, _, e := c.run("node", "import", bad); code != 2 || !strings.Contains(e, "entry 1 (c)") {
		t.Fatalf("bad import: %d %s", code, e)
	}
	if strings.Contains(c.allOut.String(), sentinel) {
		t.Fatal("sentinel leaked")
	}
}

// TestSecretNeverLeaks: scripts that print, log and raise errors containing
// the password leave no trace of it in stdout, stderr, logs or the database.
func TestSecretNeverLeaks(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	dir := t.TempDir()
	scripts := map[string]string{
		"print.lua": `print(node.driver_info.ilo_password) print(node.driver_info)`,
		"log.lua":   `run.log("error", "pw=" .. node.driver_info.ilo_password, {pw = node.driver_info.ilo_password, di = node.driver_info})`,
		"error.lua": `error("cannot log in with " .. node.driver_info.ilo_password)`,
		"step.lua":  `run.step("x", function() error({code = "login_failed", message = node.driver_info.ilo_password}) end)`,
		"set.lua":   `node:set_last_error("bad " .. node.driver_info.ilo_password) node:set_driver_info("ilo_change_password", node.driver_info.ilo_password .. "2")`,
	}
	for name, src := range scripts {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(src), 0o644)
		c.run("run", p, "--node", "n1", "--log-level", "debug")
		c.run("run", p, "--node", "n1", "--json", "--log-format", "json")
	}
	c.run("run", "hello", "--node", "n1", "--param", "admin_password="+sentinel)
	c.must("runs", "list")
	c.must("runs", "list", "--json")
	for i := 1; i <= 12; i++ {
		c.run("runs", "show", itoa(i))
		c.run("runs", "show", itoa(i), "--json")
		c.run("runs", "log", itoa(i))
		c.run("runs", "log", itoa(i), "--json")
	}
	c.must("node", "show", "n1")
	c.must("node", "show", "n1", "--json")
	c.must("node", "list", "--json")
	c.must("config", "show")
	if bytes.Contains(c.allOut.Bytes(), []byte(sentinel)) {
		t.Fatalf("sentinel leaked in CLI output:\n%s", c.allOut.String())
	}
	if !bytes.Contains(c.allOut.Bytes(), []byte("******")) {
		t.Fatal("expected masked values in output")
	}
	err := filepath.Walk(c.state, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, []byte(sentinel)) {
			t.Errorf("%s contains the sentinel", p)
		}
		if strings.HasSuffix(p, ".db") && info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The password is still usable by scripts (decrypted in memory).
	p := filepath.Join(dir, "check.lua")
	os.WriteFile(p, []byte(`assert(node.driver_info.ilo_password == "`+sentinel+`")`), 0o644)
	c.must("run", p, "--node", "n1")
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestTimeoutEndsRunAndUnlocks(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	p := filepath.Join(t.TempDir(), "spin.lua")
	os.WriteFile(p, []byte("while true do end"), 0o644)
	start := time.Now()
	code, out, _ := c.run("run", p, "--node", "n1", "--timeout", "2s", "--json")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
	if code != 1 || !strings.Contains(out, `"status": "timed_out"`) {
		t.Fatalf("exit %d: %s", code, out)
	}
	var n map[string]any
	json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n)
	if _, locked := n["reservation"]; locked {
		t.Fatalf("node still locked: %v", n)
	}
}

func TestCorruptAndForeignDatabase(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(c.state, "lightsout")
	os.MkdirAll(dir, 0o700)
	db := filepath.Join(dir, "lightsout.db")
	junk := []byte("this is not a database at all, just some text that must survive\n")
	os.WriteFile(db, junk, 0o600)
	code, _, e := c.run("node", "list")
	if code != 2 || !strings.Contains(e, "not a SQLite database") {
		t.Fatalf("corrupt db: exit %d %s", code, e)
	}
	if got, _ := os.ReadFile(db); !bytes.Equal(got, junk) {
		t.Fatal("corrupt database file was modified")
	}
	// A foreign SQLite database is refused and left alone.
	os.Remove(db)
	if err := exec.Command("python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); c.commit()", db).Run(); err != nil {
		t.Skip("python3 sqlite3 unavailable")
	}
	before, _ := os.ReadFile(db)
	code, _, e = c.run("node", "list")
	if code != 2 || !strings.Contains(e, "another application") {
		t.Fatalf("foreign db: exit %d %s", code, e)
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Fatal("foreign database was modified")
	}
}

func TestUnreadableConfig(t *testing.T) {
	c := newCLI(t)
	code, _, e := c.run("--config", filepath.Join(t.TempDir(), "missing.conf"), "node", "list")
	if code != 2 || !strings.Contains(e, "missing.conf") {
		t.Fatalf("exit %d %s", code, e)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("[ilo]\nclient_timeout = soon\n[ilo]\nbogus_option = 1\n"), 0o644)
	code, _, e = c.run("--config", bad, "node", "list")
	if code != 2 || !strings.Contains(e, "client_timeout") {
		t.Fatalf("exit %d %s", code, e)
	}
	good := filepath.Join(t.TempDir(), "good.conf")
	os.WriteFile(good, []byte("[ilo]\nclient_timeout = 30\nbogus_option = 1\n[swift]\npassword = "+sentinel+"\n"), 0o644)
	code, out, e := c.run("--config", good, "config", "show")
	if code != 0 || !strings.Contains(e, "good.conf:3") || !strings.Contains(e, "bogus_option") ||
		!strings.Contains(out, "good.conf:2") || strings.Contains(out+e, sentinel) {
		t.Fatalf("config show: exit %d\n%s\n%s", code, out, e)
	}
}

// TestKill9MarksRunInterrupted kills a real lightsout process mid-run; the
// next command shows the run interrupted and the node unlocked.
func TestKill9MarksRunInterrupted(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	bin := filepath.Join(t.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	script := filepath.Join(t.TempDir(), "spin.lua")
	// the floppy lands in the run's work directory, which the dead process
	// cannot remove: the next process does
	os.WriteFile(script, []byte(`require("image").floppy("p.img", {a = "b"})
run.step("spin", function() while true do end end)`), 0o644)
	cmd := exec.Command(bin, "run", script, "--node", "n1")
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+c.state)
	var childOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Poll (with a pause, so the poller does not starve the child of the
	// database) until the run is recorded as running.
	deadline := time.After(30 * time.Second)
	for {
		_, out, _ := c.run("runs", "list", "--status", "running", "--json")
		if strings.Contains(out, `"status": "running"`) && fileExists(filepath.Join(c.state, "lightsout", "work", "1", "p.img")) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("lightsout run exited before it was killed: %v\n%s", err, childOut.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("run never appeared as running\n%s", childOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	out := c.must("runs", "list", "--json")
	var runs []map[string]any
	json.Unmarshal([]byte(out), &runs)
	if len(runs) != 1 || runs[0]["status"] != "interrupted" {
		t.Fatalf("runs after kill -9: %s", out)
	}
	var n map[string]any
	json.Unmarshal([]byte(c.must("node", "show", "n1", "--json")), &n)
	if _, locked := n["reservation"]; locked {
		t.Fatalf("node still locked: %v", n)
	}
	if fileExists(filepath.Join(c.state, "lightsout", "work", "1")) {
		t.Fatal("the killed run's work directory was left behind")
	}
	c.must("run", "hello", "--node", "n1")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestSiteOverrideListedAndRun(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "hello.lua"), []byte(`print("SITE-HELLO")`), 0o644)
	out := c.must("--scripts", site, "scripts", "list")
	if !regexpLine(out, "hello", "site (overrides bundled)") {
		t.Fatalf("scripts list:\n%s", out)
	}
	if out := c.must("--scripts", site, "run", "hello", "--node", "n1"); !strings.Contains(out, "SITE-HELLO") {
		t.Fatalf("site script did not run: %s", out)
	}
	exp := t.TempDir()
	c.must("scripts", "export", exp)
	if _, err := os.Stat(filepath.Join(exp, "hello.lua")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(exp, "types", "lightsout.lua")); err != nil {
		t.Fatal(err)
	}
}

func regexpLine(out, name, origin string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == name && strings.Contains(l, origin) {
			return true
		}
	}
	return false
}

func TestManyNodesParallelSummary(t *testing.T) {
	c := newCLI(t)
	for _, n := range []string{"a", "b", "c"} {
		c.createNode(n)
	}
	p := filepath.Join(t.TempDir(), "s.lua")
	os.WriteFile(p, []byte(`if node.name == "b" then error("b fails") end`), 0o644)
	code, out, _ := c.run("run", p, "--all", "--parallel", "2")
	if code != 1 || strings.Count(out, "succeeded") != 2 || !strings.Contains(out, "b fails") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestSecondSignalExitsAtOnce: the first SIGINT cancels the run and starts
// its failure path (here one that would take a minute); a second SIGINT
// ends the process at once with status 130, and the next command finds
// the run interrupted and the node unlocked.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	c := newCLI(t)
	c.createNode("n1")
	bin := filepath.Join(t.TempDir(), "lightsout")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	script := filepath.Join(t.TempDir(), "slow_failure.lua")
	os.WriteFile(script, []byte(`run.on_abort(function() run.step("slow failure path", function() run.sleep(60) end) end)
run.step("work", function() run.sleep(3600) end)`), 0o644)
	cmd := exec.Command(bin, "run", script, "--node", "n1")
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+c.state)
	var childOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitStep := func(step string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			_, out, _ := c.run("runs", "list", "--json")
			var runs []struct{ ID int64 }
			if json.Unmarshal([]byte(out), &runs) == nil && len(runs) == 1 {
				if _, show, _ := c.run("runs", "show", itoa(int(runs[0].ID))); strings.Contains(show, step) {
					return
				}
			}
			select {
			case err := <-exited:
				t.Fatalf("lightsout exited before %q: %v\n%s", step, err, childOut.String())
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("step %q never started\n%s", step, childOut.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitStep("work")
	cmd.Process.Signal(syscall.SIGINT)
	waitStep("slow failure path")
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("after the second signal: %v\n%s", err, childOut.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the second signal did not end the process\n%s", childOut.String())
	}
	if !strings.Contains(childOut.String(), "exiting now") {
		t.Errorf("no notice of the immediate exit:\n%s", childOut.String())
	}
	out := c.must("runs", "list", "--json")
	if !strings.Contains(out, `"status": "interrupted"`) {
		t.Fatalf("runs after the second signal: %s", out)
	}
	c.must("run", "hello", "--node", "n1")
}
