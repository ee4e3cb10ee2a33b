package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// fatGeometry is the part of a FAT12/16 BIOS parameter block the lost
// cluster fixer needs.
type fatGeometry struct {
	bytesPerSector    int
	sectorsPerCluster int
	reserved          int
	fats              int
	rootEntries       int
	sectorsPerFAT     int
	totalSectors      int
	fat12             bool
	maxCluster        uint32 // highest valid cluster number
}

func (g fatGeometry) fatOffset(i int) int {
	return (g.reserved + i*g.sectorsPerFAT) * g.bytesPerSector
}

func (g fatGeometry) rootOffset() int {
	return (g.reserved + g.fats*g.sectorsPerFAT) * g.bytesPerSector
}

func (g fatGeometry) dataOffset() int {
	return g.rootOffset() + (g.rootEntries*32+g.bytesPerSector-1)/g.bytesPerSector*g.bytesPerSector
}

func (g fatGeometry) clusterBytes() int { return g.sectorsPerCluster * g.bytesPerSector }

func parseFATGeometry(img []byte) (fatGeometry, error) {
	return parseBPB(img, int64(len(img)))
}

// parseBPB parses the FAT12/16 boot sector at the start of img, an image of
// imgSize bytes (img may hold only the boot sector).
func parseBPB(img []byte, imgSize int64) (fatGeometry, error) {
	if len(img) < 512 || img[510] != 0x55 || img[511] != 0xAA {
		return fatGeometry{}, errors.New("no FAT boot sector (missing 0x55AA signature)")
	}
	g := fatGeometry{
		bytesPerSector:    int(binary.LittleEndian.Uint16(img[11:])),
		sectorsPerCluster: int(img[13]),
		reserved:          int(binary.LittleEndian.Uint16(img[14:])),
		fats:              int(img[16]),
		rootEntries:       int(binary.LittleEndian.Uint16(img[17:])),
		totalSectors:      int(binary.LittleEndian.Uint16(img[19:])),
		sectorsPerFAT:     int(binary.LittleEndian.Uint16(img[22:])),
	}
	if g.totalSectors == 0 {
		g.totalSectors = int(binary.LittleEndian.Uint32(img[32:]))
	}
	switch {
	case g.bytesPerSector < 512 || g.bytesPerSector&(g.bytesPerSector-1) != 0,
		g.sectorsPerCluster == 0, g.fats == 0, g.sectorsPerFAT == 0, g.rootEntries == 0:
		return fatGeometry{}, errors.New("not a FAT12/FAT16 boot sector")
	}
	if int64(g.totalSectors)*int64(g.bytesPerSector) > imgSize {
		return fatGeometry{}, fmt.Errorf("FAT image is truncated: %d bytes, boot sector says %d",
			imgSize, g.totalSectors*g.bytesPerSector)
	}
	dataSectors := g.totalSectors - g.dataOffset()/g.bytesPerSector
	if dataSectors <= 0 {
		return fatGeometry{}, errors.New("FAT image has no data area")
	}
	clusters := dataSectors / g.sectorsPerCluster
	if clusters >= 65525 {
		return fatGeometry{}, errors.New("FAT32 is not handled")
	}
	g.fat12 = clusters < 4085
	g.maxCluster = uint32(clusters) + 1
	// the FAT may be too small for the computed cluster count
	entries := g.sectorsPerFAT * g.bytesPerSector * 2 / 3
	if !g.fat12 {
		entries = g.sectorsPerFAT * g.bytesPerSector / 2
	}
	if uint32(entries-1) < g.maxCluster {
		g.maxCluster = uint32(entries - 1)
	}
	return g, nil
}

func (g fatGeometry) get(fat []byte, n uint32) uint32 {
	if g.fat12 {
		o := n + n/2
		v := uint32(fat[o]) | uint32(fat[o+1])<<8
		if n&1 == 1 {
			return v >> 4
		}
		return v & 0x0FFF
	}
	return uint32(binary.LittleEndian.Uint16(fat[2*n:]))
}

func (g fatGeometry) set(fat []byte, n, val uint32) {
	if g.fat12 {
		o := n + n/2
		if n&1 == 1 {
			fat[o] = fat[o]&0x0F | byte(val<<4)
			fat[o+1] = byte(val >> 4)
		} else {
			fat[o] = byte(val)
			fat[o+1] = fat[o+1]&0xF0 | byte(val>>8)&0x0F
		}
		return
	}
	binary.LittleEndian.PutUint16(fat[2*n:], uint16(val))
}

func (g fatGeometry) isBad(v uint32) bool {
	if g.fat12 {
		return v == 0xFF7
	}
	return v == 0xFFF7
}

