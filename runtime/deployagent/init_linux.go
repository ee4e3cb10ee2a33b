//go:build linux

package deployagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Init is the ramdisk's init (the lightsout binary as PID 1): it mounts
// proc, sysfs, devtmpfs, /run and /tmp, sends output to /dev/console,
// loads the kernel modules the machine's devices need (loadMachineModules:
// coldplug, then hotplug for devices that appear later), reaps orphans and
// runs the agent
// (Main). It never returns: after a fatal error the machine stays up with
// the LIGHTSOUT-AGENT-FATAL line on its console, as a kernel panic on
// PID 1's exit would hide it.
func Init() {
	mountAll()
	console := io.Writer(os.Stderr)
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		_ = unix.Dup3(int(c.Fd()), 0, 0)
		_ = unix.Dup3(int(c.Fd()), 1, 0)
		_ = unix.Dup3(int(c.Fd()), 2, 0)
		console = c
	}
	go reap()
	loadMachineModules(console)
	if err := Main(context.Background(), MainOptions{Network: true, Console: console}); err == nil {
		fmt.Fprintf(console, "%s agent stopped\n", ConsoleFatal)
	}
	for {
		time.Sleep(time.Hour) // PID 1 must not exit
	}
}

func mountAll() {
	for _, m := range []struct{ src, dst, fstype, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755"},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, unix.MS_NOSUID, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			fmt.Fprintf(os.Stderr, "lightsout init: mount %s on %s: %v\n", m.fstype, m.dst, err)
		}
	}
	_ = os.MkdirAll("/etc", 0o755)
}

// loadModules loads each listed module with finit_module; already loaded
// modules are fine. A module failing (e.g. listed before a module it needs)
// is retried after the others while a pass makes progress; what still
// fails is logged, not fatal.
func loadModules(list string, log io.Writer) {
	data, err := os.ReadFile(list)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(log, "lightsout init: %s: %v\n", list, err)
		}
		return
	}
	var pending []string
	for _, line := range strings.Split(string(data), "\n") {
		if p := strings.TrimSpace(line); p != "" && !strings.HasPrefix(p, "#") {
			pending = append(pending, p)
		}
	}
	loaded := 0
	errs := map[string]error{}
	for len(pending) > 0 {
		var failed []string
		for _, p := range pending {
			if err := loadModule(p); err != nil {
				errs[p] = err
				failed = append(failed, p)
				continue
			}
			loaded++
		}
		if len(failed) == len(pending) {
			break
		}
		pending = failed
	}
	for _, p := range pending {
		fmt.Fprintf(log, "lightsout init: loading module %s: %v\n", p, errs[p])
	}
	fmt.Fprintf(log, "lightsout init: %d kernel modules loaded from %s\n", loaded, list)
}

func loadModule(path string) error {
	m, err := os.Open(path)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := unix.FinitModule(int(m.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// reap waits for orphaned children (PID 1's duty).
func reap() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
