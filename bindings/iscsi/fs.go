package iscsi

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// FSInfo identifies a filesystem from its superblock, as blkid reports it.
type FSInfo struct {
	Type  string // "ext2", "ext3", "ext4", "xfs", "btrfs" or "vfat"
	UUID  string // blkid's UUID= (what root=UUID= and /dev/disk/by-uuid use)
	Label string
}

// FSProbeSize is how much of the start of a filesystem ReadFSInfo needs
// (btrfs keeps its superblock at 64 KiB).
const FSProbeSize = 128 << 10

// ErrNoFilesystem is returned by ReadFSInfo when no known superblock is found.
var ErrNoFilesystem = errors.New("no ext2/3/4, xfs, btrfs or vfat superblock found")

// ReadFSInfo reads the filesystem type, UUID and label from the first
// FSProbeSize bytes of a filesystem (a partition image, not a disk).
func ReadFSInfo(r io.ReaderAt) (FSInfo, error) {
	b := make([]byte, FSProbeSize)
	n, err := r.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return FSInfo{}, err
	}
	b = b[:n]
	le16 := binary.LittleEndian.Uint16
	le32 := binary.LittleEndian.Uint32
	cstr := func(x []byte) string {
		if i := bytes.IndexByte(x, 0); i >= 0 {
			x = x[:i]
		}
		return string(bytes.TrimRight(x, " "))
	}
	// ext2/3/4: superblock at 1024, magic 0xEF53 at 0x38
	if len(b) >= 2048 && le16(b[1024+0x38:]) == 0xEF53 {
		sb := b[1024:2048]
		compat, incompat := le32(sb[0x5C:]), le32(sb[0x60:])
		typ := "ext2"
		switch {
		case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
			typ = "ext4"
		case compat&0x4 != 0: // has_journal
			typ = "ext3"
		}
		return FSInfo{Type: typ, UUID: uuidString(sb[0x68:0x78]), Label: cstr(sb[0x78:0x88])}, nil
	}
	// xfs: "XFSB" at 0, uuid at 32, fname at 108
	if len(b) >= 120 && string(b[0:4]) == "XFSB" {
		return FSInfo{Type: "xfs", UUID: uuidString(b[32:48]), Label: cstr(b[108:120])}, nil
	}
	// btrfs: superblock at 64 KiB, fsid at +0x20, magic at +0x40, label at +0x12B
	if len(b) >= 0x10000+0x22B && string(b[0x10040:0x10048]) == "_BHRfS_M" {
		sb := b[0x10000:]
		return FSInfo{Type: "btrfs", UUID: uuidString(sb[0x20:0x30]), Label: cstr(sb[0x12B:0x22B])}, nil
	}
	// vfat: boot sector signature, FAT32 or FAT12/16 extended BPB
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		switch {
		case string(b[0x52:0x57]) == "FAT32":
			return FSInfo{Type: "vfat", UUID: fatSerial(le32(b[0x43:])), Label: cstr(b[0x47:0x52])}, nil
		case string(b[0x36:0x39]) == "FAT":
			return FSInfo{Type: "vfat", UUID: fatSerial(le32(b[0x27:])), Label: cstr(b[0x2B:0x36])}, nil
		}
	}
	return FSInfo{}, ErrNoFilesystem
}

func uuidString(b []byte) string {
	u, _ := uuid.FromBytes(b)
	return u.String()
}

func fatSerial(v uint32) string { return fmt.Sprintf("%04X-%04X", v>>16, v&0xFFFF) }

// swapPageSize is the page size of the swap header (x86-64, as mkswap).
const swapPageSize = 4096

// SwapHeader returns the first page of a Linux swap area of size bytes in
// mkswap's format (version 1, "SWAPSPACE2", no bad pages) with the given
// label and a fresh UUID, which it returns. Writing this page is all
// `mkswap -L label` does to a device.
func SwapHeader(size int64, label string) ([]byte, string, error) {
	pages := size / swapPageSize
	if pages < 10 {
		return nil, "", fmt.Errorf("swap area of %d bytes is too small: mkswap needs at least 10 pages (40 KiB)", size)
	}
	if pages-1 > 0xFFFFFFFF {
		pages = 0xFFFFFFFF + 1
	}
	if len(label) > 16 {
		return nil, "", fmt.Errorf("swap label %q is longer than 16 bytes", label)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, "", err
	}
	id[6] = id[6]&0x0F | 0x40 // version 4
	id[8] = id[8]&0x3F | 0x80 // RFC 4122 variant
	h := make([]byte, swapPageSize)
	binary.LittleEndian.PutUint32(h[1024:], 1)               // version
	binary.LittleEndian.PutUint32(h[1028:], uint32(pages-1)) // last_page
	binary.LittleEndian.PutUint32(h[1032:], 0)               // nr_badpages
	copy(h[1036:1052], id[:])                                // sws_uuid
	copy(h[1052:1068], label)                                // sws_volume
	copy(h[swapPageSize-10:], "SWAPSPACE2")                  // magic
	return h, uuidString(id[:]), nil
}
