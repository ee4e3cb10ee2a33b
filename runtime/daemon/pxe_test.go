package daemon_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/bindings/pxe"
	"github.com/lightsout/lightsout/runtime/app"
	"github.com/lightsout/lightsout/runtime/daemon"
	"github.com/lightsout/lightsout/runtime/module"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestPXEBootService: with [pxe] builtin_server on, serve's PXE service
// serves a node's files over TFTP (curl is the client) and HTTP, and
// stops with Close; with it off, nothing listens.
func TestPXEBootService(t *testing.T) {
	testenv.RequireTools(t, "curl")
	for _, on := range []bool{true, false} {
		state := t.TempDir()
		conf := filepath.Join(state, "lightsout.conf")
		ini := "[lightsout]\nstate_dir = " + state + "\n[pxe]\ntftp_root = " + filepath.Join(state, "tftpboot") +
			"\ntftp_address = 127.0.0.1:0\nhttp_address = 127.0.0.1:0\n[deploy]\nhttp_root = " + filepath.Join(state, "tftpboot") + "\n"
		if on {
			ini += "[pxe]\nbuiltin_server = true\n"
		}
		os.WriteFile(conf, []byte(ini), 0o600)
		t.Setenv("LIGHTSOUT_SECRET_KEY", "")
		a, err := app.Open(context.Background(), app.Options{ConfigPath: conf, StateDir: state, Modules: []module.Module{}, Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		svc := daemon.PXEBoot(a)
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		tftpAddr, httpAddr := svc.(interface{ Addrs() (string, string) }).Addrs()
		if !on {
			if tftpAddr != "" || httpAddr != "" {
				t.Errorf("builtin_server off but listening on %q %q", tftpAddr, httpAddr)
			}
			svc.Close()
			continue
		}
		c, err := pxe.ConfigFrom(a.Config)
		if err != nil {
			t.Fatal(err)
		}
		k := filepath.Join(state, "kernel")
		os.WriteFile(k, []byte("a deploy kernel"), 0o644)
		const node = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
		if _, err := c.Prepare(context.Background(), pxe.Boot{Node: node, MACs: []string{"52:54:00:12:34:56"}, Kernel: k, Ramdisk: k}); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("curl", "-sS", "tftp://"+tftpAddr+"/"+node+"/deploy_kernel").CombinedOutput()
		if err != nil || string(out) != "a deploy kernel" {
			t.Errorf("TFTP: %v %q", err, out)
		}
		resp, err := http.Get("http://" + httpAddr + "/" + node + "/deploy_kernel")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, []byte("a deploy kernel")) {
			t.Errorf("HTTP: %d %q", resp.StatusCode, b)
		}
		if _, err := os.Stat(filepath.Join(c.TFTPRoot, "grub", "grub.cfg")); err != nil {
			t.Errorf("Setup did not write the GRUB master config: %v", err)
		}
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := http.Get("http://" + httpAddr + "/" + node + "/deploy_kernel"); err == nil {
			t.Errorf("the HTTP boot server still answers after Close")
		}
	}
}
