package store_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/store/storetest"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestPostgresRestartUnderLoad: the server restarts while workers run a
// run's store calls in a loop (record the run, lease its node, change the
// node as the run, finish, unlock): none fails, the calls that met the
// restart are retried once the server is back (store.DB.retry).
func TestPostgresRestartUnderLoad(t *testing.T) {
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := store.OpenURL(ctx, url, storetest.Key(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.RegisterConductor(ctx, "h", os.Getpid(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	cycle := func(node string) error {
		r := &store.Run{Script: "x", Host: "h", PID: os.Getpid(), Conductor: c.ID, NodeUUID: "uuid-" + node, NodeName: node}
		if err := s.CreateRun(ctx, r); err != nil {
			return err
		}
		if _, err := s.AcquireLease(ctx, "uuid-"+node, r.ID, c.ID, time.Minute, time.Now()); err != nil {
			return err
		}
		if _, err := s.UpdateNodeAs(ctx, r.ID, node, func(n *store.Node) error {
			n.LastError = fmt.Sprint("run ", r.ID)
			return nil
		}); err != nil {
			return err
		}
		if err := s.FinishRun(ctx, r.ID, store.StatusSucceeded, ""); err != nil {
			return err
		}
		return s.UnlockNode(ctx, "uuid-"+node, r.ID)
	}
	var restarted sync.WaitGroup // each worker's first cycle begun after the restart
	restarted.Add(workers)
	stop := make(chan struct{})
	errs := make(chan error, workers)
	var started sync.WaitGroup // each worker finished a cycle before the restart
	started.Add(workers)
	var mu sync.Mutex
	after := false
	for i := range workers {
		node := fmt.Sprint("n", i)
		if err := s.CreateNode(ctx, storetest.Node(node)); err != nil {
			t.Fatal(err)
		}
		go func() {
			first, counted := true, false
			for {
				mu.Lock()
				isAfter := after
				mu.Unlock()
				if err := cycle(node); err != nil {
					if first { // nobody waits on this worker any more
						started.Done()
					}
					if !counted {
						restarted.Done()
					}
					errs <- fmt.Errorf("worker %s: %w", node, err)
					return
				}
				if first {
					started.Done()
					first = false
				}
				if isAfter && !counted {
					restarted.Done()
					counted = true
				}
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
			}
		}()
	}
	started.Wait()
	testenv.RestartPostgres(t)
	mu.Lock()
	after = true
	mu.Unlock()
	waited := make(chan struct{})
	go func() { restarted.Wait(); close(waited) }()
	select {
	case <-waited:
	case err := <-errs:
		t.Fatalf("a store call failed across the restart: %v", err)
	case <-ctx.Done():
		t.Fatal("timed out waiting for every worker to run a cycle after the restart")
	}
	close(stop)
	for range workers {
		if err := <-errs; err != nil {
			t.Errorf("a store call failed across the restart: %v", err)
		}
	}
	runs, err := s.ListRuns(ctx, store.RunFilter{Status: store.StatusRunning})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Errorf("%d runs left running", len(runs))
	}
}
