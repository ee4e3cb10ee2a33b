// Package qemutest boots disks under qemu (TCG) for tests and watches their
// serial console for marker lines with deadlines, never sleeps: the test
// instance image of testdata/tools/build-test-disk.sh under SeaBIOS, OVMF
// and OVMF with secure boot, and the consoles of qemu-backed simulated
// servers in the end-to-end tests. It also builds and reads the test
// images those boots use: the testdata/tools build scripts (BuildScript,
// BuildTestDisk), ext4 partition images (Ext4Image), ranges of disk files
// (ReadAt) and comparisons of two builds (SameBytes).
package qemutest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime/testenv"
)

// Firmware is how a VM starts.
type Firmware string

// The firmwares of the project's machines (Debian's seabios and ovmf).
const (
	// BIOS is SeaBIOS on the pc machine (legacy boot, as a Gen8).
	BIOS Firmware = "bios"
	// UEFI is OVMF without secure boot on q35.
	UEFI Firmware = "uefi"
	// UEFISecureBoot is OVMF's secure-boot build with Microsoft's keys
	// enrolled (q35, SMM, secure pflash), so Debian's signed shim boots.
	UEFISecureBoot Firmware = "uefi-secureboot"
)

// OVMF files (package ovmf).
const (
	OVMFCode       = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars       = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	OVMFCodeSecure = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFVarsMS     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// Options describe one VM.
type Options struct {
	Firmware Firmware
	// Disk is the boot disk (virtio); DiskFormat "raw" (default) or "qcow2".
	Disk       string
	DiskFormat string
	// Snapshot leaves Disk untouched (writes go to a temporary overlay).
	Snapshot bool
	// MemoryMiB defaults to 512 (GRUB on OVMF runs out of memory at 256).
	MemoryMiB int
	// Dir holds the VM's private UEFI variable store copy (required for UEFI).
	Dir string
	// Args are appended to qemu's command line (e.g. a NIC).
	Args []string
}

// Args returns qemu-system-x86_64's command line for o; the serial console
// is qemu's stdout. A UEFI VM gets a private copy of the variable store in
// o.Dir, made here.
func Args(o Options) ([]string, error) {
	mem := o.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	format := o.DiskFormat
	if format == "" {
		format = "raw"
	}
	args := []string{"-accel", "tcg", "-m", strconv.Itoa(mem), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0"}
	vars := func(src string) (string, error) {
		if o.Dir == "" {
			return "", errors.New("qemutest: Options.Dir is required for UEFI (the variable store copy)")
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("qemutest: UEFI variable store: %w (install ovmf)", err)
		}
		dst := filepath.Join(o.Dir, "OVMF_VARS."+string(o.Firmware)+".fd")
		return dst, os.WriteFile(dst, b, 0o600)
	}
	switch o.Firmware {
	case BIOS:
		args = append(args, "-machine", "pc")
	case UEFI:
		v, err := vars(OVMFVars)
		if err != nil {
			return nil, err
		}
		args = append(args, "-machine", "q35",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+OVMFCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+v)
	case UEFISecureBoot:
		v, err := vars(OVMFVarsMS)
		if err != nil {
			return nil, err
		}
		args = append(args, "-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+OVMFCodeSecure,
			"-drive", "if=pflash,format=raw,unit=1,file="+v)
	default:
		return nil, fmt.Errorf("qemutest: firmware %q: want bios, uefi or uefi-secureboot", o.Firmware)
	}
	if o.Disk != "" {
		d := "if=virtio,format=" + format + ",file=" + o.Disk
		if o.Snapshot {
			d += ",snapshot=on"
		}
		args = append(args, "-drive", d)
	}
	return append(args, o.Args...), nil
}

// VM is a running qemu.
type VM struct {
	// Console is the VM's serial console.
	Console *Console
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	done    chan struct{}
	err     error
	started time.Time
}

// Start starts qemu; it is killed when ctx ends. Call Stop when done.
func Start(ctx context.Context, o Options) (*VM, error) {
	args, err := Args(o)
	if err != nil {
		return nil, err
	}
	vm := &VM{Console: NewConsole(), done: make(chan struct{})}
	vm.cmd = exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	vm.cmd.Stdout = vm.Console
	vm.cmd.Stderr = &vm.stderr
	vm.started = time.Now()
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemutest: start qemu-system-x86_64: %w", err)
	}
	go func() {
		err := vm.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("qemu: %w: %s", err, strings.TrimSpace(vm.stderr.String()))
		}
		vm.err = err
		vm.Console.CloseWithError(errors.Join(errors.New("qemu exited"), err))
		close(vm.done)
	}()
	return vm, nil
}

