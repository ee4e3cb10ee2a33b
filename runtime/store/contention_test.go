package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/store/storetest"
)

// helperEnv makes the test binary a helper process (see TestHelperProcess).
const helperEnv = "LIGHTSOUT_STORE_HELPER"

// TestHelperProcess is not a test: it is the body of the processes
// TestManyProcessesNeverLocked starts (the test binary re-executed), each
// behaving like CLI commands: open the store, do one command, close.
//
//	writer DB N: N times: open, create a run, append events, update a node, finish the run, close
//	lister DB STOP: open, list the last 50 runs, close; again until the file STOP exists
func TestHelperProcess(t *testing.T) {
	args := strings.Fields(os.Getenv(helperEnv))
	if len(args) == 0 {
		t.Skip("helper process only")
	}
	err := helper(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helper(args []string) error {
	ctx := context.Background()
	db := args[1]
	switch args[0] {
	case "writer":
		n, _ := strconv.Atoi(args[2])
		var worst time.Duration
		for i := 0; i < n; i++ {
			began := time.Now()
			s, err := store.Open(ctx, db, storetest.Key(1))
			if err != nil {
				return err
			}
			r := &store.Run{Script: "deploy", NodeUUID: "uuid-a", NodeName: "a", Host: "h", PID: os.Getpid()}
			if err := s.CreateRun(ctx, r); err != nil {
				return err
			}
			if err := s.AppendEvents(ctx, []store.Event{{RunID: r.ID, Seq: 1, Time: time.Now(), Kind: store.EventLog, Name: "info"},
				{RunID: r.ID, Seq: 2, Time: time.Now(), Kind: store.EventStepEnd, Name: "s"}}); err != nil {
				return err
			}
			if _, err := s.UpdateNodeAs(ctx, store.Internal, "a", func(n *store.Node) error {
				c, _ := n.Properties["count"].(float64)
				n.Properties["count"] = c + 1
				return nil
			}); err != nil {
				return err
			}
			if err := s.FinishRun(ctx, r.ID, store.StatusSucceeded, ""); err != nil {
				return err
			}
			if err := s.Close(); err != nil {
				return err
			}
			worst = max(worst, time.Since(began))
		}
		fmt.Printf("%d\n", worst.Milliseconds())
		return nil
	case "lister":
		loops := 0
		for {
			if _, err := os.Stat(args[2]); err == nil {
				fmt.Printf("loops=%d\n", loops)
				return nil
			}
			s, err := store.Open(ctx, db, storetest.Key(1))
			if err != nil {
				return err
			}
			if _, err := s.ListRuns(ctx, store.RunFilter{Limit: 50}); err != nil {
				return err
			}
			if err := s.Close(); err != nil {
				return err
			}
			loops++
		}
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// TestManyProcessesNeverLocked: 20 processes writing (each opening the
// store again and again, as CLI commands do) while another lists runs in a
// tight open/list/close loop, all against one state dir: no process sees
// "database is locked", no write is lost.
func TestManyProcessesNeverLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 21 processes")
	}
	const writers, each = 20, 40
	dir := t.TempDir()
	db := filepath.Join(dir, "lightsout.db")
	ctx := context.Background()
	s, err := store.Open(ctx, db, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateNode(ctx, storetest.Node("a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stop := filepath.Join(dir, "stop")
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	start := func(args string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+args)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	lister, listerOut := start("lister " + db + " " + stop)
	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var ws []proc
	for i := 0; i < writers; i++ {
		cmd, out := start(fmt.Sprintf("writer %s %d", db, each))
		ws = append(ws, proc{cmd, out})
	}
	began := time.Now()
	worst := 0
	for i, p := range ws {
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, p.out)
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
		t.Errorf("lister: %v\n%s", err, listerOut)
	}
	t.Logf("%d writers x %d commands in %v, slowest command %d ms; lister: %s", writers, each, elapsed.Round(time.Millisecond), worst, strings.TrimSpace(listerOut.String()))
	if strings.Contains(listerOut.String(), "loops=0") {
		t.Error("the lister never listed while the writers ran")
	}
	s, err = store.Open(context.Background(), db, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.ListRuns(context.Background(), store.RunFilter{Status: store.StatusSucceeded})
	if err != nil || len(runs) != writers*each {
		t.Fatalf("%d succeeded runs, want %d (%v)", len(runs), writers*each, err)
	}
	n, _ := s.GetNode(context.Background(), "a")
	if n.Properties["count"] != float64(writers*each) {
		t.Fatalf("node counter %v, want %d (lost updates)", n.Properties["count"], writers*each)
	}
}
