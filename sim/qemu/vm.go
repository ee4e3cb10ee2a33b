package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lightsout/lightsout/sim"
)

// vm is one running qemu process.
type vm struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has been waited for
	qmpReady chan struct{} // closed once the QMP connection is up (or given up)
	waitErr  error
	stopOnce sync.Once

	mu     sync.Mutex
	qmp    *qmpConn
	reason string // SHUTDOWN event reason: guest-shutdown, guest-reset, host-qmp-quit, ...
}

func (v *vm) qmpCommand(name string) error {
	select { // a VM just started: its QMP socket comes up within moments
	case <-v.qmpReady:
	case <-v.exited:
	case <-time.After(5 * time.Second):
	}
	v.mu.Lock()
	q := v.qmp
	v.mu.Unlock()
	if q == nil {
		return errors.New("no QMP connection")
	}
	return q.command(name)
}

// stop ends the VM: a QMP quit (qemu flushes the qcow2 disk), then a kill
// of its process group when it has not exited within 5 s; it returns once
// the process has been waited for.
func (v *vm) stop() {
	v.stopOnce.Do(func() {
		_ = v.qmpCommand("quit")
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-v.exited:
			return
		case <-t.C:
		}
		_ = syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	})
	<-v.exited
}

// Hook is the sim.BootHook of the backend: for a qemu-backed server it
// runs one VM until the guest powers off or reboots (then it powers the
// simulated server off or resets it) or ctx is cancelled (iLO power off or
// reset: the VM is stopped); other servers go to Options.Fallback.
func (b *Backend) Hook() sim.BootHook {
	return func(ctx context.Context, ev sim.BootEvent) {
		if !b.Handles(ev.Server) {
			if b.opts.Fallback != nil {
				b.opts.Fallback(ctx, ev)
			}
			return
		}
		n := b.node(ev.Server)
		select { // one VM per server: wait until the previous boot's qemu is gone
		case n.slot <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-n.slot }()
		if ctx.Err() != nil {
			return
		}
		outcome, err := b.run(ctx, n, ev)
		if err != nil && ctx.Err() == nil {
			b.log.Error("qemu: VM failed", "server", ev.Server, "err", err)
			b.consoleLine(n, fmt.Sprintf("lightsout-sim: VM of %s failed: %v", ev.Server, err))
		}
		srv := b.simServer(ev.Server)
		if srv == nil || ctx.Err() != nil {
			return
		}
		switch outcome {
		case "guest-reset":
			srv.OSReset(ctx)
		default: // guest shutdown, a qemu that failed or exited, the backend closing
			srv.OSPowerOff(ctx)
		}
	}
}

func (b *Backend) simServer(name string) *sim.Server {
	b.mu.Lock()
	s := b.sim
	b.mu.Unlock()
	if s == nil {
		return nil
	}
	srv, _ := s.ServerByName(name)
	return srv
}

// consoleLine writes one line from the backend itself onto the server's console.
func (b *Backend) consoleLine(n *node, line string) {
	p := []byte(line + "\r\n")
	n.console.write(p)
	if srv := b.simServer(n.name); srv != nil {
		srv.ConsoleWrite(p)
	}
	if f, err := os.OpenFile(b.ConsoleLogPath(n.name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		f.Write(p)
		f.Close()
	}
}

// run prepares the media, disk and firmware of one boot, runs qemu and
// returns the SHUTDOWN reason once it exited.
func (b *Backend) run(ctx context.Context, n *node, ev sim.BootEvent) (string, error) {
	dir := b.serverDir(ev.Server)
	if err := os.MkdirAll(filepath.Join(dir, "media"), 0o755); err != nil {
		return "", err
	}
	b.mu.Lock()
	client, closed := b.client, b.closed
	b.mu.Unlock()
	if closed {
		return "", errors.New("the qemu backend is closed")
	}
	if client == nil {
		client = aliasClient(nil, b.opts.HostAlias)
	}
	uefi := strings.EqualFold(ev.BootMode, "UEFI")
	m := machine{Generation: ev.Generation, BootDevice: ev.BootDevice, UEFI: uefi, SecureBoot: uefi && ev.SecureBoot,
		Disk: b.DiskPath(ev.Server), Memory: b.opts.Memory, CPUs: b.opts.CPUs, Accel: b.accel,
		QMP: filepath.Join(b.sockDir, safeName(ev.Server)+".qmp")}
	if len(ev.MACs) > 0 {
		m.MAC = strings.ToLower(ev.MACs[0])
	}
	for _, dev := range []string{"CDROM", "FLOPPY"} {
		u := ev.Media[dev]
		if u == "" {
			continue
		}
		path := filepath.Join(dir, "media", strings.ToLower(dev)+".img")
		if err := fetch(ctx, client, u, path); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			// a real iLO boots without the medium it cannot read
			b.consoleLine(n, fmt.Sprintf("lightsout-sim: virtual media %s not available: %v", dev, err))
			continue
		}
		if dev == "CDROM" {
			m.CDROM = path
		} else {
			m.Floppy = path
		}
	}
	if err := b.ensureDisk(ctx, m.Disk); err != nil {
		return "", err
	}
	if uefi {
		var err error
		if m.Code, m.Vars, err = b.firmware(ev.Server, m.SecureBoot); err != nil {
			return "", err
		}
	}
	var err error
	if m.Tap = b.Tap(ev.Server); m.Tap == "" {
		if m.Port, err = b.agentPort(ev.Server); err != nil {
			return "", err
		}
		if m.ISCSIPort, err = b.allocPort(ev.Server + iscsiSuffix); err != nil {
			return "", err
		}
	}
	os.Remove(m.QMP)
	args := m.args()
	return b.exec(ctx, n, ev, args, m.QMP)
}

