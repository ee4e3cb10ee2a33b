//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim"
)

// openPTY opens a pseudo-terminal pair through /dev/ptmx: the terminal side
// (what lightsout writes to) and the controller side (what a person sees).
func openPTY(t *testing.T) (term, ctl *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ctl.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ctl.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("ptsname: %v", e)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close(); ctl.Close() })
	return term, ctl
}

// screen collects what the controller side of a pty receives.
func screen(ctl *os.File) *testenv.SyncBuffer {
	var b testenv.SyncBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ctl.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return &b
}

// TestTerminalLiveViewAndCompactLogs drives the CLI on a pseudo-terminal:
// a multi-node run shows the live view (a header counting runs, one line
// per running node with its run, step and last event) and the compact log
// lines, coloured unless NO_COLOR is set; --log-format text keeps the
// machine format; off a terminal the output is plain lines.
func TestTerminalLiveViewAndCompactLogs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noColor bool
		format  []string
		// the log line of gen10-0's run, as a person sees it
		logLine *regexp.Regexp
	}{
		{"colour", false, nil, regexp.MustCompile(`\d\d:\d\d:\d\d \x1b\[36mINFO \x1b\[0m gen10-0 +run \d+ +gen10-0 is power on  \x1b\[2mpower_state=\x1b\[0m"power on"`)},
		{"NO_COLOR", true, nil, regexp.MustCompile(`\d\d:\d\d:\d\d INFO  gen10-0 +run \d+ +gen10-0 is power on  power_state="power on"`)},
		{"text", true, []string{"--log-format", "text"}, regexp.MustCompile(`time=\S+ level=INFO msg="gen10-0 is power on" run=\d+ node=gen10-0 power_state="power on"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			s := simFleet(t, c, "gen8=1,gen10=1")
			t.Setenv("TERM", "xterm-256color")
			if tc.noColor {
				t.Setenv("NO_COLOR", "1")
			} else {
				t.Setenv("NO_COLOR", "") // empty counts as unset (no-color.org)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "hold.lua"), []byte(holdScript), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, srv := range s.Servers() {
				srv.Update(func(st *sim.State) { st.Power = "OFF" })
			}
			term, ctl := openPTY(t)
			seen := screen(ctl)
			done := make(chan int, 1)
			args := append(append([]string{}, tc.format...), "--scripts", dir, "run", "hold", "--all")
			go func() { done <- run(args, term, term) }()
			// the live view: both nodes running, their step and last event
			live := regexp.MustCompile(`\[0/2\] 2 running`)
			row := regexp.MustCompile(`gen10-0 +run \d+ +\d+s +(\x1b\[1m)?hold(\x1b\[0m)? +(→ ilo.get_host_power_status ok|INFO holding the node)`)
			waitFor(t, "the live view of two running nodes", func() bool {
				out := seen.String()
				return live.MatchString(out) && row.MatchString(out) && strings.Contains(out, "gen8-0")
			})
			for _, srv := range s.Servers() {
				srv.Update(func(st *sim.State) { st.Power = "ON" })
			}
			if code := <-done; code != 0 {
				t.Fatalf("exit %d:\n%q", code, seen.String())
			}
			waitFor(t, "the runs' ends above the live view", func() bool {
				return strings.Count(seen.String(), ": run ") >= 2 && strings.Contains(seen.String(), "[2/2]")
			})

			// a verb's compact log line
			done = make(chan int, 1)
			go func() {
				done <- run(append(append([]string{}, tc.format...), "node", "power", "on", "gen10-0"), term, term)
			}()
			if code := <-done; code != 0 {
				t.Fatalf("node power on: exit %d:\n%q", code, seen.String())
			}
			waitFor(t, "the log line "+tc.logLine.String(), func() bool { return tc.logLine.MatchString(seen.String()) })
			if tc.noColor && regexp.MustCompile(`\x1b\[3\dm`).MatchString(seen.String()) {
				t.Fatalf("colours with NO_COLOR set:\n%q", seen.String())
			}
			for _, srv := range s.Servers() {
				if strings.Contains(seen.String(), srv.Password()) {
					t.Fatal("an iLO password reached the terminal")
				}
			}
		})
	}

	// off a terminal: plain lines, the machine log format
	c := newCLI(t)
	s := simFleet(t, c, "gen8=1,gen10=1")
	_ = s
	code, out, errOut := c.run("node", "power", "on", "--all")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "\x1b[") {
		t.Fatalf("escape sequences off a terminal:\n%q", errOut)
	}
	for _, want := range []string{"gen10-0 (run ", "): power on", "[2/2] ", `level=INFO msg="gen10-0 is power on"`} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("plain output lacks %q:\n%s", want, errOut)
		}
	}
}
