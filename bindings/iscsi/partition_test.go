package iscsi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/bindings/iscsi"
	"github.com/lightsout/lightsout/runtime/testenv"
	"github.com/lightsout/lightsout/runtime/testenv/qemutest"
)

// blkidValue is blkid's low-level probe of one tag at offset of file.
func blkidValue(t testing.TB, file, tag string, offset int64) string {
	t.Helper()
	out, err := exec.Command("blkid", "-p", "-O", strconv.FormatInt(offset, 10), "-s", tag, "-o", "value", file).Output()
	if err != nil {
		t.Fatalf("blkid -p -O %d %s: %v", offset, file, err)
	}
	return strings.TrimSpace(string(out))
}

type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// sfdisk reads the disk file's partition table with sfdisk -J.
func sfdisk(t testing.TB, disk string) sfdiskTable {
	t.Helper()
	testenv.RequireTools(t, "sfdisk")
	out, err := exec.Command("sfdisk", "-J", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -J: %v: %s", err, out)
	}
	var st sfdiskTable
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("sfdisk output %s: %v", out, err)
	}
	return st
}

func configDrive(t testing.TB, n int) ([]byte, []byte) {
	t.Helper()
	raw := make([]byte, n)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return raw, []byte(base64.StdEncoding.EncodeToString(z.Bytes()))
}

