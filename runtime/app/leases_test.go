package app_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestStoppedProcessLosesItsLeases: with a PostgreSQL store, a process
// stopped (SIGSTOP) or killed (SIGKILL) in the middle of a run loses its
// node lease once its heartbeat is older than [conductor]
// heartbeat_timeout: another, already running, process interrupts its run
// and releases the node. A stopped process that resumes (SIGCONT) is
// fenced: its run stays interrupted, the node stays free.
func TestStoppedProcessLosesItsLeases(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) { testLostLeases(t, sig) })
	}
}

func testLostLeases(t *testing.T, sig syscall.Signal) {
	url := testenv.Postgres(t)
	state := t.TempDir()
	t.Setenv("LIGHTSOUT_CONFIG", "")
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "long.lua"), []byte(`run.step("wait", function() run.sleep(60) end)`), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "[database]\nconnection = " + url + "\n\n[conductor]\nheartbeat_timeout = 2\nheartbeat_interval = 1\n\n" +
		"[lightsout]\nstate_dir = " + state + "\nscripts_path = " + site + "\n"
	if err := os.WriteFile(filepath.Join(state, "lightsout.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := openState(ctx, state) // the process that takes over
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateNode(ctx, nodeSpec("n1")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCLIHelperProcess$")
	cmd.Env = append(os.Environ(), cliHelperEnv+"=sleep "+state+" n1 long")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	node := func() *store.Node {
		n, err := b.Store.GetNode(ctx, "n1")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil(t, 30*time.Second, "the helper's run to lease n1", func() bool { return node().Lease != nil })
	leased := node()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the lease to be taken over", func() bool { return node().Reservation == 0 })
	run, err := b.Store.GetRun(ctx, leased.Reservation)
	if err != nil || run.Status != store.StatusInterrupted || !strings.Contains(run.Error, "stopped heartbeating") {
		t.Fatalf("the run of the %s process: %+v %v", sig, run, err)
	}
	if sig == syscall.SIGKILL {
		_ = cmd.Wait()
		return
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	t.Logf("resumed process: %v: %s", err, strings.TrimSpace(out.String()))
	if !strings.Contains(out.String(), "lost its leases") {
		t.Errorf("the resumed process was not told it was fenced:\n%s", out.String())
	}
	if run, _ := b.Store.GetRun(ctx, leased.Reservation); run.Status != store.StatusInterrupted {
		t.Errorf("the resumed process overwrote its interrupted run: %s", run.Status)
	}
	if n := node(); n.Reservation != 0 || n.Lease != nil {
		t.Errorf("n1 after the resumed process ended: reservation %d lease %+v", n.Reservation, n.Lease)
	}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
