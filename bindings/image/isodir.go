package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

const isoBlock = 2048

// isoRecord is one ISO 9660 directory record found by walkISO.
type isoRecord struct {
	Path   string // slash-separated, no leading slash; Rock Ridge name when present
	Extent uint32 // first logical block
	Size   uint32
	Dir    bool
	// where the record lives, for patching
	dirExtent uint32 // extent of the directory holding the record
	offset    int    // byte offset of the record inside that directory
}

// isoVolume is what walkISO reads from the primary volume descriptor.
type isoVolume struct {
	VolumeID   string
	Blocks     uint32 // volume space size
	rootExtent uint32
	rootSize   uint32
}

// readPVD reads the primary volume descriptor of the ISO image r.
func readPVD(r io.ReaderAt) (isoVolume, error) {
	for i := int64(16); i < 64; i++ {
		vd := make([]byte, isoBlock)
		if _, err := r.ReadAt(vd, i*isoBlock); err != nil {
			return isoVolume{}, fmt.Errorf("read volume descriptor %d: %w", i, err)
		}
		if string(vd[1:6]) != "CD001" {
			return isoVolume{}, errors.New("not an ISO 9660 image (no CD001 volume descriptor)")
		}
		switch vd[0] {
		case 1:
			root := vd[156 : 156+34]
			return isoVolume{
				VolumeID:   strings.TrimRight(string(vd[40:72]), " \x00"),
				Blocks:     binary.LittleEndian.Uint32(vd[80:]),
				rootExtent: binary.LittleEndian.Uint32(root[2:]),
				rootSize:   binary.LittleEndian.Uint32(root[10:]),
			}, nil
		case 255:
			return isoVolume{}, errors.New("ISO image has no primary volume descriptor")
		}
	}
	return isoVolume{}, errors.New("ISO image has no volume descriptor terminator")
}

// walkISO lists every directory record of the image (depth first, in
// on-disk order), naming entries by their Rock Ridge NM name when present.
func walkISO(r io.ReaderAt) (isoVolume, []isoRecord, error) {
	vol, err := readPVD(r)
	if err != nil {
		return vol, nil, err
	}
	var out []isoRecord
	seen := map[uint32]bool{}
	budget := int64(64 << 20) // total directory bytes read: bounds hostile images
	var walk func(dir string, extent, size uint32, depth int) error
	walk = func(dir string, extent, size uint32, depth int) error {
		if depth > 16 {
			return errors.New("ISO directory tree deeper than 16 levels")
		}
		if seen[extent] {
			return fmt.Errorf("ISO directory loop at block %d", extent)
		}
		seen[extent] = true
		budget -= int64(size)
		if budget < 0 {
			return fmt.Errorf("ISO directories are implausibly large (at %q, %d bytes)", dir, size)
		}
		// probe the last byte before allocating: a bogus size fails cheaply
		if size > 0 {
			if _, err := r.ReadAt(make([]byte, 1), int64(extent)*isoBlock+int64(size)-1); err != nil {
				return fmt.Errorf("read ISO directory %q: %w", dir, err)
			}
		}
		data := make([]byte, size)
		if _, err := r.ReadAt(data, int64(extent)*isoBlock); err != nil {
			return fmt.Errorf("read ISO directory %q: %w", dir, err)
		}
		for off := 0; off < len(data); {
			n := int(data[off])
			if n == 0 {
				off = (off/isoBlock + 1) * isoBlock // records never cross a block
				continue
			}
			if n < 34 || off+n > len(data) {
				return fmt.Errorf("corrupt directory record in %q at byte %d", dir, off)
			}
			rec := data[off : off+n]
			nameLen := int(rec[32])
			if 33+nameLen > n {
				return fmt.Errorf("corrupt directory record name in %q", dir)
			}
			id := rec[33 : 33+nameLen]
			if nameLen == 1 && (id[0] == 0 || id[0] == 1) {
				off += n
				continue
			}
			su := 33 + nameLen
			if nameLen%2 == 0 {
				su++
			}
			name, err := rockRidgeName(r, rec[min(su, n):])
			if err != nil {
				return fmt.Errorf("directory %q: %w", dir, err)
			}
			if name == "" {
				name = string(id)
				if i := strings.LastIndexByte(name, ';'); i >= 0 {
					name = name[:i]
				}
				name = strings.TrimSuffix(name, ".")
			}
			e := isoRecord{
				Path:      path.Join(dir, name),
				Extent:    binary.LittleEndian.Uint32(rec[2:]),
				Size:      binary.LittleEndian.Uint32(rec[10:]),
				Dir:       rec[25]&0x02 != 0,
				dirExtent: extent,
				offset:    off,
			}
			out = append(out, e)
			if e.Dir {
				if err := walk(e.Path, e.Extent, e.Size, depth+1); err != nil {
					return err
				}
			}
			off += n
		}
		return nil
	}
	err = walk("", vol.rootExtent, vol.rootSize, 0)
	return vol, out, err
}

// rockRidgeName returns the Rock Ridge NM name in the system use area su,
// following CE continuation areas; "" when there is none.
func rockRidgeName(r io.ReaderAt, su []byte) (string, error) {
	var name bytes.Buffer
	for hops := 0; hops < 8; hops++ {
		var next []byte
		for len(su) >= 4 {
			sig, l := string(su[0:2]), int(su[2])
			if l < 4 || l > len(su) {
				break
			}
			e := su[:l]
			switch sig {
			case "NM":
				if l >= 5 && e[4]&0x06 == 0 { // not CURRENT/PARENT
					name.Write(e[5:])
				}
			case "CE":
				if l >= 28 {
					blk := binary.LittleEndian.Uint32(e[4:])
					off := binary.LittleEndian.Uint32(e[12:])
					n := binary.LittleEndian.Uint32(e[20:])
					if n > isoBlock {
						return "", errors.New("oversized Rock Ridge continuation area")
					}
					next = make([]byte, n)
					if _, err := r.ReadAt(next, int64(blk)*isoBlock+int64(off)); err != nil {
						return "", fmt.Errorf("read Rock Ridge continuation area: %w", err)
					}
				}
			case "ST":
				su = nil
				continue
			}
			su = su[l:]
		}
		if next == nil {
			break
		}
		su = next
	}
	return name.String(), nil
}

// patchISORecords sets extent and size (both byte orders) of the records in
// recs to the values in want (keyed by Path) and writes them back to w.
func patchISORecords(rw interface {
	io.ReaderAt
	io.WriterAt
}, recs []isoRecord, want map[string][2]uint32) error {
	done := map[string]bool{}
	for _, e := range recs {
		v, ok := want[e.Path]
		if !ok || e.Dir {
			continue
		}
		b := make([]byte, 16)
		binary.LittleEndian.PutUint32(b[0:], v[0])
		binary.BigEndian.PutUint32(b[4:], v[0])
		binary.LittleEndian.PutUint32(b[8:], v[1])
		binary.BigEndian.PutUint32(b[12:], v[1])
		if _, err := rw.WriteAt(b, int64(e.dirExtent)*isoBlock+int64(e.offset)+2); err != nil {
			return fmt.Errorf("patch directory record of %s: %w", e.Path, err)
		}
		done[e.Path] = true
	}
	for p := range want {
		if !done[p] {
			return fmt.Errorf("directory record of %s not found in the ISO", p)
		}
	}
	return nil
}

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
