package image

// This file is the one hand-written ISO 9660 directory walker left, and it
// serves only the ISO writer (iso.go): go-diskfs writes the payload files'
// directory records with size 0 and lightsout streams the payloads after
// the image, so the writer must find those records' on-disk positions to
// patch their extents and sizes. No reader library exposes record positions.
// Every other read of an ISO (files, directories, Rock Ridge names, volume
// id, file extents) goes through kdomanski/iso9660 in isoread.go.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

const isoBlock = 2048

// isoRecord is one ISO 9660 directory record found by writtenISORecords.
type isoRecord struct {
	Path   string // slash-separated, no leading slash; Rock Ridge name when present
	Extent uint32 // first logical block
	Size   uint32
	Dir    bool
	// where the record lives, for patching
	dirExtent uint32 // extent of the directory holding the record
	offset    int    // byte offset of the record inside that directory
}

// isoVolume is what readPVD reads from the primary volume descriptor.
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

// writtenISORecords lists every directory record of the ISO the writer just
// wrote (depth first, in on-disk order) with its position, naming entries
// by their Rock Ridge NM name when present. It stays bounded on any input.
func writtenISORecords(r io.ReaderAt) (isoVolume, []isoRecord, error) {
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

// rripIdentifier is the Rock Ridge extension identifier mkisofs, xorriso and
// genisoimage write, and the one kdomanski/iso9660 (our reader) requires.
const rripIdentifier = "RRIP_1991A"

// declareRRIP1991A rewrites the Rock Ridge ER record of the ISO the writer
// just wrote from go-diskfs' "IEEE_P1282" to "RRIP_1991A" (both ten bytes,
// in place). Readers that only know the 1991 identifier (kdomanski/iso9660,
// some firmware) otherwise ignore the Rock Ridge names and show 8.3 upper-case
// ISO 9660 names. The ER record lives in the system use area of the root's
// "." record or in its continuation (CE) area.
func declareRRIP1991A(rw interface {
	io.ReaderAt
	io.WriterAt
}) error {
	vol, err := readPVD(rw)
	if err != nil {
		return err
	}
	dot := make([]byte, 255)
	if _, err := rw.ReadAt(dot, int64(vol.rootExtent)*isoBlock); err != nil {
		return fmt.Errorf("read root directory: %w", err)
	}
	l := int(dot[0])
	if l < 34 || int(dot[32]) != 1 {
		return errors.New("root directory has no \".\" record")
	}
	suStart := 34 // 33 + identifier length 1, already even
	areas := []struct {
		off int64
		su  []byte
	}{{int64(vol.rootExtent)*isoBlock + int64(suStart), dot[suStart:l]}}
	for hop := 0; hop < len(areas) && hop < 8; hop++ {
		su, base := areas[hop].su, areas[hop].off
		for pos := 0; pos+4 <= len(su); {
			sig, n := string(su[pos:pos+2]), int(su[pos+2])
			if n < 4 || pos+n > len(su) {
				break
			}
			e := su[pos : pos+n]
			switch sig {
			case "ER":
				if n >= 8 && int(e[4]) == len(rripIdentifier) && 8+len(rripIdentifier) <= n {
					id := string(e[8 : 8+len(rripIdentifier)])
					if id == rripIdentifier {
						return nil
					}
					if id == "IEEE_P1282" {
						if _, err := rw.WriteAt([]byte(rripIdentifier), base+int64(pos)+8); err != nil {
							return fmt.Errorf("write Rock Ridge ER record: %w", err)
						}
						return nil
					}
				}
			case "CE":
				if n >= 28 {
					blk := binary.LittleEndian.Uint32(e[4:])
					off := binary.LittleEndian.Uint32(e[12:])
					size := binary.LittleEndian.Uint32(e[20:])
					if size > isoBlock {
						return errors.New("oversized Rock Ridge continuation area")
					}
					area := make([]byte, size)
					if _, err := rw.ReadAt(area, int64(blk)*isoBlock+int64(off)); err != nil {
						return fmt.Errorf("read Rock Ridge continuation area: %w", err)
					}
					areas = append(areas, struct {
						off int64
						su  []byte
					}{int64(blk)*isoBlock + int64(off), area})
				}
			case "ST":
				pos = len(su)
				continue
			}
			pos += n
		}
	}
	return errors.New("no Rock Ridge ER record found in the root directory")
}

// stampRecordTimes sets every directory record's date and every Rock Ridge
// TF time stamp (modify, access, attribute change: go-diskfs takes them
// from the staging tree, and a change time cannot be set there) of the ISO
// to t, which makes the image reproducible. TF entries in continuation
// areas are left alone (go-diskfs writes them in the record).
func stampRecordTimes(rw interface {
	io.ReaderAt
	io.WriterAt
}, t time.Time) error {
	vol, recs, err := writtenISORecords(rw)
	if err != nil {
		return err
	}
	u := t.UTC()
	date := []byte{byte(u.Year() - 1900), byte(u.Month()), byte(u.Day()), byte(u.Hour()), byte(u.Minute()), byte(u.Second()), 0}
	dirs := [][2]uint32{{vol.rootExtent, vol.rootSize}}
	for _, r := range recs {
		if r.Dir {
			dirs = append(dirs, [2]uint32{r.Extent, r.Size})
		}
	}
	for _, d := range dirs {
		data := make([]byte, d[1])
		if _, err := rw.ReadAt(data, int64(d[0])*isoBlock); err != nil {
			return fmt.Errorf("read ISO directory at block %d: %w", d[0], err)
		}
		for off := 0; off < len(data); {
			n := int(data[off])
			if n == 0 {
				off = (off/isoBlock + 1) * isoBlock
				continue
			}
			if n < 34 || off+n > len(data) {
				return fmt.Errorf("corrupt directory record at block %d byte %d", d[0], off)
			}
			rec := data[off : off+n]
			copy(rec[18:25], date)
			su := 33 + int(rec[32])
			if rec[32]%2 == 0 {
				su++
			}
			for i := su; i+4 <= n; {
				l := int(rec[i+2])
				if l < 4 || i+l > n {
					break
				}
				if rec[i] == 'T' && rec[i+1] == 'F' && l >= 5 && rec[i+4]&0x80 == 0 {
					for s := i + 5; s+7 <= i+l; s += 7 {
						copy(rec[s:s+7], date)
					}
				}
				i += l
			}
			off += n
		}
		if _, err := rw.WriteAt(data, int64(d[0])*isoBlock); err != nil {
			return fmt.Errorf("write ISO directory at block %d: %w", d[0], err)
		}
	}
	return nil
}
