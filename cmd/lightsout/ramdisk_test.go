//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestImageRamdiskProgress: `lightsout image ramdisk` draws a progress bar
// on a terminal and nothing but its result off one. The probe of the boot
// tests is /init (the test binary itself is not static).
func TestImageRamdiskProgress(t *testing.T) {
	testenv.RequireTools(t, "go")
	probe := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-trimpath", "-o", probe, "../../bindings/image/testdata/ramdisk-probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ramdisk-probe: %v\n%s", err, out)
	}
	c := newCLI(t)
	args := []string{"image", "ramdisk", "--binary", probe, "--cache-dir", "/var/tmp/lightsout-test-cache",
		"--kernel-package", "linux-image-amd64"}
	code, out, errOut := c.run(append(args, "-o", t.TempDir())...)
	if code != 0 {
		if strings.Contains(errOut, "kernel package") && !testenv.Integration() {
			t.Skipf("no deploy kernel can be fetched: %s", errOut)
		}
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" || !strings.Contains(out, "deploy ramdisk built") {
		t.Fatalf("off a terminal: stdout %q, stderr %q (want the result, no bar)", out, errOut)
	}

	term, ctl := openPTY(t)
	seen := screen(ctl)
	done := make(chan int, 1)
	go func() { done <- run(append(args, "-o", t.TempDir()), term, term) }()
	if code := <-done; code != 0 {
		t.Fatalf("on a terminal: exit %d:\n%q", code, seen.String())
	}
	waitFor(t, "the progress bar and the result on the terminal", func() bool {
		s := seen.String()
		return strings.Contains(s, "writing lightsout-deploy.initramfs") && strings.Contains(s, "%") &&
			strings.Contains(s, "deploy ramdisk built")
	})
}

// TestImageRamdiskUsage: bad input exits 2 with a message naming the fix,
// before any kernel is fetched.
func TestImageRamdiskUsage(t *testing.T) {
	c := newCLI(t)
	script := filepath.Join(t.TempDir(), "init.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dynamic := ""
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if _, err := os.Stat(p); err == nil {
			dynamic = p
			break
		}
	}
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no output dir", []string{"image", "ramdisk"}, "-o/--output is required"},
		{"kernel without modules", []string{"image", "ramdisk", "-o", t.TempDir(), "--kernel", "/k"}, "[kernel modules]"},
		{"kernel and package", []string{"image", "ramdisk", "-o", t.TempDir(), "--kernel", "/k", "--modules", "/m", "--kernel-package", "p"}, "kernel kernel-package"},
		{"only and add", []string{"image", "ramdisk", "-o", t.TempDir(), "--only-module", "a", "--add-module", "b"}, "add-module only-module"},
		{"not an executable", []string{"image", "ramdisk", "-o", t.TempDir(), "--binary", script}, "static linux/amd64 executable"},
	}
	if dynamic != "" {
		tests = append(tests, struct {
			name string
			args []string
			msg  string
		}{"dynamic binary", []string{"image", "ramdisk", "-o", t.TempDir(), "--binary", dynamic}, "build it static with CGO_ENABLED=0"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != 2 || !strings.Contains(out+errOut, tt.msg) {
				t.Fatalf("exit %d (want 2), output %q lacks %q", code, out+errOut, tt.msg)
			}
		})
	}
}
