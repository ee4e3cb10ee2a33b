package main

import (
	"fmt"
	"math"
	"os"
	"time"

	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/ramdisk"
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
)

// newSimCmd builds `lightsout sim`: a fleet of simulated iLOs on 127.0.0.1.
func newSimCmd() *cobra.Command {
	var (
		nodes, inventory, stateDir, dir, adminAddr, deployISO, errorKinds, username, hardware string
		faults, captures                                                                      []string
		latency, iloReset, heartbeat                                                          time.Duration
		errorRate                                                                             float64
		hang, profile                                                                         bool
		busy, sessionLimit                                                                    int
		diskSize                                                                              int64
	)
	cmd := &cobra.Command{
		Use:   "sim --nodes gen8=2,gen10=1 --inventory FILE",
		Short: "Run simulated iLOs (gen8..gen12, or captured trees) on 127.0.0.1 for tests and demos",
		Long: `sim emulates HPE iLOs, each on its own HTTPS port on 127.0.0.1, speaking RIBCL,
HP REST and Redfish as the generation does. It prints the CA and certificate
fingerprints, writes the inventory (node import format, ilo_verify_ca pointing at
the simulator's CA) once every listener is up, prints "ready" and runs until
interrupted. Passwords are random per server (or $LIGHTSOUT_SIM_PASSWORD) and
appear only in the inventory file.

--capture DIR replays a tree written by "lightsout capture" (or one of
../shared/fixtures/captures): the iLO answers from the tree, with the
simulator's state (power, boot override, virtual media, BIOS settings applied
at the next reset, secure boot, sessions) laid over it, so playbooks can be
tried against a real machine's answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkSimFlags(diskSize, heartbeat, iloReset, latency, errorRate, busy, sessionLimit); err != nil {
				return err
			}
			var specs []sim.NodeSpec
			var err error
			// With --capture, generated servers come only when --nodes is given.
			if len(captures) == 0 || cmd.Flags().Changed("nodes") {
				if specs, err = sim.ParseNodes(nodes); err != nil {
					return &usageError{err}
				}
			}
			f := sim.Faults{Latency: latency, ErrorRate: errorRate, Hang: hang, Busy: busy, SessionLimit: sessionLimit, Profile: profile}
			if errorKinds != "" {
				if f.ErrorKinds, err = sim.ParseErrorKinds(errorKinds); err != nil {
					return &usageError{fmt.Errorf("--error-kinds: %w", err)}
				}
			}
			per := map[string]sim.Faults{}
			for _, spec := range faults {
				name, pf, err := sim.ParseFaultSpec(spec)
				if err != nil {
					return &usageError{err}
				}
				per[name] = pf
			}
			var hwFn func(string, sim.Generation, int, *sim.Hardware)
			if hardware != "" {
				if hwFn, err = sim.LoadHardwareFile(hardware); err != nil {
					return &usageError{err}
				}
			}
			cfg := sim.CLIConfig{
				Options: sim.Options{
					Nodes: specs, Captures: captures, Dir: dir, StateDir: stateDir, Username: username,
					Password: os.Getenv("LIGHTSOUT_SIM_PASSWORD"), DiskSize: diskSize,
					Faults: f, ILOResetTime: iloReset, DeployISO: deployISO, Hardware: hwFn,
				},
				Inventory: inventory, AdminAddr: adminAddr, PerServer: per,
			}
			// Servers booted from virtual media run the emulated IPA ramdisk.
			rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: heartbeat, WorkDir: dir})
			defer rd.Close()
			cfg.Options.BootHook = rd.Hook()
			cfg.OnStart = func(s *sim.Sim) { rd.UseSim(s) }
			return sim.RunCLI(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&nodes, "nodes", "gen8=1,gen9=1,gen10=1,gen11=1,gen12=1", "servers per generation, e.g. gen8=2,gen9=1,gen10=2,gen11=1,gen12=1")
	fl.StringArrayVar(&captures, "capture", nil, "serve a captured Redfish tree (folder in the `lightsout capture` layout) as one more server, with power, boot, virtual media, BIOS, secure boot and sessions laid over it (repeatable; alone unless --nodes is given)")
	fl.StringVar(&inventory, "inventory", "", "write the fleet as a node import JSON file here")
	fl.StringVar(&stateDir, "state-dir", "", "keep state (power, boot, media, passwords, ports, CA) here across restarts")
	fl.StringVar(&dir, "dir", "", "directory for the CA file and virtual disks (default: the state dir, else a temporary dir)")
	fl.StringVar(&adminAddr, "admin", "127.0.0.1:0", "admin endpoint address (loopback only; empty disables)")
	fl.StringVar(&hardware, "hardware", "", `JSON inventory overrides by generation or server name, e.g. {"gen10": {"memory_mb": 262144}, "gen8-0": {"logical_drives_gb": []}}`)
	fl.StringVar(&deployISO, "deploy-iso", "", "driver_info.ilo_deploy_iso written into the inventory")
	fl.StringVar(&username, "username", "Administrator", "iLO administrator login")
	fl.Int64Var(&diskSize, "disk-size", 1<<30, "size in bytes of each server's sparse virtual disk")
	fl.DurationVar(&heartbeat, "heartbeat-interval", 2*time.Second, "heartbeat interval of the emulated IPA ramdisk")
	fl.DurationVar(&iloReset, "ilo-reset-time", 2*time.Second, "how long an iLO is unreachable after reset_ilo")
	fl.DurationVar(&latency, "latency", 0, "fault: latency added to every answer (all servers)")
	fl.Float64Var(&errorRate, "error-rate", 0, "fault: probability 0..1 that a request fails (all servers)")
	fl.StringVar(&errorKinds, "error-kinds", "", "fault: failures to pick from: 500,503,reset (default all)")
	fl.BoolVar(&hang, "hang", false, "fault: every request hangs (all servers)")
	fl.BoolVar(&profile, "latency-profile", false, "charge each generation's latency profile: TLS handshake, login, GET, PATCH/POST and RIBCL costs of a real iLO (see sim.DefaultLatencyProfile)")
	fl.IntVar(&busy, "busy", 0, "fault: answer the next N state changes with the iLO busy error (per server)")
	fl.IntVar(&sessionLimit, "session-limit", 0, "fault: max concurrent Redfish sessions per server (0: unlimited)")
	fl.StringArrayVar(&faults, "fault", nil, "per-server fault NAME:latency=2s,error-rate=0.5,error-kinds=503+reset,hang,busy=3,session-limit=2,profile (repeatable)")
	return cmd
}

// checkSimFlags validates the simulator's numeric flags.
func checkSimFlags(diskSize int64, heartbeat, iloReset, latency time.Duration, errorRate float64, busy, sessionLimit int) error {
	for _, err := range []error{
		app.CheckIntFlag("disk-size", diskSize, 1<<20, 1<<50, "bytes"),
		app.CheckDurationFlag("heartbeat-interval", heartbeat, time.Millisecond, time.Hour, ""),
		app.CheckDurationFlag("ilo-reset-time", iloReset, 0, time.Hour, ""),
		app.CheckDurationFlag("latency", latency, 0, time.Hour, ""),
		app.CheckIntFlag("busy", int64(busy), 0, math.MaxInt32, ""),
		app.CheckIntFlag("session-limit", int64(sessionLimit), 0, math.MaxInt32, "0: unlimited"),
	} {
		if err != nil {
			return err
		}
	}
	if !(errorRate >= 0 && errorRate <= 1) {
		return &app.ValidationError{Err: fmt.Errorf("--error-rate %g: must be a probability from 0 to 1", errorRate)}
	}
	return nil
}
