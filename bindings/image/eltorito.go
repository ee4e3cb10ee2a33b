package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The El Torito boot catalog is not a directory tree and no reader library
// parses it (kdomanski/iso9660 does not); this is its reader.

// BootEntry is one El Torito boot catalog entry.
type BootEntry struct {
	Platform    string `json:"platform"` // "BIOS", "UEFI", "PPC", "Mac" or a hex id
	Bootable    bool   `json:"bootable"`
	Emulation   string `json:"emulation"` // "none", "floppy-1.2", "floppy-1.44", "floppy-2.88", "hard-disk"
	LoadSectors uint16 `json:"load_sectors"`
	LBA         uint32 `json:"lba"`
	File        string `json:"file,omitempty"` // path of the boot image file, when it is visible
}

// readElTorito returns the boot catalog entries of the ISO image r (nil
// when it has no El Torito boot record).
func readElTorito(r io.ReaderAt) ([]BootEntry, uint32, error) {
	var catalog uint32
	found := false
	for i := int64(16); i < 64 && !found; i++ {
		vd := make([]byte, isoBlock)
		if _, err := r.ReadAt(vd, i*isoBlock); err != nil {
			return nil, 0, fmt.Errorf("read volume descriptor %d: %w", i, err)
		}
		if string(vd[1:6]) != "CD001" || vd[0] == 255 {
			break
		}
		if vd[0] == 0 && strings.HasPrefix(string(vd[7:39]), "EL TORITO SPECIFICATION") {
			catalog = binary.LittleEndian.Uint32(vd[0x47:])
			found = true
		}
	}
	if !found {
		return nil, 0, nil
	}
	cat := make([]byte, isoBlock)
	if _, err := r.ReadAt(cat, int64(catalog)*isoBlock); err != nil {
		return nil, 0, fmt.Errorf("read boot catalog: %w", err)
	}
	if cat[0] != 1 || cat[0x1e] != 0x55 || cat[0x1f] != 0xAA {
		return nil, 0, errors.New("boot catalog has no valid validation entry")
	}
	platform := cat[1]
	var out []BootEntry
	entry := func(e []byte, plat byte) BootEntry {
		emu := [...]string{"none", "floppy-1.2", "floppy-1.44", "floppy-2.88", "hard-disk"}
		be := BootEntry{
			Platform:    platformName(plat),
			Bootable:    e[0] == 0x88,
			Emulation:   fmt.Sprintf("0x%02x", e[1]&0x0f),
			LoadSectors: binary.LittleEndian.Uint16(e[6:]),
			LBA:         binary.LittleEndian.Uint32(e[8:]),
		}
		if int(e[1]&0x0f) < len(emu) {
			be.Emulation = emu[e[1]&0x0f]
		}
		return be
	}
	out = append(out, entry(cat[32:64], platform))
	for off := 64; off+32 <= len(cat); {
		h := cat[off : off+32]
		if h[0] != 0x90 && h[0] != 0x91 {
			break
		}
		n := int(binary.LittleEndian.Uint16(h[2:]))
		plat := h[1]
		off += 32
		for j := 0; j < n && off+32 <= len(cat); j++ {
			if cat[off] == 0x44 { // extension entry
				off += 32
				continue
			}
			out = append(out, entry(cat[off:off+32], plat))
			off += 32
		}
		if h[0] == 0x91 {
			break
		}
	}
	return out, catalog, nil
}

func platformName(p byte) string {
	switch p {
	case 0:
		return "BIOS"
	case 1:
		return "PPC"
	case 2:
		return "Mac"
	case 0xef:
		return "UEFI"
	}
	return fmt.Sprintf("0x%02x", p)
}
