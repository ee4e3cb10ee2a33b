package deployagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
)

// FloppyLabel is the volume label of Ironic's virtual floppy.
const FloppyLabel = "ir-vfd-dev"

// maxFloppyDevice bounds the devices probed for the floppy (a virtual
// floppy is 1.44 MB, a few MiB at most).
const maxFloppyDevice = 64 << 20

// ErrNoFloppy is returned when no block device holds the virtual floppy.
var ErrNoFloppy = errors.New("no virtual floppy (FAT volume labelled ir-vfd-dev) found")

// ReadFloppyParams reads parameters.txt from a FAT12/FAT16 image or
// device at path (not mounted: read with go-diskfs). It fails when the
// volume label is not ir-vfd-dev (case-insensitive).
func ReadFloppyParams(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if !isVirtualFloppy(path) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoFloppy)
	}
	b := file.New(f, true)
	var fsys filesystem.FileSystem
	if fs12, err := fat12.Read(b, size, 0, 512); err == nil {
		fsys = fs12
	} else if fs16, err := fat16.Read(b, size, 0, 512); err == nil {
		fsys = fs16
	} else {
		return nil, fmt.Errorf("%s: not a FAT12/FAT16 volume: %w", path, err)
	}
	st, err := fsys.Stat("parameters.txt")
	if err != nil {
		return nil, fmt.Errorf("%s: parameters.txt: %w", path, err)
	}
	if st.Size() > 1<<20 {
		return nil, fmt.Errorf("%s: parameters.txt is %d bytes, too large", path, st.Size())
	}
	pf, err := fsys.OpenFile("/parameters.txt", os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s: parameters.txt: %w", path, err)
	}
	defer pf.Close()
	// go-diskfs may pad the file to whole sectors: cut to the entry's size
	data, err := io.ReadAll(io.LimitReader(pf, st.Size()))
	if err != nil {
		return nil, fmt.Errorf("%s: reading parameters.txt: %w", path, err)
	}
	return ParseParametersTxt(data), nil
}

// FindFloppyParams probes the small block devices under root/sys/class/block
// (device nodes root/dev/<name>) for the virtual floppy and returns its
// parameters and device path.
func FindFloppyParams(root string) (map[string]string, string, error) {
	root = rootOr(root)
	dir := filepath.Join(root, "sys", "class", "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", err
	}
	for _, e := range ents {
		name := e.Name()
		if hasAnyPrefix(name, []string{"loop", "ram", "zram", "dm-", "sr"}) {
			continue
		}
		sectors, _ := strconv.ParseInt(readSys(filepath.Join(dir, name), "size"), 10, 64)
		// a legacy floppy drive (fdN) reports size 0 until it is opened
		if (sectors <= 0 && !strings.HasPrefix(name, "fd")) || sectors*512 > maxFloppyDevice {
			continue
		}
		dev := filepath.Join(root, "dev", name)
		p, err := ReadFloppyParams(dev)
		if err == nil {
			return p, dev, nil
		}
	}
	return nil, "", ErrNoFloppy
}

// LoadParams reads root/proc/cmdline and, when IPA would (boot_method=vmedia
// or no ipa-api-url), the virtual floppy, waiting up to wait for it to
// appear (USB virtual media enumerates late). Floppy values win.
func LoadParams(ctx context.Context, root string, wait time.Duration) (Params, string, error) {
	root = rootOr(root)
	b, err := os.ReadFile(filepath.Join(root, "proc", "cmdline"))
	if err != nil {
		return Params{}, "", fmt.Errorf("reading the kernel command line: %w", err)
	}
	cmdline := ParseCmdline(string(b))
	raw := cmdline
	var floppyDev string
	if WantsFloppy(cmdline) {
		deadline := time.Now().Add(wait)
		for {
			fp, dev, err := FindFloppyParams(root)
			if err == nil {
				raw, floppyDev = MergeParams(cmdline, fp), dev
				break
			}
			if time.Now().After(deadline) {
				if cmdline["ipa-api-url"] == "" {
					return Params{}, "", fmt.Errorf("%w within %s and the kernel command line has no ipa-api-url", ErrNoFloppy, wait)
				}
				break
			}
			if !sleepCtx(ctx, 500*time.Millisecond) {
				return Params{}, "", ctx.Err()
			}
		}
	}
	p, err := ParseParams(raw)
	return p, floppyDev, err
}

// FormatParamsForLog lists the parameter names (never values: the token
// is a secret).
func FormatParamsForLog(raw map[string]string) string {
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	return strings.Join(keys, " ")
}
