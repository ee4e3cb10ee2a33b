package deployagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// MiB is 2^20 bytes.
const MiB = 1 << 20

// cleanSteps are the GenericHardwareManager steps the agent offers.
func cleanSteps() []any {
	return []any{
		map[string]any{"step": "erase_devices", "priority": 10, "interface": "deploy", "reboot_requested": false, "abortable": true},
		map[string]any{"step": "erase_devices_metadata", "priority": 99, "interface": "deploy", "reboot_requested": false, "abortable": true},
	}
}

func (a *Agent) getCleanSteps(context.Context, map[string]any) (any, *RESTError) {
	return map[string]any{
		"clean_steps":              map[string]any{"GenericHardwareManager": cleanSteps()},
		"hardware_manager_version": hardwareManagerVersions(),
	}, nil
}

func (a *Agent) executeCleanStep(ctx context.Context, params map[string]any) (any, *RESTError) {
	step, _ := params["step"].(map[string]any)
	name, _ := step["step"].(string)
	if cv, ok := params["clean_version"].(map[string]any); ok && len(cv) > 0 {
		if v, _ := cv["generic_hardware_manager"].(string); v != hardwareManagerVersion {
			return nil, &RESTError{Type: "CleanVersionMismatch", Code: 409, Message: "Clean version mismatch, reload agent",
				Details: fmt.Sprintf("Agent clean version: %v, node clean version: %v", hardwareManagerVersions(), cv)}
		}
	}
	var eraser func(context.Context, Disk) error
	switch name {
	case "erase_devices":
		eraser = a.eraseDevice
	case "erase_devices_metadata":
		eraser = func(_ context.Context, d Disk) error { return EraseMetadata(d.Path, d.Size) }
	default:
		return nil, &RESTError{Type: "CleaningError", Code: 500, Message: "Clean step failed",
			Details: fmt.Sprintf("Unknown clean step %q: the lightsout agent has erase_devices and erase_devices_metadata", name)}
	}
	disks, err := a.cfg.Disks()
	if err != nil {
		return nil, &RESTError{Type: "BlockDeviceEraseError", Code: 500, Message: "Error erasing block device", Details: "listing disks: " + err.Error()}
	}
	var errs []string
	for _, d := range disks {
		if d.ReadOnly || isVirtualFloppy(d.Path) {
			a.log.Info("not erasing read-only or virtual media device", "device", d.Name)
			continue
		}
		a.log.Info("erasing", "step", name, "device", d.Name)
		if err := eraser(ctx, d); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", d.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, &RESTError{Type: "BlockDeviceEraseError", Code: 500, Message: "Error erasing block device",
			Details: "Failed to erase block devices: " + strings.Join(errs, "; ")}
	}
	return map[string]any{"clean_result": nil, "clean_step": step}, nil
}

// isVirtualFloppy reports whether the device holds the virtual floppy (a
// FAT volume labelled ir-vfd-dev), which cleaning must leave alone.
func isVirtualFloppy(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	if n, _ := f.ReadAt(b, 0); n < 512 {
		return false
	}
	for _, off := range []int{43, 71} { // FAT12/16 and FAT32 volume labels
		if strings.EqualFold(strings.TrimSpace(string(b[off:off+11])), "ir-vfd-dev") {
			return true
		}
	}
	return false
}

// superblockOffsets are filesystem and RAID signature locations from the
// start of a device or partition beyond its first MiB: the btrfs mirror
// superblocks.
var superblockOffsets = []int64{64 * MiB, 256 << 30}

// EraseMetadata wipes partition tables and filesystem signatures as IPA's
// erase_devices_metadata: for each partition of the GPT or MBR, its first
// and last MiB and the btrfs mirror superblocks; then the disk's first and
// last MiB (MBR, primary and backup GPT, signatures of a filesystem on the
// whole disk, md superblocks at the end). size 0 means the file's size.
func EraseMetadata(path string, size int64) error {
	pt, _ := ReadPartitions(path) // an unreadable table: wipe the ends anyway
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if size <= 0 {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	}
	wipe := func(off, n int64) error {
		off, n = max(off, 0), min(n, size-max(off, 0))
		if n <= 0 {
			return nil
		}
		return writeZeros(f, off, n)
	}
	var ranges [][2]int64
	add := func(start, length int64) {
		ranges = append(ranges, [2]int64{start, min(MiB, length)})
		if length > MiB {
			ranges = append(ranges, [2]int64{start + length - min(MiB, length-MiB), min(MiB, length-MiB)})
		}
		for _, o := range superblockOffsets {
			if o+4096 <= length {
				ranges = append(ranges, [2]int64{start + o, 4096})
			}
		}
	}
	for _, p := range pt.Partitions {
		add(p.Start, p.Size)
	}
	add(0, size)
	for _, r := range ranges {
		if err := wipe(r[0], r[1]); err != nil {
			return fmt.Errorf("zeroing %d bytes at offset %d: %w", r[1], r[0], err)
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	rereadPartitions(f)
	return nil
}

// eraseDevice is erase_devices for one disk: an NVMe secure format when
// the controller clearly supports it (Identify: OACS Format NVM), else a
// verified overwrite (OverwriteVerified). ATA secure erase is not
// attempted (it needs SG_IO pass-through and security state checks).
func (a *Agent) eraseDevice(ctx context.Context, d Disk) error {
	if strings.HasPrefix(d.Name, "/dev/nvme") {
		err := nvmeSecureFormat(d.Path)
		if err == nil {
			a.log.Info("NVMe secure format done", "device", d.Name)
			return nil
		}
		if !errors.Is(err, errNVMeFormatUnsupported) {
			return fmt.Errorf("NVMe format: %w", err)
		}
		a.log.Info("NVMe format not supported, overwriting", "device", d.Name, "reason", err.Error())
	}
	return OverwriteVerified(ctx, d.Path, d.Size, func(done, total int64) {
		a.Console("%s %s %d%%", "LIGHTSOUT-AGENT-ERASE", d.Name, done*100/max(total, 1))
	})
}

// ErrVerify is wrapped when read-back after an overwrite finds non-zero data.
var ErrVerify = errors.New("overwrite verification failed")

// OverwriteVerified zeroes the whole device (size 0: the file's size),
// flushes it, drops the cache and reads back the first and last MiB and
// 64 random 4 KiB blocks, which must all be zero. progress, if set, is
// called with the bytes written so far.
func OverwriteVerified(ctx context.Context, path string, size int64, progress func(done, total int64)) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if size <= 0 {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
	}
	zero := make([]byte, 4*MiB)
	last := time.Now()
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(zero)), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("writing at offset %d: %w", off, err)
		}
		off += n
		if progress != nil && time.Since(last) > 5*time.Second {
			progress(off, size)
			last = time.Now()
		}
	}
	dropCache(f)
	samples := [][2]int64{{0, min(MiB, size)}, {max(0, size-MiB), min(MiB, size)}}
	for range 64 {
		if size > 4096 {
			off := rand.Int64N(size/4096) * 4096
			samples = append(samples, [2]int64{off, 4096})
		}
	}
	buf := make([]byte, MiB)
	for _, s := range samples {
		b := buf[:s[1]]
		if _, err := f.ReadAt(b, s[0]); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading back offset %d: %w", s[0], err)
		}
		if i := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); i >= 0 {
			return fmt.Errorf("%w: byte %d is not zero after the overwrite", ErrVerify, s[0]+int64(i))
		}
	}
	return nil
}
