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
