package simtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Child is a simulator served by a child process: this test binary run
// again with only one test selected, a test that serves the simulator
// (see [ServeChild]) when the environment the parent passes says so. A
// benchmark uses it so that its own peak RSS and heap are the client's
// alone.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// StartChild runs this test binary again with only the test named test
// (-test.run=^test$) and env added to its environment; the child's stderr
// is this process's. It does not wait for the child: call
// [Child.WaitReady]. The child is stopped at tb's cleanup.
func StartChild(tb testing.TB, test string, env ...string) *Child {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &Child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	tb.Cleanup(func() { c.Stop() })
	return c
}

// WaitReady waits until the child says "ready" ([ServeChild]); it fails
// tb, naming the child as what, when the child ends first.
func (c *Child) WaitReady(tb testing.TB, what string) {
	tb.Helper()
	for c.out.Scan() {
		if c.out.Text() == "ready" {
			return
		}
	}
	tb.Fatalf("%s ended before it was ready", what)
}

// Ask writes line to the child and returns the fields of the first line
// it answers with that has n fields, the first of them reply; it fails
// tb when the child ends first.
func (c *Child) Ask(tb testing.TB, line, reply string, n int) []string {
	tb.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		tb.Fatalf("simulator process: %v", err)
	}
	for c.out.Scan() {
		f := strings.Fields(c.out.Text())
		if len(f) == n && f[0] == reply {
			return f
		}
	}
	tb.Fatal("the simulator process ended")
	return nil
}

// Stop closes the child's stdin, waits for it to end and returns its peak
// RSS in MB (0 when it did not say, or when it was stopped already).
func (c *Child) Stop() float64 {
	if c.stdin == nil {
		return 0
	}
	c.stdin.Close()
	c.stdin = nil
	rss := 0.0
	for c.out.Scan() {
		if v, ok := strings.CutPrefix(c.out.Text(), "rss-mb "); ok {
			rss, _ = strconv.ParseFloat(v, 64)
		}
	}
	_ = c.cmd.Wait()
	return rss
}

// ServeChild is the child's side of [Child]: once the simulator serves,
// it says "ready" on stdout, hands each line read from stdin to answer
// (which may be nil) until stdin closes, then prints its peak RSS
// ("rss-mb MB") for [Child.Stop].
func ServeChild(answer func(line string)) {
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if answer != nil {
			answer(in.Text())
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("rss-mb %.1f\n", float64(ru.Maxrss)/1024)
}
