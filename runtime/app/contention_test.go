package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/store"
)

// cliHelperEnv makes the test binary a CLI-like helper process.
const cliHelperEnv = "LIGHTSOUT_APP_HELPER"

// TestCLIHelperProcess is not a test: it is the body of the processes
// TestManyCLIProcessesNeverLocked starts. Each iteration is what one CLI
// command does: app.Open (config, key, store, interrupted-run recovery),
// one command, Close.
//
//	run STATE NODE N: N times `lightsout run hello --node NODE`
//	list STATE STOP: `lightsout runs list --limit 50` until the file STOP exists
func TestCLIHelperProcess(t *testing.T) {
	args := strings.Fields(os.Getenv(cliHelperEnv))
	if len(args) == 0 {
		t.Skip("helper process only")
	}
	if err := cliHelper(args); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func openState(ctx context.Context, state string) (*app.App, error) {
	return app.Open(ctx, app.Options{StateDir: state, ConfigPath: filepath.Join(state, "lightsout.conf"),
		Stdout: io.Discard, Stderr: os.Stderr, LogLevel: "error"})
}

func cliHelper(args []string) error {
	ctx := context.Background()
	state := args[1]
	switch args[0] {
	case "run":
		n, _ := strconv.Atoi(args[3])
		var worst time.Duration
		for i := 0; i < n; i++ {
			began := time.Now()
			a, err := openState(ctx, state)
			if err != nil {
				return err
			}
			res, err := a.Engine.Run(ctx, runtime.RunRequest{Script: "hello", Node: args[2]})
			if err != nil {
				return err
			}
			if !res.Succeeded() {
				return fmt.Errorf("run %d: %s %s", res.RunID, res.Status, res.Error)
			}
			if err := a.Close(); err != nil {
				return err
			}
			worst = max(worst, time.Since(began))
		}
		fmt.Println(worst.Milliseconds())
		return nil
	case "sleep": // sleep STATE NODE SCRIPT: one long run, its outcome printed
		a, err := openState(ctx, state)
		if err != nil {
			return err
		}
		res, err := a.Engine.Run(ctx, runtime.RunRequest{Script: args[3], Node: args[2]})
		fmt.Printf("run %d %s err=%v\n", res.RunID, res.Status, err)
		return a.Close()
	case "list":
		loops := 0
		for {
			if _, err := os.Stat(args[2]); err == nil {
				fmt.Printf("loops=%d\n", loops)
				return nil
			}
			a, err := openState(ctx, state)
			if err != nil {
				return err
			}
			if _, err := a.Store.ListRuns(ctx, store.RunFilter{Limit: 50}); err != nil {
				return err
			}
			if err := a.Close(); err != nil {
				return err
			}
			loops++
		}
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// TestManyCLIProcessesNeverLocked: 20 processes running playbooks as CLI
// commands do (each command opens the app, runs, closes) and one running
// `runs list` in a tight loop, against one state dir: none sees "database
// is locked", every run succeeds.
func TestManyCLIProcessesNeverLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 21 processes")
	}
	const procs, each = 20, 5
	state := t.TempDir()
	t.Setenv("LIGHTSOUT_CONFIG", "")
	t.Setenv("LIGHTSOUT_SECRET_KEY", "")
	if err := os.WriteFile(filepath.Join(state, "lightsout.conf"), []byte("[lightsout]\nstate_dir = "+state+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := openState(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < procs; i++ {
		if _, err := a.CreateNode(ctx, nodeSpec(fmt.Sprintf("n%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	stop := filepath.Join(state, "stop")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := func(args string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCLIHelperProcess$")
		cmd.Env = append(os.Environ(), cliHelperEnv+"="+args)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	lister, listerOut := start("list " + state + " " + stop)
	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var ps []proc
	for i := 0; i < procs; i++ {
		cmd, out := start(fmt.Sprintf("run %s n%02d %d", state, i, each))
		ps = append(ps, proc{cmd, out})
	}
	began := time.Now()
	worst := 0
	for i, p := range ps {
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, p.out)
			continue
		}
		ms, _ := strconv.Atoi(strings.TrimSpace(p.out.String()))
		worst = max(worst, ms)
	}
	elapsed := time.Since(began)
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lister.Wait(); err != nil {
		t.Errorf("runs list loop: %v\n%s", err, listerOut)
	}
	t.Logf("%d processes x %d runs in %v, slowest command %d ms; runs list loop: %s", procs, each, elapsed.Round(time.Millisecond), worst, strings.TrimSpace(listerOut.String()))
	if strings.Contains(listerOut.String(), "loops=0") {
		t.Error("runs list never ran while the runs did")
	}
	a, err = openState(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	runs, err := a.Store.ListRuns(context.Background(), store.RunFilter{Status: store.StatusSucceeded})
	if err != nil || len(runs) != procs*each {
		t.Fatalf("%d succeeded runs, want %d (%v)", len(runs), procs*each, err)
	}
}
