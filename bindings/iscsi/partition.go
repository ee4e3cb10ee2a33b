package iscsi

// Partition images (ironic-ilo-behaviour §5.1 `work_on_disk`): the
// conductor partitions the node's disk and writes the image into the root
// partition, all over the ramdisk's iSCSI target.
//
// How the bytes get there: every region is written with the same
// `qemu-img convert -n` as whole-disk images, with qemu's raw driver
// stacked on the iscsi driver as a window of the LUN
// (--target-image-opts driver=raw,offset=O,size=S,file.driver=iscsi,...).
// qemu-img then sees a disk of exactly that partition and cannot write
// outside it, converts qcow2 on the fly, writes the zeroes of the image
// (the partition's stale data never shows through the new filesystem),
// and the CHAP secret stays in the 0600 secret file. qemu-io was the other
// libiscsi path considered: its `write` takes data patterns, not files,
// so the partition table would have needed a command per sector run and
// a second error classifier; qemu-img's windows cover the table, the
// swap header, the config drive, the ESP and the image with one code path.
// There is no kernel initiator on lightsout's machines (no iscsi_tcp), so
// parted/mkfs on /dev/disk/by-path as Ironic did are not possible; the
// table is built in Go instead (go-diskfs, into a sparse local file of the
// disk's size), the swap header is built in Go (mkswap's format), and
// filesystems (ESP, ephemeral) are made by mkfs on local sparse files and
// then written extent by extent (extents.go).

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/google/uuid"
)

// Labels Ironic gives what it formats (§5.1).
const (
	SwapLabel      = "swap1"
	EphemeralLabel = "ephemeral0"
	ESPLabel       = "efi-part"
)

// PartitionOptions tunes one WritePartitionImage.
type PartitionOptions struct {
	Options
	Partitioning
	// EphemeralFormat is the filesystem made on the ephemeral partition
	// (mkfs.<format> -L ephemeral0); "" leaves the partition unformatted.
	EphemeralFormat string
	// ConfigDrive is instance_info.configdrive's content: base64 of a
	// gzipped image (Ironic's format), or the image itself; nil: none.
	ConfigDrive []byte
}

// PartitionResult describes a finished partition-image write.
type PartitionResult struct {
	Result
	Layout      Layout
	DiskID      string // GPT disk GUID, or the MBR signature as 0x%08x
	RootFS      FSInfo // the image's filesystem: RootFS.UUID is Ironic's "root uuid" (root=UUID=)
	SwapUUID    string
	EphemeralFS FSInfo // zero when left unformatted
	ESPFS       FSInfo // zero without an ESP
}

// RootPartUUID is the root partition's PARTUUID.
func (r PartitionResult) RootPartUUID() string {
	p, _ := r.Layout.Find(RoleRoot)
	return p.PartUUID
}

// ImageTooLargeForRoot is Ironic's §5.1 message for an image larger than
// the root partition, naming the field that sets its size.
func ImageTooLargeForRoot(imageBytes, rootMB int64) string {
	return TooLargeMessage(imageBytes, rootMB*mib) +
		fmt.Sprintf(" (instance_info.root_gb is %s: raise it or use a smaller image)", gbString(rootMB))
}

func gbString(mb int64) string {
	if mb%1024 == 0 {
		return fmt.Sprint(mb / 1024)
	}
	return fmt.Sprintf("%.3g", float64(mb)/1024)
}

