package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// TestConsoleUnderPTY runs `lightsout console NODE --log FILE` in a tmux
// pane (a real terminal): the server's serial output shows, what is typed is
// echoed and answered, ~. leaves, and the log file has the session.
func TestConsoleUnderPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lightsout and drives it in tmux")
	}
	testenv.RequireTools(t, "tmux")
	c := newCLI(t)
	s, err := sim.New(sim.Options{Nodes: []sim.NodeSpec{{Generation: sim.Gen10, Count: 1}}, DiskSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inv := filepath.Join(t.TempDir(), "fleet.json")
	if err := s.WriteInventory(inv); err != nil {
		t.Fatal(err)
	}
	c.must("node", "import", inv)
	srv := s.Server(0)
	srv.ConsoleWrite([]byte("ironic-python-agent: console test\r\n"))

	dir := t.TempDir()
	bin := filepath.Join(dir, "lightsout")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	logFile := filepath.Join(dir, "console.log")
	sock := fmt.Sprintf("lightsout-test-%d", os.Getpid())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	shell := fmt.Sprintf("env XDG_STATE_HOME=%s LIGHTSOUT_CONFIG= LIGHTSOUT_SECRET_KEY= %s console %s --log %s; echo CONSOLE-EXIT=$?; sleep 30",
		c.state, bin, srv.Name(), logFile)
	if out, err := tmux("new-session", "-d", "-s", "con", "-x", "120", "-y", "30", shell); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	defer tmux("kill-server") // only this test's private tmux server (-L)
	screen := func() string { out, _ := tmux("capture-pane", "-p", "-t", "con"); return out }
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(screen(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%q not on the screen:\n%s", want, screen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("ironic-python-agent: console test")
	tmux("send-keys", "-t", "con", "hello", "Enter")
	wait("you typed: hello")
	tmux("send-keys", "-t", "con", "~.")
	wait("CONSOLE-EXIT=0")
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), "you typed: hello") {
		t.Fatalf("log: %v %q", err, b)
	}
	if strings.Contains(screen(), srv.Password()) {
		t.Fatal("password on the screen")
	}
}
