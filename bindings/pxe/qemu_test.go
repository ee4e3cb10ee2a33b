package pxe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// A real PXE ROM against our files and servers: qemu (TCG) with SeaBIOS
// and its iPXE option ROM on user networking, whose DHCP hands out the boot
// file with next-server 10.0.2.2 (the host's loopback). The "deploy
// ramdisk" is Debian's kernel + the busybox initramfs of the media tests
// (testdata/tools/media-build-ramdisk.sh), whose /init prints its kernel
// command line ("RAMDISK-CMDLINE ...") on the serial console: the probe
// parameter there proves the node's config, kernel and ramdisk came from
// us.

const qemuMAC = "52:54:00:12:34:56"

// qemuTimeout is how long a PXE boot under TCG may take (seconds).
var qemuTimeout = 240

// pxeRamdisk builds (or reuses) the test kernel and initrd.
func pxeRamdisk(t *testing.T) (kernel, initrd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no qemu PXE boot")
	}
	testenv.RequireTools(t, "qemu-system-x86_64", "apt-get", "dpkg-deb", "busybox", "cpio")
	root, _ := os.Getwd()
	for ; root != "/"; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
	}
	cache := "/var/tmp/lightsout-test-cache/media"
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		cache = filepath.Join(d, "lightsout-test", "media")
	}
	// The cache is shared with other checkouts on the machine, which may
	// replace it: copy the files out at once (and build again if they went).
	dir := t.TempDir()
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	var last error
	for try := 0; try < 3; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "testdata", "tools", "media-build-ramdisk.sh"), cache)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("media-build-ramdisk.sh: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		f := strings.Fields(lines[len(lines)-1])
		if len(f) != 2 {
			t.Fatalf("media-build-ramdisk.sh printed %q", out)
		}
		if last = copyFile(f[0], kernel); last == nil {
			if last = copyFile(f[1], initrd); last == nil {
				return kernel, initrd
			}
		}
	}
	t.Fatalf("the test kernel and initrd vanished from the shared cache three times: %v", last)
	return "", ""
}

// bootPXE runs qemu until the ramdisk printed its command line holding
// probe on the serial console (or a failure, or 240 s); it returns the log.
func bootPXE(t *testing.T, bootfile, probe string, extra ...string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "serial.log")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(qemuTimeout)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-serial", "file:"+logPath,
		"-netdev", "user,id=n0,bootfile="+bootfile, "-device", "e1000,netdev=n0,mac="+qemuMAC, "-boot", "n")
	cmd.Args = append(cmd.Args, extra...)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(logPath)
		log := strings.ReplaceAll(string(b), "\r", "")
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "RAMDISK-CMDLINE ") && strings.Contains(l, probe) {
				return log
			}
		}
		if strings.Contains(log, "Kernel panic") {
			t.Fatalf("kernel panic:\n%s", log)
		}
		select {
		case <-tick.C:
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			t.Fatalf("qemu exited (%v) before the ramdisk printed %q\nqemu: %s\nserial:\n%s", err, probe, qout.String(), b)
		case <-ctx.Done():
			t.Fatalf("the ramdisk did not print %q within the timeout\nserial:\n%s", probe, b)
		}
	}
}

func probe() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "lightsout_pxe_probe=" + hex.EncodeToString(b)
}

// TestQEMUiPXEOverHTTP: iPXE (the qemu NIC's ROM, under SeaBIOS and under
// OVMF) fetches boot.ipxe from our HTTP boot server, chains the node's
// script by MAC, and boots the deploy kernel and ramdisk from the node
// directory.
func TestQEMUiPXEOverHTTP(t *testing.T) {
	kernel, initrd := pxeRamdisk(t)
	for _, fw := range []struct {
		name, mode string
		args       []string
	}{{"bios", "bios", nil}, {"uefi", "uefi", []string{"-bios", "/usr/share/ovmf/OVMF.fd"}}} {
		t.Run(fw.name, func(t *testing.T) {
			if fw.name == "uefi" {
				testenv.RequireFiles(t, "/usr/share/ovmf/OVMF.fd")
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c := testConfig(t, true)
			c.HTTPURL = fmt.Sprintf("http://10.0.2.2:%d/", ln.Addr().(*net.TCPAddr).Port)
			if _, err := c.Setup(); err != nil {
				t.Fatal(err)
			}
			p := probe()
			if _, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{qemuMAC}, Mode: fw.mode,
				Kernel: kernel, Ramdisk: initrd, Params: "console=ttyS0 " + p}); err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: HTTPHandler(Tree{Root: c.HTTPRoot}, nil)}
			go srv.Serve(ln)
			defer srv.Close()
			bootPXE(t, c.HTTPURL+"boot.ipxe", p, fw.args...)
		})
	}
}

// TestQEMUPxelinuxOverTFTP: the ROM loads lpxelinux.0 over TFTP from our
// server (user networking answers TFTP to 10.0.2.2:69 itself, so the boot
// file is a tftp:// URL with our port, which pxelinux keeps as its path
// prefix); pxelinux reads pxelinux.cfg/01-<mac> and loads the deploy kernel
// and ramdisk over TFTP.
func TestQEMUPxelinuxOverTFTP(t *testing.T) {
	testenv.RequireFiles(t, "/usr/lib/PXELINUX/lpxelinux.0", "/usr/lib/syslinux/modules/bios/ldlinux.c32")
	kernel, initrd := pxeRamdisk(t)
	c := testConfig(t, false)
	if _, err := c.Setup(); err != nil {
		t.Fatal(err)
	}
	p := probe()
	if _, err := c.Prepare(context.Background(), Boot{Node: node1, MACs: []string{qemuMAC}, Kernel: kernel, Ramdisk: initrd,
		Params: "console=ttyS0 " + p}); err != nil {
		t.Fatal(err)
	}
	log := &testenv.SyncBuffer{}
	s, err := ListenTFTP("127.0.0.1:0", Tree{Root: c.TFTPRoot}, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("TFTP server log:\n%s", log)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	bootPXE(t, fmt.Sprintf("tftp://10.0.2.2:%s/lpxelinux.0", port(s)), p)
	for _, f := range []string{"lpxelinux.0", "ldlinux.c32", "pxelinux.cfg/01-52-54-00-12-34-56", node1 + "/deploy_kernel", node1 + "/deploy_ramdisk"} {
		if !strings.Contains(log.String(), "file="+f) {
			t.Errorf("the TFTP server did not send %s", f)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", log)
	}
}
