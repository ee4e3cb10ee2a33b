package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kvmProbeTimeout bounds the probe guest: on a working KVM it exits in well
// under a second; a nested hypervisor that cannot run protected mode hangs.
const kvmProbeTimeout = 5 * time.Second

// kvmProbeExit is qemu's exit status when the probe guest reached long
// mode: isa-debug-exit exits with (value<<1)|1 and the probe writes 0x10.
const kvmProbeExit = 0x10<<1 | 1

// kvmProbeCode is the start of the probe firmware (mapped at 0xF0000),
// assembled from testdata/kvmprobe.S: real mode → protected mode → long
// mode (PAE, identity-mapped 1 GiB page built in RAM at 0x1000), then
// `out 0xf4, 0x10` to isa-debug-exit. Milestones 1 (real mode) and 2
// (protected mode) go to port 0xf5 (a debugcon, when one is wired).
var kvmProbeCode = [...]byte{
	0xfa, 0xb0, 0x01, 0xe6, 0xf5, 0x2e, 0x66, 0x0f, 0x01, 0x16, 0xa8, 0x00, 0x0f, 0x20, 0xc0, 0x66,
	0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1e, 0x00, 0x0f, 0x00, 0x08, 0x00, 0x66, 0xb8,
	0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xb0, 0x02, 0xe6, 0xf5, 0x31, 0xc0, 0xbf, 0x00,
	0x10, 0x00, 0x00, 0xb9, 0x00, 0x10, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05, 0x00, 0x10, 0x00, 0x00,
	0x03, 0x20, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0x0f, 0x20,
	0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9,
	0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0,
	0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x7f, 0x00, 0x0f, 0x00, 0x18, 0x00, 0xb0,
	0x10, 0xe6, 0xf4, 0xf4, 0x8d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, 0x1f, 0x00, 0x88, 0x00, 0x0f,
}

// kvmProbeReset is the reset vector at 0xFFFF0: ljmp $0xf000, $0.
var kvmProbeReset = [...]byte{0xea, 0x00, 0x00, 0x00, 0xf0}

// kvmProbeFirmware is the 64 KiB probe firmware image (qemu -bios).
func kvmProbeFirmware() []byte {
	img := make([]byte, 64<<10)
	copy(img, kvmProbeCode[:])
	copy(img[0xfff0:], kvmProbeReset[:])
	return img
}

// kvmProbeArgs is the probe's qemu command line: the same -accel and -cpu
// as a server's VM (machine.args), the probe firmware, isa-debug-exit.
func kvmProbeArgs(accel, firmware string) []string {
	cpu := "max"
	if accel == "kvm" {
		cpu = "host"
	}
	return []string{"-accel", accel, "-cpu", cpu, "-machine", "pc", "-m", "16", "-bios", firmware,
		"-display", "none", "-nodefaults", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=1"}
}

// probeAccel runs the probe firmware under accel and reports why a guest
// cannot run there. /dev/kvm opening is not enough: a nested hypervisor may
// offer a /dev/kvm whose guests run real mode and then hang entering
// protected mode, or qemu may abort setting -cpu host's MSRs; either way a
// server's VM would never boot.
func probeAccel(ctx context.Context, qemuBinary, accel string) error {
	dir, err := os.MkdirTemp("", "lo-kvmprobe-")
	if err != nil {
		return fmt.Errorf("probe dir: %w", err)
	}
	defer os.RemoveAll(dir)
	fw := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(fw, kvmProbeFirmware(), 0o644); err != nil {
		return fmt.Errorf("probe firmware: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, kvmProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuBinary, kvmProbeArgs(accel, fw)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("a %s guest did not reach long mode in time (at most %s; a nested hypervisor that cannot enter protected mode?)", accel, kvmProbeTimeout)
	case errors.As(err, &ee) && ee.ExitCode() == kvmProbeExit:
		return nil
	case err == nil:
		return fmt.Errorf("the %s probe guest exited without reaching long mode", accel)
	case errors.As(err, &ee):
		return fmt.Errorf("the %s probe guest failed (%v): %s", accel, err, lastLine(out))
	}
	return fmt.Errorf("start %s: %w (install qemu-system-x86)", qemuBinary, err)
}

// lastLine is the last non-empty line of qemu's output.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
