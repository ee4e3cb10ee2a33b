package main

import (
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/daemon"
	"github.com/lightsout/lightsout/runtime/watch"
)

func newServeCmd(g *globals) *cobra.Command {
	var f watchFlags
	var dir, listen string
	cmd := &cobra.Command{
		Use:   "serve [--watch DIR]",
		Short: "Run the daemon: watch folder, /healthz and Prometheus /metrics",
		Long: `Run lightsout as a long-lived service: the watch folder (--watch or [lightsout] watch_dir,
see "lightsout watch"), and /healthz and /metrics on --listen ([lightsout] metrics_address).
SIGTERM stops claiming jobs and gives in-flight runs --grace to finish, then cancels
them (their jobs are re-queued); a second SIGTERM cancels at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			m := daemon.NewMetrics()
			a, err := app.Open(ctx, app.Options{ConfigPath: g.configPath, ScriptDirs: g.scriptDirs, StateDir: g.stateDir,
				LogLevel: g.logLevel, LogFormat: g.resolvedLogFormat(), Stdout: g.stdout, Stderr: g.stderr, OnEvent: m.OnEvent})
			if err != nil {
				return err
			}
			defer a.Close()
			if dir == "" {
				dir, _ = a.Config.Get("lightsout", "watch_dir")
			}
			var wo *watch.Options
			if dir != "" {
				o := f.options(dir)
				wo = &o
			}
			services := []daemon.Service{daemon.AgentAPI(a), daemon.Publisher(a), daemon.Sensors(a, m), daemon.EventPruner(a), daemon.PXEBoot(a)}
			d, err := daemon.New(daemon.Options{App: a, Metrics: m, Addr: listen, Watch: wo, Services: services})
			if err != nil {
				return &app.ConfigError{Err: err}
			}
			stop := abortOnSecondSignal(ctx, d.Abort)
			defer stop()
			return d.Serve(ctx)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&dir, "watch", "", "watch folder (default [lightsout] watch_dir; none when unset)")
	fl.StringVar(&listen, "listen", "", "address of /healthz and /metrics (default [lightsout] metrics_address, 127.0.0.1:9180)")
	return cmd
}
