package qemu

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestKVMProbeFirmwareReachesLongMode runs the probe firmware under TCG:
// it must walk real → protected → long mode and exit through
// isa-debug-exit, or every KVM host would fall back to TCG.
func TestKVMProbeFirmwareReachesLongMode(t *testing.T) {
	testenv.RequireTools(t, "qemu-system-x86_64")
	if err := probeAccel(context.Background(), "qemu-system-x86_64", "tcg"); err != nil {
		t.Fatalf("the probe firmware under TCG: %v", err)
	}
}

// TestKVMProbeFirmwareMatchesSource assembles testdata/kvmprobe.S (when
// binutils are there) and compares it with the bytes the binary carries.
func TestKVMProbeFirmwareMatchesSource(t *testing.T) {
	for _, tool := range []string{"as", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (binutils): cannot assemble testdata/kvmprobe.S", tool)
		}
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "probe.o"), filepath.Join(dir, "probe.bin")
	for _, c := range [][]string{{"as", "--32", "-o", obj, "testdata/kvmprobe.S"}, {"objcopy", "-O", "binary", obj, bin}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got := kvmProbeFirmware(); !bytes.Equal(got, want) {
		t.Fatalf("kvmProbeCode/kvmProbeReset differ from testdata/kvmprobe.S assembled (%d vs %d bytes): regenerate them", len(got), len(want))
	}
}

// TestProbeAccelFailures: each way a guest cannot run is an error saying
// so; only the probe's exit status counts as success.
func TestProbeAccelFailures(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, binary string
		timeout      time.Duration
		want         string // "" = success
	}{
		{"reaches long mode", script("ok", "exit 33"), time.Minute, ""},
		{"aborts setting MSRs", script("msr", "echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\nexit 134"), time.Minute,
			"failed to set MSR 0x10a"},
		{"hangs entering protected mode", script("hang", "exec sleep 60"), 300 * time.Millisecond, "did not reach long mode"},
		{"exits 0", script("zero", "exit 0"), time.Minute, "exited without reaching long mode"},
		{"no qemu", filepath.Join(dir, "missing"), time.Minute, "install qemu-system-x86"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := probeAccel(ctx, tt.binary, "kvm")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("probe error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPickAccel: tcg is taken as asked; kvm asked for on a host where the
// probe fails is an error naming the option, auto falls back and says why.
func TestPickAccel(t *testing.T) {
	ctx := context.Background()
	if a, why, err := pickAccel(ctx, "tcg", "/nonexistent/qemu"); a != "tcg" || why != "" || err != nil {
		t.Fatalf("tcg: %q %q %v", a, why, err)
	}
	bad := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, why, err := pickAccel(ctx, "auto", bad)
	if a != "tcg" || err != nil || !strings.Contains(why, "probe guest failed") {
		t.Fatalf("auto with a failing probe: %q %q %v", a, why, err)
	}
	if _, _, err := pickAccel(ctx, "kvm", bad); err == nil || !strings.Contains(err.Error(), "Options.Accel kvm") ||
		!strings.Contains(err.Error(), "use auto or tcg") {
		t.Fatalf("kvm with a failing probe: %v", err)
	}
}
