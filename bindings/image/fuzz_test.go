package image

import (
	"context"
	"testing"
)

// FuzzReadImage feeds arbitrary bytes to the ISO and FAT parsers that read
// user-supplied images (deploy ISOs, floppies): they must return errors,
// never panic or loop. To keep inputs small, data is read as an ISO whose
// first 16 (empty) sectors are implied, and as the head of a FAT image
// zero-padded to the size its boot sector claims (at most 4 MiB).
func FuzzReadImage(f *testing.F) {
	floppy, err := BuildFloppy(context.Background(), map[string]string{"a": "b"},
		FloppyOptions{Size: 64 << 10, Files: map[string]string{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(floppy[:6144])
	iso := make([]byte, 3*isoBlock)
	copy(iso, "\x01CD001\x01")
	iso[156], iso[156+2], iso[156+10] = 34, 18, 0 // root record: extent 18, size 0
	copy(iso[isoBlock:], "\x00CD001\x01EL TORITO SPECIFICATION")
	iso[isoBlock+0x47] = 18
	copy(iso[2*isoBlock:], "\xffCD001\x01")
	f.Add(iso)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := shiftedReaderAt{data: data, shift: 16 * isoBlock}
		_, _ = readISOTree(r)
		_, _, _ = writtenISORecords(r)
		_, _, _ = readElTorito(r)
		_, _ = rockRidgeName(r, data)

		img := append([]byte(nil), data...)
		if g, err := parseBPB(img, 4<<20); err == nil {
			if need := g.totalSectors * g.bytesPerSector; need > len(img) {
				img = append(img, make([]byte, need-len(img))...)
			}
			_, _ = reclaimLostClusters(img)
		}
	})
}

// shiftedReaderAt reads data as if it started at offset shift (zeros before).
type shiftedReaderAt struct {
	data  []byte
	shift int64
}

func (s shiftedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off+int64(n) < s.shift {
		p[n] = 0
		n++
	}
	if n == len(p) {
		return n, nil
	}
	m, err := bytesReaderAt(s.data).ReadAt(p[n:], off+int64(n)-s.shift)
	return n + m, err
}
