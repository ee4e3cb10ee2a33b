package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/watch"
)

// watchFlags are shared by `watch` and `serve`.
type watchFlags struct {
	parallel    int
	maxAttempts int
	poll        time.Duration
	settle      time.Duration
	grace       time.Duration
	allowLua    bool
}

func (f *watchFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.parallel, "parallel", watch.DefaultParallel, "jobs running at once (each job runs its nodes with its own \"parallel\")")
	fl.IntVar(&f.maxAttempts, "max-attempts", watch.DefaultMaxAttempts, "claims of an interrupted job before it is failed")
	fl.DurationVar(&f.poll, "poll", 0, "poll incoming/ at this interval instead of inotify (automatic on NFS/SMB/FUSE)")
	fl.DurationVar(&f.settle, "settle", watch.DefaultSettle, "claim a file only once it has not changed for this long")
	fl.DurationVar(&f.grace, "grace", 5*time.Minute, "on SIGTERM, time in-flight runs get to finish before they are cancelled and re-queued")
	fl.BoolVar(&f.allowLua, "allow-lua-jobs", false, "accept .lua files dropped as jobs and .lua paths as \"script\" (runs arbitrary code)")
}

func (f *watchFlags) options(dir string) watch.Options {
	settle := f.settle
	if settle == 0 {
		settle = -1 // --settle 0: claim at once
	}
	return watch.Options{Dir: dir, Parallel: f.parallel, MaxAttempts: f.maxAttempts, Poll: f.poll, Settle: settle,
		Grace: f.grace, AllowLua: f.allowLua}
}

func (f *watchFlags) check() error {
	switch {
	case f.parallel < 1:
		return usage("--parallel %d: must be at least 1", f.parallel)
	case f.maxAttempts < 1:
		return usage("--max-attempts %d: must be at least 1", f.maxAttempts)
	case f.poll < 0 || f.settle < 0 || f.grace < 0:
		return usage("--poll, --settle and --grace must not be negative")
	}
	return nil
}

// abortOnSecondSignal calls abort when SIGINT/SIGTERM arrives after ctx
// (cancelled by the first one) is done.
func abortOnSecondSignal(ctx context.Context, abort func()) (stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		// The first signal may still be queued on ch: skip it.
		select {
		case <-ch:
		default:
		}
		select {
		case <-done:
		case <-ch:
			abort()
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

func newWatchCmd(g *globals) *cobra.Command {
	var f watchFlags
	var once bool
	cmd := &cobra.Command{
		Use:   "watch DIR",
		Short: "Run the jobs dropped into DIR/incoming (see docs/watch-folder.md)",
		Long: `Watch a spool folder: DIR/incoming receives job files (.json, .yaml, .yml) written to a
temporary name (dotfile, *.tmp or *.part) and renamed; each job is claimed into
DIR/processing, runs, and lands in DIR/done or DIR/failed next to <name>.result.json.
Jobs survive crashes: at start-up interrupted jobs are re-queued (at most
--max-attempts claims). SIGTERM stops claiming and gives in-flight runs --grace to
finish; a second SIGTERM cancels them at once (their jobs are re-queued).
For the daemon with /metrics and /healthz, use "lightsout serve".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			o := f.options(args[0])
			o.Once = once
			w, err := watch.New(a, o)
			if err != nil {
				return &app.ConfigError{Err: err}
			}
			stop := abortOnSecondSignal(cmd.Context(), w.Abort)
			defer stop()
			return w.Run(cmd.Context())
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&once, "once", false, "process the jobs present, then exit (for cron)")
	return cmd
}