// ensureDisk creates the server's qcow2 disk when it does not exist.
func (b *Backend) ensureDisk(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".new"
	out, err := exec.CommandContext(ctx, b.opts.QemuImg, "create", "-q", "-f", "qcow2", tmp,
		fmt.Sprint(b.opts.DiskSize)).CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s create %s: %v: %s (install qemu-utils)", b.opts.QemuImg, path, err, bytes.TrimSpace(out))
	}
	return os.Rename(tmp, path)
}

// exec starts qemu, copies its serial console and waits for it to exit
// (or stops it when ctx ends).
func (b *Backend) exec(ctx context.Context, n *node, ev sim.BootEvent, args []string, qmpPath string) (string, error) {
	logf, err := os.OpenFile(b.ConsoleLogPath(ev.Server), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(b.opts.QemuBinary, args...)
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	v := &vm{cmd: cmd, exited: make(chan struct{}), qmpReady: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		pr.Close()
		pw.Close()
		return "", errors.New("the qemu backend is closed")
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	fmt.Fprintf(logf, "\n===== %s power on: boot %s, %s%s, %s =====\n", time.Now().UTC().Format(time.RFC3339),
		ev.BootDevice, ev.BootMode, map[bool]string{true: " secure boot"}[ev.SecureBoot], b.accel)
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return "", fmt.Errorf("start %s: %w (install qemu-system-x86)", b.opts.QemuBinary, err)
	}
	pw.Close()
	b.log.Info("qemu: VM started", "server", ev.Server, "pid", cmd.Process.Pid, "boot", ev.BootDevice, "mode", ev.BootMode, "secure_boot", ev.SecureBoot)
	go func() {
		v.waitErr = cmd.Wait()
		close(v.exited)
	}()
	copied := make(chan struct{})
	srv := b.simServer(ev.Server)
	go func() {
		defer close(copied)
		defer pr.Close()
		buf := make([]byte, 32<<10)
		for {
			k, err := pr.Read(buf)
			if k > 0 {
				p := buf[:k]
				n.console.write(p)
				logf.Write(p)
				if srv != nil {
					srv.ConsoleWrite(append([]byte(nil), p...))
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.log.Warn("qemu: console read", "server", ev.Server, "err", err)
				}
				return
			}
		}
	}()
	n.mu.Lock()
	n.vm = v
	n.lastCmd = append([]string{b.opts.QemuBinary}, args...)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		if n.vm == v {
			n.vm = nil
		}
		n.mu.Unlock()
	}()

	// QMP: the socket appears once qemu has parsed its arguments
	onEvent := func(event string, data json.RawMessage) {
		if event != "SHUTDOWN" {
			return
		}
		var d struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(data, &d)
		v.mu.Lock()
		v.reason = d.Reason
		v.mu.Unlock()
	}
	deadline := time.Now().Add(30 * time.Second)
	readyOnce := sync.OnceFunc(func() { close(v.qmpReady) })
	defer readyOnce()
	for {
		q, err := dialQMP(qmpPath, onEvent)
		if err == nil {
			v.mu.Lock()
			v.qmp = q
			v.mu.Unlock()
			readyOnce()
			defer q.close()
			break
		}
		if time.Now().After(deadline) {
			b.log.Warn("qemu: no QMP", "server", ev.Server, "err", err)
			readyOnce()
			break
		}
		select {
		case <-v.exited:
			<-copied
			return "", fmt.Errorf("qemu exited at start (%v): %s", v.waitErr, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-v.exited
			<-copied
			return "", ctx.Err()
		case <-b.done:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-v.exited
			<-copied
			return "", errors.New("the qemu backend closed")
		case <-time.After(20 * time.Millisecond): // polling for the socket file
		}
	}
	select {
	case <-v.exited:
	case <-ctx.Done():
		v.stop()
	case <-b.done:
		v.stop()
	}
	<-copied
	v.mu.Lock()
	reason := v.reason
	v.mu.Unlock()
	b.log.Info("qemu: VM exited", "server", ev.Server, "reason", reason, "err", v.waitErr)
	if e := strings.TrimSpace(stderr.String()); e != "" { // qemu's warnings, in the log file only
		fmt.Fprintf(logf, "\n===== qemu stderr =====\n%s\n", e)
	}
	fmt.Fprintf(logf, "\n===== %s qemu exited: %s (%v) =====\n", time.Now().UTC().Format(time.RFC3339), reason, v.waitErr)
	if ctx.Err() != nil {
		return reason, nil
	}
	if reason == "" && v.waitErr != nil {
		return "", fmt.Errorf("qemu exited (%v): %s", v.waitErr, strings.TrimSpace(stderr.String()))
	}
	return reason, nil
}

// limitedWriter keeps the first n bytes written.
type limitedWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := len(p)
	if k > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	if len(p) > 0 {
		_, _ = l.w.Write(p)
	}
	return k, nil
}