// reclaimLostClusters frees every allocated FAT12/16 cluster that no file or
// directory reaches (go-diskfs marks cluster 2 as the "root directory
// cluster" although FAT12/16 keep the root in a fixed region, and fsck.vfat
// then reports "Reclaimed 1 unused cluster" with exit status 1). It updates
// every FAT copy and returns how many clusters it freed.
func reclaimLostClusters(img []byte) (int, error) {
	g, err := parseFATGeometry(img)
	if err != nil {
		return 0, err
	}
	fat := img[g.fatOffset(0) : g.fatOffset(0)+g.sectorsPerFAT*g.bytesPerSector]
	reached := make([]bool, g.maxCluster+1)

	// follow marks the chain starting at c and returns its clusters.
	follow := func(c uint32) ([]uint32, error) {
		var chain []uint32
		for c >= 2 && c <= g.maxCluster {
			if reached[c] {
				return nil, fmt.Errorf("cluster %d is cross-linked", c)
			}
			reached[c] = true
			chain = append(chain, c)
			c = g.get(fat, c)
		}
		return chain, nil
	}

	var walk func(entries []byte, depth int) error
	walk = func(entries []byte, depth int) error {
		if depth > 32 {
			return errors.New("directory tree too deep")
		}
		for i := 0; i+32 <= len(entries); i += 32 {
			e := entries[i : i+32]
			switch {
			case e[0] == 0:
				return nil
			case e[0] == 0xE5, e[11] == 0x0F, e[11]&0x08 != 0:
				continue // deleted, long-name slot, volume label
			case e[0] == '.' && (e[1] == ' ' || e[1] == '.'):
				continue
			}
			start := uint32(binary.LittleEndian.Uint16(e[26:]))
			chain, err := follow(start)
			if err != nil {
				return err
			}
			if e[11]&0x10 == 0 {
				continue
			}
			var sub []byte
			for _, c := range chain {
				off := g.dataOffset() + int(c-2)*g.clusterBytes()
				if off+g.clusterBytes() > len(img) {
					return fmt.Errorf("directory cluster %d beyond the image", c)
				}
				sub = append(sub, img[off:off+g.clusterBytes()]...)
			}
			if err := walk(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	root := img[g.rootOffset() : g.rootOffset()+g.rootEntries*32]
	if err := walk(root, 0); err != nil {
		return 0, err
	}
	freed := 0
	for c := uint32(2); c <= g.maxCluster; c++ {
		v := g.get(fat, c)
		if v == 0 || reached[c] || g.isBad(v) {
			continue
		}
		for i := 0; i < g.fats; i++ {
			g.set(img[g.fatOffset(i):], c, 0)
		}
		freed++
	}
	return freed, nil
}

// stampFATDates sets the creation, access and modification dates of every
// directory entry of the FAT12/16 image img (".", ".." and the volume label
// included) to t, which go-diskfs takes from the clock.
func stampFATDates(img []byte, t time.Time) error {
	g, err := parseFATGeometry(img)
	if err != nil {
		return err
	}
	u := t.UTC()
	if u.Year() < 1980 {
		u = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	date := uint16((u.Year()-1980)<<9 | int(u.Month())<<5 | u.Day())
	clock := uint16(u.Hour()<<11 | u.Minute()<<5 | u.Second()/2)
	fat := img[g.fatOffset(0) : g.fatOffset(0)+g.sectorsPerFAT*g.bytesPerSector]
	seen := map[uint32]bool{}
	var walk func(chunks [][]byte, depth int) error
	walk = func(chunks [][]byte, depth int) error {
		if depth > 32 {
			return errors.New("directory tree too deep")
		}
		for _, entries := range chunks {
			for i := 0; i+32 <= len(entries); i += 32 {
				e := entries[i : i+32]
				if e[0] == 0 {
					return nil
				}
				if e[0] == 0xE5 || e[11] == 0x0F {
					continue
				}
				e[13] = 0
				binary.LittleEndian.PutUint16(e[14:], clock)
				binary.LittleEndian.PutUint16(e[16:], date)
				binary.LittleEndian.PutUint16(e[18:], date)
				binary.LittleEndian.PutUint16(e[22:], clock)
				binary.LittleEndian.PutUint16(e[24:], date)
				if e[11]&0x10 == 0 || e[11]&0x08 != 0 || e[0] == '.' && (e[1] == ' ' || e[1] == '.') {
					continue
				}
				var sub [][]byte
				for c := uint32(binary.LittleEndian.Uint16(e[26:])); c >= 2 && c <= g.maxCluster; c = g.get(fat, c) {
					if seen[c] {
						return fmt.Errorf("cluster %d is cross-linked", c)
					}
					seen[c] = true
					off := g.dataOffset() + int(c-2)*g.clusterBytes()
					if off+g.clusterBytes() > len(img) {
						return fmt.Errorf("directory cluster %d beyond the image", c)
					}
					sub = append(sub, img[off:off+g.clusterBytes()])
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk([][]byte{img[g.rootOffset() : g.rootOffset()+g.rootEntries*32]}, 0)
}