// A partition image over a real tgtd with CHAP, BIOS (msdos) from a raw
// image and UEFI local boot (gpt, ESP) from qcow2: the table is what §5.1
// says as sfdisk reads it, the root partition holds the image byte for
// byte, swap/ESP/ephemeral are what blkid recognises, the config drive is
// in its partition and the filesystem UUID returned is the image's.
func TestWritePartitionImage(t *testing.T) {
	const secret = "partition-chap-secret"
	work := t.TempDir()
	img, fsUUID := qemutest.Ext4Image(t, work, 12)
	imgData, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	qcow := filepath.Join(work, "root.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", img, qcow).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cdRaw, cdEncoded := configDrive(t, 300<<10)

	for _, tc := range []struct {
		name, image string
		p           iscsi.Partitioning
		ephemeral   string
		label       string
		roles       []string
	}{
		{"bios raw", img, iscsi.Partitioning{BootMode: "bios", BootOption: "netboot", RootMB: 16, SwapMB: 8, EphemeralMB: 16},
			"", "dos", []string{"ephemeral", "swap", "configdrive", "root"}},
		{"uefi local qcow2", qcow, iscsi.Partitioning{BootMode: "uefi", BootOption: "local", RootMB: 16, SwapMB: 8, EphemeralMB: 16},
			"ext4", "gpt", []string{"efi", "ephemeral", "swap", "configdrive", "root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, disk, target := startTarget(t, 300<<20, "deployer", secret)
			// stale data everywhere the table and the partitions go: what
			// lightsout leaves unwritten must not matter to the filesystems
			junk := bytes.Repeat([]byte{0xA5}, 300<<20)
			if err := os.WriteFile(disk, junk, 0o644); err != nil {
				t.Fatal(err)
			}
			var progress []float64
			res, err := iscsi.WritePartitionImage(context.Background(), target, tc.image, iscsi.PartitionOptions{
				Options:      iscsi.Options{WorkDir: work, Progress: func(p float64) { progress = append(progress, p) }},
				Partitioning: tc.p, EphemeralFormat: tc.ephemeral, ConfigDrive: cdEncoded})
			if err != nil {
				t.Fatal(err)
			}
			noSecretFiles(t, work)
			if left, _ := filepath.Glob(filepath.Join(work, ".partition-*")); len(left) != 0 {
				t.Errorf("scratch files left: %v", left)
			}
			if len(progress) == 0 || progress[len(progress)-1] != 100 {
				t.Errorf("progress %v", progress)
			}
			if res.RootFS.UUID != fsUUID || res.RootFS.Type != "ext4" || res.RootFS.Label != "cloudimg-rootfs" {
				t.Errorf("root fs %+v, want ext4 %s (blkid)", res.RootFS, fsUUID)
			}

			st := sfdisk(t, disk)
			if st.PartitionTable.Label != tc.label || len(st.PartitionTable.Partitions) != len(tc.roles) {
				t.Fatalf("sfdisk: %+v, want %s with %v", st.PartitionTable, tc.label, tc.roles)
			}
			wantID := res.DiskID
			if tc.label == "gpt" {
				wantID = strings.ToUpper(wantID)
			}
			if st.PartitionTable.ID != wantID {
				t.Errorf("disk id %s, result says %s", st.PartitionTable.ID, res.DiskID)
			}
			for i, role := range tc.roles {
				sp, p := st.PartitionTable.Partitions[i], res.Layout.Partitions[i]
				if p.Role != role || sp.Start*512 != p.Start || sp.Size*512 != p.Size {
					t.Errorf("partition %d: sfdisk %+v, layout %+v, want role %s", i+1, sp, p, role)
				}
				// blkid's PARTUUID is what root=PARTUUID= and the result carry
				if tc.label == "gpt" && !strings.EqualFold(sp.UUID, p.PartUUID) {
					t.Errorf("partition %d uuid %s, result %s", i+1, sp.UUID, p.PartUUID)
				}
				if got := blkidPartUUID(t, disk, i+1); got != p.PartUUID {
					t.Errorf("partition %d PARTUUID (blkid) %s, result %s", i+1, got, p.PartUUID)
				}
			}
			part := func(role string) iscsi.Partition {
				p, ok := res.Layout.Find(role)
				if !ok {
					t.Fatalf("no %s partition in %s", role, res.Layout)
				}
				return p
			}
			root := part("root")
			if res.RootPartUUID() != root.PartUUID || root.PartUUID == "" {
				t.Errorf("RootPartUUID %q", res.RootPartUUID())
			}
			if got := qemutest.ReadAt(t, disk, root.Start, int64(len(imgData))); !bytes.Equal(got, imgData) {
				t.Error("the root partition does not hold the image byte for byte")
			}
			if got := blkidValue(t, disk, "UUID", root.Start); got != fsUUID {
				t.Errorf("root filesystem on disk %s, want %s", got, fsUUID)
			}
			swap := part("swap")
			if blkidValue(t, disk, "TYPE", swap.Start) != "swap" || blkidValue(t, disk, "LABEL", swap.Start) != "swap1" ||
				blkidValue(t, disk, "UUID", swap.Start) != res.SwapUUID {
				t.Errorf("swap partition is not a swap area labelled swap1 with UUID %s", res.SwapUUID)
			}
			cd := part("configdrive")
			if cd.Size != 1<<20 {
				t.Errorf("configdrive partition %d bytes, want the config drive rounded up to 1 MiB", cd.Size)
			}
			if got := qemutest.ReadAt(t, disk, cd.Start, int64(len(cdRaw))); !bytes.Equal(got, cdRaw) {
				t.Error("the configdrive partition does not hold the config drive")
			}
			eph := part("ephemeral")
			if tc.ephemeral == "" {
				if got := qemutest.ReadAt(t, disk, eph.Start, 4096); !bytes.Equal(got, make([]byte, 4096)) {
					t.Error("unformatted ephemeral partition does not start with zeroes (a stale signature could show through)")
				}
			} else {
				if blkidValue(t, disk, "TYPE", eph.Start) != "ext4" || blkidValue(t, disk, "LABEL", eph.Start) != "ephemeral0" {
					t.Error("ephemeral partition is not ext4 labelled ephemeral0")
				}
				// only what mkfs touched was written (the rest keeps the old
				// bytes, as with mkfs on the partition), zeroed journal included
				f := extract(t, disk, eph)
				fsck(t, "e2fsck", "-fn", f)
				sb := qemutest.ReadAt(t, f, 1024, 1024)
				bs := int64(1024) << binary.LittleEndian.Uint32(sb[24:])
				out, err := exec.Command("debugfs", "-R", "bmap <8> 100", f).Output()
				blk, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
				if err != nil || perr != nil || blk == 0 {
					t.Fatalf("debugfs bmap of the journal: %v %v %q", err, perr, out)
				}
				if got := qemutest.ReadAt(t, f, 6<<20, 8); !bytes.Equal(got, bytes.Repeat([]byte{0xA5}, 8)) {
					t.Errorf("bytes mkfs did not touch were written: %x", got)
				}
				if got := qemutest.ReadAt(t, f, blk*bs, bs); !bytes.Equal(got, make([]byte, bs)) {
					t.Error("the ephemeral filesystem's journal holds stale bytes: mkfs's zeroing was not written")
				}
			}
			if tc.p.BootOption == "local" && tc.p.BootMode == "uefi" {
				esp := part("efi")
				if st.PartitionTable.Partitions[0].Type != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || esp.Number != 1 {
					t.Errorf("ESP is not partition 1 of the ESP type: %+v", st.PartitionTable.Partitions[0])
				}
				if blkidValue(t, disk, "TYPE", esp.Start) != "vfat" || blkidValue(t, disk, "LABEL", esp.Start) != "efi-part" {
					t.Error("ESP is not vfat labelled efi-part")
				}
				fsck(t, "fsck.vfat", "-n", extract(t, disk, esp))
			}
			// stale bytes between the table and the first partition are gone
			if got := qemutest.ReadAt(t, disk, 64<<10, 4096); !bytes.Equal(got, make([]byte, 4096)) {
				t.Error("stale data left in the disk's first MiB")
			}
		})
	}
}

