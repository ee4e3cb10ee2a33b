package ipmi_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/sim/simtest"
)

// waitOut polls out (written by another goroutine or process) until it
// holds want, failing after d.
func waitOut(t *testing.T, out *testenv.SyncBuffer, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not seen in %q", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleTakesOverStaleSOL: an `ipmitool sol activate` killed with -9
// leaves the BMC's SOL payload active on its dead session (what a killed
// lightsout run leaves too); the next Console deactivates it and attaches,
// instead of failing with "payload already active on another session".
func TestConsoleTakesOverStaleSOL(t *testing.T) {
	testenv.RequireTools(t, "ipmitool")
	s := simtest.Start(t, "gen10=1")
	srv := s.Server(0)
	srv.PowerOn()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stale := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-C", "17", "-H", "127.0.0.1",
		"-p", fmt.Sprint(srv.IPMIPort()), "-U", srv.Username(), "-P", srv.Password(), "sol", "activate")
	staleOut := &testenv.SyncBuffer{}
	stale.Stdout, stale.Stderr = staleOut, staleOut
	staleIn, err := stale.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	waitOut(t, staleOut, "SOL Session operational", 20*time.Second)
	_ = stale.Process.Kill() // SIGKILL: no deactivation, no session close
	_ = stale.Wait()
	staleIn.Close()

	c := simClient(t, s, 0, nil)
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- c.Console(ctx, inR, out) }()
	// the server's console keeps printing, as a booting server does: a line
	// printed before the takeover went to the dead session and is lost
	seen := waitCh(out, "after the takeover")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case err := <-done:
			t.Fatalf("console ended before attaching: %v (output %q)", err, out.String())
		case <-seen:
			break wait
		case <-tick.C:
			srv.ConsoleWrite([]byte("after the takeover\r\n"))
		case <-deadline:
			t.Fatalf("console did not attach over the stale session: %q", out.String())
		}
	}
	inW.Write([]byte("~."))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitCh closes the returned channel once out holds want.
func waitCh(out *testenv.SyncBuffer, want string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !strings.Contains(out.String(), want) {
			time.Sleep(20 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}
