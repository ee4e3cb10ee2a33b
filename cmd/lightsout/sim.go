package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lightsout/lightsout/sim"
	"github.com/lightsout/lightsout/sim/qemu"
	"github.com/lightsout/lightsout/sim/ramdisk"
	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/runtime/app"
)

// newSimCmd builds `lightsout sim`: a fleet of simulated iLOs on 127.0.0.1.
func newSimCmd() *cobra.Command {
	var (
		nodes, inventory, stateDir, dir, adminAddr, deployISO, errorKinds, username, hardware string
		machine, qemuAccel, pxeServer                                                         string
		qemuMemory, qemuCPUs                                                                  int
		qemuDiskSize                                                                          int64
		faults, captures, qemuTaps                                                            []string
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
tried against a real machine's answers.

--machine qemu backs every server (or, with --machine qemu=gen10-0,gen8-0, the
named ones) with a real qemu VM, like sushy-tools' libvirt driver: power on
starts qemu with the virtual media the iLO has inserted (fetched from their
URLs; http://10.0.2.2:PORT/ is the host's 127.0.0.1:PORT, as the VM sees it),
the one-time or persistent boot device, SeaBIOS (legacy) or OVMF (UEFI, secure
boot with Microsoft keys when the iLO turns it on), a persistent qcow2 disk and
a NIC on qemu user networking whose guest port 9999 is forwarded from
127.0.0.1:<port>; the inventory's driver_info.kernel_append_params carries
console=ttyS0 and that address for the agent. The serial console is the
node's SOL console (lightsout console NODE) and DIR/qemu/NODE/console.log.
--qemu-tap gen8-0=tap0 puts a server's NIC on an existing tap device instead
(no forwards: the guest gets its address from the DHCP server on the tap's
network, e.g. dnsmasq for a pxe_ilo deploy; run the simulator in the network
namespace holding the tap; docs/pxe.md).
KVM when a probe guest reaches long mode under it (a /dev/kvm
that opens is not enough: nested hypervisors may hang), else TCG (slow: a
minute per boot).`,
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
			// Servers booted from virtual media run the emulated IPA ramdisk,
			// or (--machine qemu) a qemu VM.
			rd := ramdisk.New(ramdisk.Options{HeartbeatInterval: heartbeat, WorkDir: dir, PXEServer: pxeServer})
			defer rd.Close()
			cfg.Options.BootHook = rd.Hook()
			onStart := []func(*sim.Sim){rd.UseSim}
			if machine != "" {
				servers, err := parseMachine(machine, specs, len(captures) > 0)
				if err != nil {
					return &usageError{err}
				}
				qdir := "" // a temporary directory unless a state dir keeps the disks
				if d := dir; d != "" {
					qdir = filepath.Join(d, "qemu")
				} else if stateDir != "" {
					qdir = filepath.Join(stateDir, "qemu")
				}
				taps, err := parseTaps(qemuTaps)
				if err != nil {
					return &usageError{err}
				}
				qb, err := qemu.New(qemu.Options{Dir: qdir, Memory: qemuMemory, CPUs: qemuCPUs, DiskSize: qemuDiskSize,
					Accel: qemuAccel, Servers: servers, Taps: taps,
					Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
				if err != nil {
					return &usageError{err}
				}
				defer qb.Close() // after the simulator (RunCLI closes it): its boots stop their VMs
				qb.Attach(&cfg.Options)
				onStart = append(onStart, qb.UseSim)
				who := "every server"
				if len(servers) > 0 {
					who = strings.Join(servers, ", ")
				}
				fmt.Fprintf(cmd.OutOrStdout(), "qemu machines: %s (%s, %d MiB, state in %s)\n", who, qb.Accel(), qemuMemory, qb.Dir())
				if why := qb.AccelFallback(); why != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "qemu: TCG, not KVM: %s\n", why)
				}
			}
			cfg.OnStart = func(s *sim.Sim) {
				for _, f := range onStart {
					f(s)
				}
			}
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
	fl.StringVar(&machine, "machine", "", "back servers with real machines: qemu (every server) or qemu=gen10-0,gen8-0 (those); default: the emulated ramdisk")
	fl.IntVar(&qemuMemory, "qemu-memory", 512, "memory of each qemu VM in MiB (UEFI needs 384 or more)")
	fl.IntVar(&qemuCPUs, "qemu-cpus", 2, "CPUs of each qemu VM (the agent downloads, checksums and writes in parallel)")
	fl.StringVar(&qemuAccel, "qemu-accel", "auto", "qemu accelerator: auto (KVM when a probe guest runs under it, else TCG), kvm or tcg")
	fl.Int64Var(&qemuDiskSize, "qemu-disk-size", 4<<30, "size in bytes of each qemu VM's qcow2 disk (sparse; kept in the state dir)")
	fl.StringVar(&pxeServer, "pxe-server", "", "HTTP boot server over [pxe] tftp_root (lightsout serve's [pxe] http_address\n"+
		"with [deploy] http_root = tftp_root) the emulated ramdisk's network boots fetch the PXE config from")
	fl.DurationVar(&heartbeat, "heartbeat-interval", 2*time.Second, "heartbeat interval of the emulated IPA ramdisk")
	fl.DurationVar(&iloReset, "ilo-reset-time", 2*time.Second, "how long an iLO is unreachable after reset_ilo")
	fl.DurationVar(&latency, "latency", 0, "fault: latency added to every answer (all servers)")
	fl.Float64Var(&errorRate, "error-rate", 0, "fault: probability 0..1 that a request fails (all servers)")
	fl.StringVar(&errorKinds, "error-kinds", "", "fault: failures to pick from: 500,503,reset (default all)")
	fl.BoolVar(&hang, "hang", false, "fault: every request hangs (all servers)")
	fl.BoolVar(&profile, "latency-profile", false, "charge each generation's latency profile: TLS handshake, login, GET, PATCH/POST and RIBCL costs of a real iLO (see sim.DefaultLatencyProfile)")
	fl.IntVar(&busy, "busy", 0, "fault: answer the next N state changes with the iLO busy error (per server)")
	fl.IntVar(&sessionLimit, "session-limit", 0, "fault: max concurrent Redfish sessions per server (0: unlimited)")
	fl.StringArrayVar(&qemuTaps, "qemu-tap", nil, "with --machine qemu: NAME=TAP puts server NAME's NIC on the existing tap device TAP instead of user networking (repeatable)")
	fl.StringArrayVar(&faults, "fault", nil, "per-server fault NAME:latency=2s,error-rate=0.5,error-kinds=503+reset,hang,busy=3,session-limit=2,profile (repeatable)")
	return cmd
}

// parseMachine reads --machine: "qemu" (every server: nil) or
// "qemu=NAME,NAME" (those, which must be among the requested servers unless
// captures add more).
func parseMachine(v string, specs []sim.NodeSpec, captures bool) ([]string, error) {
	kind, list, _ := strings.Cut(strings.TrimSpace(v), "=")
	if kind != "qemu" {
		return nil, fmt.Errorf("--machine %q: give qemu or qemu=gen10-0,gen8-0", v)
	}
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	known := map[string]bool{}
	for _, sp := range specs {
		for i := 0; i < sp.Count; i++ {
			known[fmt.Sprintf("%s-%d", sp.Generation, i)] = true
		}
	}
	var out []string
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !known[n] && !captures {
			return nil, fmt.Errorf("--machine: no server %q among --nodes %s", n, sortedKeys(known))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--machine %q: name at least one server after qemu=", v)
	}
	return out, nil
}

// parseTaps reads --qemu-tap NAME=TAP (repeatable; nil when none).
func parseTaps(vs []string) (map[string]string, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	taps := map[string]string{}
	for _, v := range vs {
		name, tap, ok := strings.Cut(strings.TrimSpace(v), "=")
		name, tap = strings.TrimSpace(name), strings.TrimSpace(tap)
		if !ok || name == "" || tap == "" || strings.ContainsAny(tap, ",= /") || len(tap) > 15 {
			return nil, fmt.Errorf("--qemu-tap %q: give SERVER=TAP, e.g. gen8-0=tap0 (an interface name of at most 15 characters)", v)
		}
		taps[name] = tap
	}
	return taps, nil
}

func sortedKeys(m map[string]bool) string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
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