// extract copies partition p of the disk file to a file of its own.
func extract(t testing.TB, disk string, p iscsi.Partition) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), p.Role)
	if err := os.WriteFile(f, qemutest.ReadAt(t, disk, p.Start, p.Size), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// fsck runs a filesystem checker that must find nothing to repair.
func fsck(t testing.TB, args ...string) {
	t.Helper()
	testenv.RequireTools(t, args[0])
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Errorf("%v: %v\n%s", args, err, out)
	}
}

// blkidPartUUID is the PARTUUID libblkid gives partition n of the disk file.
func blkidPartUUID(t testing.TB, disk string, n int) string {
	t.Helper()
	out, err := exec.Command("sfdisk", "--part-uuid", disk, strconv.Itoa(n)).CombinedOutput()
	s := strings.ToLower(strings.TrimSpace(string(out)))
	if err == nil && s != "" {
		return s
	}
	// msdos: libblkid spells it <disk signature>-<partition number>
	id, err := exec.Command("sfdisk", "--disk-id", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(id)), "0x") + "-" + strconv.FormatInt(int64(n)+0x100, 16)[1:]
}

// Refusals write nothing: an image larger than root_gb (§5.1 message),
// partitions larger than the disk, an image without a filesystem, a wrong
// CHAP secret (login_failed, no secret in the message or left on disk).
func TestWritePartitionImageRefused(t *testing.T) {
	const secret = "right-partition-secret"
	work := t.TempDir()
	img, _ := qemutest.Ext4Image(t, work, 12)
	notFS, _ := randomImage(t, work, "random.raw", 1<<20)
	_, disk, target := startTarget(t, 64<<20, "deployer", secret)
	wrong := target
	wrong.CHAPSecret = "wrong-partition-secret"
	for _, tc := range []struct {
		name   string
		target iscsi.Target
		image  string
		p      iscsi.Partitioning
		kind   iscsi.Kind
		want   []string
	}{
		{"image larger than root", target, img, iscsi.Partitioning{RootMB: 8}, iscsi.KindTooLarge,
			[]string{"Root partition is too small for requested image. Image size: 12 MB, Root size: 8 MB", "instance_info.root_gb"}},
		{"partitions larger than the disk", target, img, iscsi.Partitioning{RootMB: 48, SwapMB: 32}, iscsi.KindTooLarge,
			[]string{"disk has 64 MiB", "instance_info.root_gb", "swap_mb"}},
		{"no filesystem in the image", target, notFS, iscsi.Partitioning{RootMB: 16}, iscsi.KindImage,
			[]string{"Couldn't determine the UUID of the root partition", "instance_info.kernel"}},
		{"wrong CHAP secret", wrong, img, iscsi.Partitioning{RootMB: 16}, iscsi.KindAuth,
			[]string{"CHAP", "driver_info.iscsi_chap", "deployer"}},
		{"config drive over 64 MiB", target, img, iscsi.Partitioning{RootMB: 16}, iscsi.KindInvalid,
			[]string{"Config drive size exceeds maximum limit of 64MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := iscsi.PartitionOptions{Options: iscsi.Options{WorkDir: work}, Partitioning: tc.p}
			if strings.Contains(tc.name, "config drive") {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				_, _ = zw.Write(make([]byte, 65<<20))
				_ = zw.Close()
				o.ConfigDrive = z.Bytes()
			}
			_, err := iscsi.WritePartitionImage(context.Background(), tc.target, tc.image, o)
			wantRefused(t, err, tc.kind, tc.want, work, secret, wrong.CHAPSecret)
		})
	}
	diskUntouched(t, disk)
}