// Since is the time since qemu started.
func (vm *VM) Since() time.Duration { return time.Since(vm.started) }

// Done is closed when qemu has exited.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Wait waits for qemu to exit (the guest powered off) and returns its error.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.done:
		return vm.err
	case <-ctx.Done():
		return fmt.Errorf("qemu still running: %w", ctx.Err())
	}
}

// Stop kills qemu if it still runs and waits for it.
func (vm *VM) Stop() {
	select {
	case <-vm.done:
		return
	default:
	}
	_ = vm.cmd.Process.Kill()
	<-vm.done
}

// Require skips (or under `make test` fails) t unless qemu and the files
// of the firmwares are installed.
func Require(t testing.TB, fws ...Firmware) {
	t.Helper()
	testenv.RequireTools(t, "qemu-system-x86_64", "qemu-img")
	for _, fw := range fws {
		switch fw {
		case UEFI:
			testenv.RequireFiles(t, OVMFCode, OVMFVars)
		case UEFISecureBoot:
			testenv.RequireFiles(t, OVMFCodeSecure, OVMFVarsMS)
		}
	}
}

// RepoRoot is the directory holding go.mod above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	t.Fatalf("no go.mod above %s", dir)
	return ""
}

// CacheDir is where test artifacts (kernels, disks) are cached between
// runs: $XDG_CACHE_HOME/lightsout-test/NAME, else
// /var/tmp/lightsout-test-cache/NAME.
func CacheDir(name string) string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "lightsout-test", name)
	}
	return filepath.Join("/var/tmp/lightsout-test-cache", name)
}

// TestDisk is the test instance image built by build-test-disk.sh.
type TestDisk struct {
	Raw, QCOW2 string
	// ID is printed by the image as "LIGHTSOUT-TEST-IMAGE-ID <id>".
	ID string
}

// BuildTestDisk builds (or reuses from the cache) the test instance image.
// The files are shared: copy them before writing.
func BuildTestDisk(t testing.TB) TestDisk {
	t.Helper()
	testenv.RequireTools(t, "sgdisk", "mkfs.vfat", "mcopy", "syslinux", "qemu-img", "apt-get", "dpkg-deb", "busybox")
	testenv.RequireFiles(t, "/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
		"/usr/lib/syslinux/mbr/gptmbr.bin")
	script := "build-test-disk.sh"
	f := BuildScript(t, script, "testdisk", "RAW QCOW2")
	id, err := os.ReadFile(filepath.Join(filepath.Dir(f[0]), "id"))
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return TestDisk{Raw: f[0], QCOW2: f[1], ID: strings.TrimSpace(string(id))}
}

// BuildScript runs testdata/tools/SCRIPT (bash, five minutes at most)
// with the cache directory CacheDir(cache), where the script builds or
// reuses its files, and returns the fields of the last line it prints,
// which must be as many as want names ("KERNEL INITRD"). It fails t with
// the script's stderr when the script fails.
func BuildScript(t testing.TB, script, cache, want string) []string {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "testdata", "tools", script)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", path, CacheDir(cache))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != len(strings.Fields(want)) {
		t.Fatalf("%s printed %q, want %s", path, out, want)
	}
	return f
}

// CopyFile copies src to dst (a private, writable copy of a cached disk).
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
