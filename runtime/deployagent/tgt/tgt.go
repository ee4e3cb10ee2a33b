// Package tgt runs a userspace iSCSI target (Linux SCSI target framework,
// Debian package "tgt": tgtd + tgtadm) exporting one block device or file
// as LUN 1 of one target, optionally with a CHAP account bound to it. It is
// what IPA's iscsi.start_iscsi_target does with tgt, used by the deploy
// agent (runtime/deployagent) and by the emulated ramdisk (sim/ramdisk).
//
// tgtd runs in the foreground as a child in its own process group
// (`tgtd -f --iscsi portal=ADDR:PORT -C N`), managed over its control
// socket /var/run/tgtd/socket.N. The CHAP password is handed to tgtadm on
// its argv (tgtadm has no other way) inside the ramdisk, never logged.
package tgt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config describes the target to export.
type Config struct {
	Addr       string // listen address, "0.0.0.0" (ramdisk) or "127.0.0.1" (tests)
	Port       int    // iSCSI port (3260)
	IQN        string
	Device     string // block device or file exported as LUN 1
	CHAPUser   string // optional incoming CHAP account
	CHAPSecret string
	// Control is tgtd's control socket number (-C); 0 derives it from Port.
	Control int
	// Tgtd, Tgtadm are the binaries (default "tgtd", "tgtadm" on PATH).
	Tgtd, Tgtadm string
	// Ready bounds the wait for tgtd's control socket (default 10 s).
	Ready time.Duration
}

// Target is a running tgtd exporting one LUN.
type Target struct {
	cfg  Config
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
	err  error
}

// lookup finds a tool on PATH, else in /usr/sbin (the deploy ramdisk's
// agent runs as PID 1, often without PATH; `lightsout image ramdisk
// --with-tgtd` puts tgtd there).
func lookup(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

// Available reports whether tgtd and tgtadm are on PATH.
func Available() bool {
	for _, n := range []string{"tgtd", "tgtadm"} {
		if _, err := os.Stat(lookup(n)); err != nil {
			return false
		}
	}
	return true
}

func (c *Config) defaults() {
	if c.Tgtd == "" {
		c.Tgtd = lookup("tgtd")
	}
	if c.Tgtadm == "" {
		c.Tgtadm = lookup("tgtadm")
	}
	if c.Control == 0 {
		c.Control = c.Port % 32768 // tgtd accepts 0..32767
	}
	if c.Ready == 0 {
		c.Ready = 10 * time.Second
	}
	if c.Addr == "" {
		c.Addr = "0.0.0.0"
	}
}

// Start starts tgtd and configures the target, LUN 1 and CHAP. On error
// nothing is left running.
func Start(ctx context.Context, cfg Config) (*Target, error) {
	cfg.defaults()
	switch {
	case cfg.IQN == "":
		return nil, errors.New("iscsi target: iqn is required")
	case cfg.Device == "":
		return nil, errors.New("iscsi target: no device to export")
	case cfg.Port <= 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("iscsi target: portal_port %d out of range", cfg.Port)
	case (cfg.CHAPUser == "") != (cfg.CHAPSecret == ""):
		return nil, errors.New("iscsi target: CHAP needs both a user and a secret")
	}
	if _, err := os.Stat(cfg.Device); err != nil {
		return nil, fmt.Errorf("iscsi target: device %s: %w", cfg.Device, err)
	}
	t := &Target{cfg: cfg, done: make(chan struct{})}
	sock := fmt.Sprintf("/var/run/tgtd/socket.%d", cfg.Control)
	if t.adm(ctx, "--op", "show", "--mode", "sys") == nil {
		return nil, fmt.Errorf("iscsi target: another tgtd already answers on %s (pick another port)", sock)
	}
	_ = os.Remove(sock)
	_ = os.Remove(sock + ".lock")
	t.cmd = exec.Command(cfg.Tgtd, "-f", "--iscsi", fmt.Sprintf("portal=%s:%d", cfg.Addr, cfg.Port), "-C", strconv.Itoa(cfg.Control))
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.cmd.Stdout, t.cmd.Stderr = &t.log, &t.log
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("iscsi target: starting tgtd (install Debian's tgt): %w", err)
	}
	go func() { t.err = t.cmd.Wait(); close(t.done) }()
	if err := t.waitReady(ctx); err != nil {
		t.kill()
		return nil, err
	}
	steps := [][]string{
		{"--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1", "--targetname", cfg.IQN},
		{"--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "--backing-store", cfg.Device},
	}
	if cfg.CHAPUser != "" {
		steps = append(steps,
			[]string{"--lld", "iscsi", "--mode", "account", "--op", "new", "--user", cfg.CHAPUser, "--password", cfg.CHAPSecret},
			[]string{"--lld", "iscsi", "--mode", "account", "--op", "bind", "--tid", "1", "--user", cfg.CHAPUser})
	}
	steps = append(steps, []string{"--lld", "iscsi", "--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL"})
	for _, s := range steps {
		if err := t.adm(ctx, s...); err != nil {
			_ = t.Stop(context.Background())
			return nil, fmt.Errorf("iscsi target: tgtadm %s %s: %w", s[3], s[5], err)
		}
	}
	return t, nil
}

// waitReady polls tgtd's control socket until it answers (or tgtd exits).
func (t *Target) waitReady(ctx context.Context) error {
	deadline := time.NewTimer(t.cfg.Ready)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if t.adm(ctx, "--op", "show", "--mode", "sys") == nil {
			return nil
		}
		select {
		case <-t.done:
			return fmt.Errorf("iscsi target: tgtd exited at start: %s", strings.TrimSpace(t.log.String()))
		case <-deadline.C:
			return fmt.Errorf("iscsi target: tgtd not ready after %s", t.cfg.Ready)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (t *Target) adm(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, t.cfg.Tgtadm, append([]string{"-C", strconv.Itoa(t.cfg.Control)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if t.cfg.CHAPSecret != "" {
			msg = strings.ReplaceAll(msg, t.cfg.CHAPSecret, "******")
		}
		return fmt.Errorf("%v: %s", err, msg)
	}
	return nil
}

// Config returns the target's configuration.
func (t *Target) Config() Config { return t.cfg }

// Pid is tgtd's process id.
func (t *Target) Pid() int { return t.cmd.Process.Pid }

// Done is closed when tgtd has exited.
func (t *Target) Done() <-chan struct{} { return t.done }

// Stop deletes the target (ending its sessions) and ends tgtd: asked to
// exit over its control socket, then SIGTERM, then SIGKILL of its group.
func (t *Target) Stop(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	default:
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_ = t.adm(sctx, "--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid", "1")
	_ = t.adm(sctx, "--op", "delete", "--mode", "system")
	// tgtd ignores SIGTERM: after its targets are gone, SIGKILL is safe
	select {
	case <-t.done:
	case <-time.After(time.Second):
		t.kill()
	}
	sock := fmt.Sprintf("/var/run/tgtd/socket.%d", t.cfg.Control)
	_ = os.Remove(sock)
	_ = os.Remove(sock + ".lock")
	return nil
}

func (t *Target) kill() {
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	<-t.done
}