// ReadFSInfo agrees with blkid on filesystems made by their own mkfs.
func TestReadFSInfoMatchesBlkid(t *testing.T) {
	testenv.RequireTools(t, "mke2fs", "mkfs.vfat", "blkid")
	dir := t.TempDir()
	for _, tc := range []struct {
		typ  string
		size int64
		cmd  []string
	}{
		{"ext2", 8 << 20, []string{"mke2fs", "-q", "-t", "ext2", "-L", "lbl"}},
		{"ext3", 8 << 20, []string{"mke2fs", "-q", "-t", "ext3", "-L", "lbl"}},
		{"ext4", 8 << 20, []string{"mke2fs", "-q", "-t", "ext4", "-L", "lbl"}},
		{"vfat", 8 << 20, []string{"mkfs.vfat", "-n", "LBL"}},               // FAT16
		{"vfat", 300 << 20, []string{"mkfs.vfat", "-F", "32", "-n", "LBL"}}, // FAT32
	} {
		f := filepath.Join(dir, tc.typ+strconv.FormatInt(tc.size, 10))
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(f, tc.size); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tc.cmd[0], append(tc.cmd[1:], f)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", tc.cmd, err, out)
		}
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := iscsi.ReadFSInfo(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		if want := blkidValue(t, f, "UUID", 0); fs.UUID != want || fs.Type != tc.typ || !strings.EqualFold(fs.Label, "lbl") {
			t.Errorf("%v: %+v, blkid says UUID %s", tc.cmd, fs, want)
		}
	}
	if _, err := iscsi.ReadFSInfo(bytes.NewReader(make([]byte, 1<<20))); !errors.Is(err, iscsi.ErrNoFilesystem) {
		t.Errorf("zeroes: %v", err)
	}
}

// SwapHeader writes what mkswap writes (same size, label and UUID).
func TestSwapHeaderMatchesMkswap(t *testing.T) {
	testenv.RequireTools(t, "mkswap")
	const size = 8<<20 + 12345
	h, id, err := iscsi.SwapHeader(size, "swap1")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "swap")
	if err := os.WriteFile(f, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkswap", "-L", "swap1", "-U", id, f).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v: %s", err, out)
	}
	if got := qemutest.ReadAt(t, f, 0, 4096); !bytes.Equal(got, h) {
		t.Fatal("SwapHeader differs from mkswap's first page")
	}
	if _, _, err := iscsi.SwapHeader(36<<10, "swap1"); err == nil {
		t.Fatal("a 9-page swap area was accepted")
	}
}

// DecodeConfigDrive takes Ironic's base64 of gzip, plain base64 or raw
// bytes, and refuses empty, broken gzip and oversized drives.
func TestDecodeConfigDrive(t *testing.T) {
	raw, enc := configDrive(t, 4096)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		err  string
	}{
		{"base64 of gzip (Ironic)", enc, raw, ""},
		{"base64 with a newline", append(append([]byte{}, enc...), '\n'), raw, ""},
		{"base64 of the image", []byte(base64.StdEncoding.EncodeToString(raw)), raw, ""},
		{"the image itself", raw, raw, ""},
		{"broken gzip", []byte(base64.StdEncoding.EncodeToString([]byte{0x1f, 0x8b, 1, 2, 3})), nil, "bad gzip"},
		{"empty", []byte("  "), nil, "instance_info.configdrive is empty"},
	} {
		got, err := iscsi.DecodeConfigDrive(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && (err != nil || !bytes.Equal(got, tc.want)):
			t.Errorf("%s: err %v, %d bytes", tc.name, err, len(got))
		}
	}
}