// DecodeConfigDrive turns instance_info.configdrive's content into the
// image to write: base64 is decoded and gzip unpacked when present (IPA
// does the same). An image larger than MaxConfigDriveMB is refused.
func DecodeConfigDrive(data []byte) ([]byte, error) {
	d := bytes.TrimSpace(data)
	if len(d) == 0 {
		return nil, fmt.Errorf("instance_info.configdrive is empty")
	}
	if dec, err := base64.StdEncoding.DecodeString(string(d)); err == nil {
		d = dec
	} else {
		d = data
	}
	if len(d) >= 2 && d[0] == 0x1f && d[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(d))
		if err != nil {
			return nil, fmt.Errorf("instance_info.configdrive: bad gzip data: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, MaxConfigDriveMB*mib+1))
		if err != nil {
			return nil, fmt.Errorf("instance_info.configdrive: bad gzip data: %w", err)
		}
		d = out
	}
	if int64(len(d)) > MaxConfigDriveMB*mib {
		// Ironic's message, capitalised as Ironic writes it
		return nil, &Error{Kind: KindInvalid, Msg: fmt.Sprintf("Config drive size exceeds maximum limit of %dMiB (instance_info.configdrive)", MaxConfigDriveMB)}
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("instance_info.configdrive decodes to nothing")
	}
	return d, nil
}

// WritePartitionImage partitions the target's LUN as §5.1 and writes the
// partition image at path into its root partition, a swap signature to
// swap, the config drive to its partition, and filesystems to the ESP and
// (when o.EphemeralFormat is set) the ephemeral partition. Nothing is
// written before the image, the config drive, the login and the layout
// have been checked.
func WritePartitionImage(ctx context.Context, t Target, path string, o PartitionOptions) (PartitionResult, error) {
	var res PartitionResult
	if err := t.validate(); err != nil {
		return res, err
	}
	if o.WorkDir == "" {
		return res, &Error{Kind: KindInvalid, Msg: "a partition image needs a work directory (Options.WorkDir)"}
	}
	info, err := Inspect(ctx, qemuImg(o.Options), path, o.Format)
	if err != nil {
		return res, err
	}
	res.Format, res.ImageSize = info.Format, info.VirtualSize
	if o.RootMB > 0 && info.VirtualSize > o.RootMB*mib {
		return res, &Error{Kind: KindTooLarge, Msg: ImageTooLargeForRoot(info.VirtualSize, o.RootMB)}
	}
	if o.Checksum != "" {
		if err := VerifyChecksum(ctx, path, o.Checksum); err != nil {
			return res, err
		}
	}
	var cd []byte
	if o.ConfigDrive != nil {
		if cd, err = DecodeConfigDrive(o.ConfigDrive); err != nil {
			if _, ok := err.(*Error); ok {
				return res, err
			}
			return res, &Error{Kind: KindInvalid, Msg: err.Error(), Err: err}
		}
		o.ConfigDriveMB = MB(int64(len(cd)))
	}
	if f := o.EphemeralFormat; f != "" && !validFSName(f) {
		return res, &Error{Kind: KindInvalid, Msg: fmt.Sprintf("instance_info.ephemeral_format %q is not a filesystem name (ext4, xfs, vfat, ...)", f)}
	}
	tmp, err := os.MkdirTemp(o.WorkDir, ".partition-*")
	if err != nil {
		return res, &Error{Kind: KindTool, Msg: "creating a scratch directory in " + o.WorkDir + ": " + err.Error(), Err: err}
	}
	defer os.RemoveAll(tmp)
	if res.RootFS, err = imageFS(ctx, o.Options, path, info.Format, tmp); err != nil {
		return res, err
	}
	sec, cleanup, err := secretFile(t, o.Options)
	if err != nil {
		return res, err
	}
	defer cleanup()
	if res.DiskSize, err = lunSize(ctx, t, o.Options, sec); err != nil {
		return res, err
	}
	if res.Layout, err = PlanLayout(res.DiskSize, o.Partitioning); err != nil {
		return res, err
	}

	// everything is known: build the pieces locally, then write them
	head, tail, err := buildTable(&res, tmp)
	if err != nil {
		return res, err
	}
	pieces := []piece{{"partition table", head, "raw", window{Offset: 0, Size: mib}, nil}}
	if tail != "" {
		st, _ := os.Stat(tail)
		pieces = append(pieces, piece{"partition table (end of disk)", tail, "raw", window{Offset: res.DiskSize - st.Size(), Size: st.Size()}, nil})
	}
	for _, p := range res.Layout.Partitions {
		w := window{Offset: p.Start, Size: p.Size}
		switch p.Role {
		case RoleESP:
			f, fs, ex, err := mkfsFile(ctx, tmp, "vfat", ESPLabel, p.Size)
			if err != nil {
				return res, err
			}
			res.ESPFS = fs
			pieces = append(pieces, extentPieces("EFI system partition", f, p, ex)...)
		case RoleEphemeral:
			if o.EphemeralFormat == "" {
				// left unformatted: zero its first MiB so that no old
				// filesystem signature makes it look formatted (wipefs)
				f := filepath.Join(tmp, "wipe")
				if err := os.WriteFile(f, make([]byte, min(mib, p.Size)), 0o600); err != nil {
					return res, &Error{Kind: KindTool, Msg: "writing " + f + ": " + err.Error(), Err: err}
				}
				pieces = append(pieces, piece{"ephemeral partition's start (unformatted)", f, "raw", w, nil})
				continue
			}
			f, fs, ex, err := mkfsFile(ctx, tmp, o.EphemeralFormat, EphemeralLabel, p.Size)
			if err != nil {
				return res, err
			}
			res.EphemeralFS = fs
			pieces = append(pieces, extentPieces("ephemeral partition", f, p, ex)...)
		case RoleSwap:
			h, id, err := SwapHeader(p.Size, SwapLabel)
			if err != nil {
				return res, &Error{Kind: KindInvalid, Msg: "instance_info.swap_mb: " + err.Error()}
			}
			res.SwapUUID = id
			f := filepath.Join(tmp, "swap")
			if err := os.WriteFile(f, h, 0o600); err != nil {
				return res, &Error{Kind: KindTool, Msg: "writing the swap header: " + err.Error(), Err: err}
			}
			pieces = append(pieces, piece{"swap signature", f, "raw", w, nil})
		case RoleConfigDrive:
			f := filepath.Join(tmp, "configdrive")
			if err := os.WriteFile(f, cd, 0o600); err != nil {
				return res, &Error{Kind: KindTool, Msg: "writing the config drive: " + err.Error(), Err: err}
			}
			pieces = append(pieces, piece{"config drive", f, "raw", w, nil})
		case RoleRoot:
			pieces = append(pieces, piece{"image", path, info.Format, w, o.Progress})
		}
	}
	start := time.Now()
	for _, p := range pieces {
		if _, err := convert(ctx, t, o.Options, sec, p.src, p.format, &p.w, p.progress); err != nil {
			if e, ok := err.(*Error); ok {
				e.Msg = fmt.Sprintf("writing the %s (bytes %d+%d): %s", p.what, p.w.Offset, p.w.Size, e.Msg)
			}
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// piece is one write of WritePartitionImage: src (format) into window w.
type piece struct {
	what, src, format string
	w                 window
	progress          func(float64)
}

// extentPieces writes the ranges ex of the local filesystem file f into
// partition p, each at the same offset.
func extentPieces(what, f string, p Partition, ex [][2]int64) []piece {
	var out []piece
	for _, e := range ex {
		out = append(out, piece{what, f, "raw", window{Offset: p.Start + e[0], Size: e[1] - e[0], FromSource: true, SourceOffset: e[0]}, nil})
	}
	return out
}

func validFSName(f string) bool {
	if f == "" || len(f) > 16 {
		return false
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// imageFS reads the filesystem identity at the start of the image (a raw
// file is read directly; qcow2 through qemu-img dd).
func imageFS(ctx context.Context, o Options, path, format, tmp string) (FSInfo, error) {
	src := path
	if format != "raw" {
		src = filepath.Join(tmp, "probe")
		args := []string{"dd", "-f", format, "-O", "raw", fmt.Sprintf("bs=%d", FSProbeSize), "count=1", "if=" + path, "of=" + src}
		if _, stderr, err := run(ctx, qemuImg(o), args, nil); err != nil {
			return FSInfo{}, classifyLocal(ctx, path, stderr, err)
		}
	}
	f, err := os.Open(src)
	if err != nil {
		return FSInfo{}, &Error{Kind: KindImage, Msg: "reading image " + path + ": " + err.Error(), Err: err}
	}
	defer f.Close()
	fs, err := ReadFSInfo(f)
	if err != nil || fs.UUID == "" {
		return FSInfo{}, &Error{Kind: KindImage, Msg: fmt.Sprintf("Couldn't determine the UUID of the root partition: image %s has %v at its start"+
			" (a partition image is one filesystem; a whole-disk image must not set instance_info.kernel and ramdisk)", path, ErrNoFilesystem)}
	}
	return fs, nil
}

// mkfsFile makes a filesystem of the given type and label on a sparse
// local file of size bytes (Ironic: mkfs -t <fmt> -L <label> on the
// partition) and returns the file, what it holds, and the byte ranges of
// it to write (what mkfs touched, see extents).
func mkfsFile(ctx context.Context, dir, format, label string, size int64) (string, FSInfo, [][2]int64, error) {
	f := filepath.Join(dir, "fs-"+label)
	err := os.WriteFile(f, nil, 0o600)
	if err == nil {
		err = os.Truncate(f, size)
	}
	if err != nil {
		return "", FSInfo{}, nil, &Error{Kind: KindTool, Msg: "creating " + f + ": " + err.Error(), Err: err}
	}
	bin := "mkfs." + format
	var args []string
	switch format {
	case "vfat", "fat", "msdos":
		args = []string{"-n", label}
	case "ext2", "ext3", "ext4":
		// inode tables: lazy init (the kernel zeroes them after mounting,
		// mke2fs's default on a device); the journal is zeroed now, as
		// mke2fs does on a device (it fallocates the zeroes: see extents)
		args = []string{"-q", "-F", "-L", label, "-E", "lazy_itable_init=1,lazy_journal_init=0,nodiscard"}
	default:
		args = []string{"-L", label}
	}
	args = append(args, f)
	cmd := exec.CommandContext(ctx, bin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return "", FSInfo{}, nil, &Error{Kind: KindCancelled, Msg: "making a " + format + " filesystem: " + ctx.Err().Error(), Err: ctx.Err()}
		}
		if _, ok := err.(*exec.Error); ok {
			return "", FSInfo{}, nil, &Error{Kind: KindTool, Msg: fmt.Sprintf("%s not found: install the tools for %s (instance_info.ephemeral_format)", bin, format), Err: err}
		}
		return "", FSInfo{}, nil, &Error{Kind: KindTool, Msg: fmt.Sprintf("%s %s: %s", bin, label, firstLine(string(out), err)), Err: err}
	}
	r, err := os.Open(f)
	if err != nil {
		return "", FSInfo{}, nil, &Error{Kind: KindTool, Msg: err.Error(), Err: err}
	}
	defer r.Close()
	fs, _ := ReadFSInfo(r)
	ex, ok, err := extents(r)
	if err != nil {
		return "", FSInfo{}, nil, &Error{Kind: KindTool, Msg: "reading what mkfs wrote to " + f + ": " + err.Error(), Err: err}
	}
	if !ok { // no FIEMAP here: the whole partition is written, zeroes included
		ex = [][2]int64{{0, size}}
	}
	return f, fs, ex, nil
}

// buildTable writes res.Layout's partition table with go-diskfs into an
// in-memory image of the disk's two ends (no file of the disk's size is
// needed, whatever the disk's size and the work directory's filesystem),
// fills in the PARTUUIDs and the disk identifier, and returns two small
// files: the disk's first MiB (the table, then zeroes up to the first
// partition: old boot code and signatures go, as Ironic's metadata wipe)
// and its end (the GPT backup, or zeroes over a stale one on msdos; ""
// when a partition reaches the very end).
func buildTable(res *PartitionResult, dir string) (head, tail string, err error) {
	fail := func(err error) (string, string, error) {
		return "", "", &Error{Kind: KindTool, Msg: "building the partition table: " + err.Error(), Err: err}
	}
	size := res.DiskSize
	l := &res.Layout
	last := l.Partitions[len(l.Partitions)-1].End()
	from := max(size-gptTailBytes, last)
	f := &diskEnds{size: size, head: make([]byte, mib), tailOff: from, tail: make([]byte, size-from)}
	switch l.DiskLabel {
	case "gpt":
		disk := uuid.New()
		t := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true, GUID: disk.String()}
		for i := range l.Partitions {
			p := &l.Partitions[i]
			p.PartUUID = uuid.New().String()
			t.Partitions = append(t.Partitions, &gpt.Partition{Index: p.Number, Start: uint64(p.Start / sectorSize),
				End: uint64(p.End()/sectorSize - 1), Size: uint64(p.Size), Type: gptType(p.Role), Name: p.Role, GUID: p.PartUUID})
		}
		if err := t.Write(f, size); err != nil {
			return fail(err)
		}
		// go-diskfs truncates the protective partition's size to 32 bits:
		// a disk past 2 TiB gets 0xFFFFFFFF, as the UEFI spec says
		if sectors := size/sectorSize - 1; sectors > 0xFFFFFFFF {
			binary.LittleEndian.PutUint32(f.head[446+12:], 0xFFFFFFFF)
		}
		res.DiskID = disk.String()
	default:
		var sig [4]byte
		for binary.LittleEndian.Uint32(sig[:]) == 0 {
			if _, err := rand.Read(sig[:]); err != nil {
				return fail(err)
			}
		}
		id := binary.LittleEndian.Uint32(sig[:])
		t := &mbr.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize}
		for i := range l.Partitions {
			p := &l.Partitions[i]
			p.PartUUID = fmt.Sprintf("%08x-%02x", id, p.Number)
			t.Partitions = append(t.Partitions, &mbr.Partition{Bootable: p.Bootable, Type: mbrType(p.Role),
				Start: uint32(p.Start / sectorSize), Size: uint32(p.Size / sectorSize),
				// CHS unused (LBA only), as parted writes for large disks
				StartHead: 0xFE, StartSector: 0xFF, StartCylinder: 0xFF, EndHead: 0xFE, EndSector: 0xFF, EndCylinder: 0xFF})
		}
		if err := t.Write(f, size); err != nil {
			return fail(err)
		}
		copy(f.head[440:444], sig[:])
		res.DiskID = fmt.Sprintf("0x%08x", id)
	}
	head = filepath.Join(dir, "head")
	if err := os.WriteFile(head, f.head, 0o600); err != nil {
		return fail(err)
	}
	if len(f.tail) > 0 {
		tail = filepath.Join(dir, "tail")
		if err := os.WriteFile(tail, f.tail, 0o600); err != nil {
			return fail(err)
		}
	}
	return head, tail, nil
}

// diskEnds is a disk of size bytes of which only the first len(head) bytes
// and the len(tail) bytes from tailOff are kept (zeroes elsewhere): where
// a partition table lives. Writes elsewhere fail. It is the go-diskfs
// backend.WritableFile buildTable writes tables to.
type diskEnds struct {
	size       int64
	head, tail []byte
	tailOff    int64
	pos        int64
}

// span returns the kept bytes holding [off, off+n), or nil.
func (d *diskEnds) span(off int64, n int) []byte {
	end := off + int64(n)
	switch {
	case off >= 0 && end <= int64(len(d.head)):
		return d.head[off:end]
	case off >= d.tailOff && end <= d.size:
		return d.tail[off-d.tailOff : end-d.tailOff]
	}
	return nil
}

func (d *diskEnds) ReadAt(p []byte, off int64) (int, error) {
	if off >= d.size {
		return 0, io.EOF
	}
	n := len(p)
	if off+int64(n) > d.size {
		n = int(d.size - off)
	}
	if b := d.span(off, n); b != nil {
		copy(p, b)
	} else {
		clear(p[:n])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *diskEnds) WriteAt(p []byte, off int64) (int, error) {
	b := d.span(off, len(p))
	if b == nil {
		return 0, fmt.Errorf("write of %d bytes at %d is outside the disk's ends kept for the partition table", len(p), off)
	}
	return copy(b, p), nil
}

func (d *diskEnds) Read(p []byte) (int, error) {
	n, err := d.ReadAt(p, d.pos)
	d.pos += int64(n)
	return n, err
}

func (d *diskEnds) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += d.pos
	case io.SeekEnd:
		off += d.size
	}
	if off < 0 {
		return 0, fmt.Errorf("seek before the start of the disk")
	}
	d.pos = off
	return off, nil
}

func (d *diskEnds) Stat() (iofs.FileInfo, error) { return diskEndsInfo{d.size}, nil }
func (d *diskEnds) Close() error                 { return nil }

type diskEndsInfo struct{ size int64 }

func (i diskEndsInfo) Name() string        { return "disk" }
func (i diskEndsInfo) Size() int64         { return i.size }
func (i diskEndsInfo) Mode() iofs.FileMode { return 0o600 }
func (i diskEndsInfo) ModTime() time.Time  { return time.Time{} }
func (i diskEndsInfo) IsDir() bool         { return false }
func (i diskEndsInfo) Sys() any            { return nil }

func gptType(role string) gpt.Type {
	switch role {
	case RoleESP:
		return gpt.EFISystemPartition
	case RoleBIOSBoot:
		return gpt.BIOSBoot
	case RoleSwap:
		return gpt.LinuxSwap
	}
	return gpt.LinuxFilesystem
}

func mbrType(role string) mbr.Type {
	switch role {
	case RoleESP:
		return mbr.EFISystem
	case RoleSwap:
		return mbr.LinuxSwap
	}
	return mbr.Linux
}

// String summarises a layout for logs: "gpt: 1 efi 200MiB, 2 swap 8MiB, 3 root 1024MiB".
func (l Layout) String() string {
	var parts []string
	for _, p := range l.Partitions {
		parts = append(parts, fmt.Sprintf("%d %s %dMiB", p.Number, p.Role, p.Size/mib))
	}
	return l.DiskLabel + ": " + strings.Join(parts, ", ")
}
