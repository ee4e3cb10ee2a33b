// Package testenv decides whether a test that needs an external tool (qemu,
// Swift, python3-proliantutils, ...) runs, skips or fails.
//
// `make test` sets LIGHTSOUT_INTEGRATION=1 after installing every tool with
// testdata/tools/deps.sh; then a missing tool fails the test instead of
// skipping it, so CI can never go green by skipping.
//
// It also holds SyncBuffer, the goroutine-safe buffer tests read output
// from while the code under test writes it.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Integration reports whether integration tests are required.
func Integration() bool { return os.Getenv("LIGHTSOUT_INTEGRATION") == "1" }

// RequireTools skips (or, under `make test`, fails) t unless every named
// program is on PATH or is an existing absolute path.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if Integration() {
				t.Fatalf("required tool %s not found (run testdata/tools/deps.sh): %v", tool, err)
			}
			t.Skipf("tool %s not found; run `make test` or testdata/tools/deps.sh", tool)
		}
	}
}

// RequireFiles is RequireTools for files such as /usr/lib/ISOLINUX/isolinux.bin.
func RequireFiles(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			if Integration() {
				t.Fatalf("required file %s missing (run testdata/tools/deps.sh): %v", p, err)
			}
			t.Skipf("file %s missing; run `make test` or testdata/tools/deps.sh", p)
		}
	}
}
