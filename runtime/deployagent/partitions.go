package deployagent

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// Partition is one partition of a disk's table.
type Partition struct {
	Number int
	Start  int64 // bytes
	Size   int64 // bytes
	GUID   string
	ESP    bool
}

// PartitionTable is what ReadPartitions found.
type PartitionTable struct {
	Kind       string // "gpt", "mbr" or "" (none)
	DiskID     string // GPT disk GUID (lower case) or MBR signature as 0x%08x
	Partitions []Partition
}

// ReadPartitions reads the GPT (with go-diskfs; the backup header when the
// primary is damaged) or else the MBR of the disk at path.
func ReadPartitions(path string) (PartitionTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return PartitionTable{}, err
	}
	defer f.Close()
	b := file.New(f, true)
	if t, err := gpt.Read(b, 512, 512); err == nil {
		pt := PartitionTable{Kind: "gpt", DiskID: strings.ToLower(t.GUID)}
		for _, p := range t.Partitions {
			if p == nil || p.Type == gpt.Unused {
				continue
			}
			pt.Partitions = append(pt.Partitions, Partition{Number: p.Index, Start: int64(p.Start) * 512,
				Size: int64(p.End-p.Start+1) * 512, GUID: strings.ToLower(p.GUID), ESP: p.Type == gpt.EFISystemPartition})
		}
		return pt, nil
	}
	head := make([]byte, 512)
	if n, _ := f.ReadAt(head, 0); n < 512 || head[510] != 0x55 || head[511] != 0xaa {
		return PartitionTable{}, nil
	}
	pt := PartitionTable{Kind: "mbr", DiskID: fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(head[440:444]))}
	if t, err := mbr.Read(b, 512, 512); err == nil {
		for i, p := range t.Partitions {
			if p == nil || p.Type == mbr.Empty || p.Size == 0 {
				continue
			}
			pt.Partitions = append(pt.Partitions, Partition{Number: i + 1, Start: int64(p.Start) * 512, Size: int64(p.Size) * 512, ESP: p.Type == mbr.EFISystem})
		}
	}
	return pt, nil
}

// partName is the kernel's name of partition n of disk name (sda1, nvme0n1p1).
func partName(name string, n int) string {
	base := filepath.Base(name)
	if base != "" && unicode.IsDigit(rune(base[len(base)-1])) {
		return fmt.Sprintf("%sp%d", base, n)
	}
	return fmt.Sprintf("%s%d", base, n)
}

// imageDisk is the disk the image went to (prepare_image's), else the
// root device the hints pick (the image was written over iSCSI).
func (a *Agent) imageDisk() (*Disk, *RESTError) {
	a.mu.Lock()
	dev := a.rootDisk
	a.mu.Unlock()
	if dev != nil {
		return dev, nil
	}
	d, err := a.RootDevice()
	if err != nil {
		return nil, execError("finding the root device: %v", err)
	}
	return &d, nil
}

// getPartitionUUIDs answers standby.get_partition_uuids for the disk the
// image went to: "root uuid" is the disk identifier, "efi system partition
// uuid" the ESP's GUID, "partitions" maps partition names to GUIDs.
func (a *Agent) getPartitionUUIDs(context.Context, map[string]any) (any, *RESTError) {
	dev, rerr := a.imageDisk()
	if rerr != nil {
		return nil, rerr
	}
	pt, err := ReadPartitions(dev.Path)
	if err != nil {
		return nil, execError("reading the partition table of %s: %v", dev.Name, err)
	}
	out := map[string]any{"root uuid": nil, "efi system partition uuid": nil, "partitions": map[string]any{}}
	if pt.Kind == "" {
		return out, nil
	}
	out["root uuid"] = pt.DiskID
	parts := map[string]any{}
	for _, p := range pt.Partitions {
		if p.GUID == "" {
			continue
		}
		parts[partName(dev.Name, p.Number)] = p.GUID
		if p.ESP && out["efi system partition uuid"] == nil {
			out["efi system partition uuid"] = p.GUID
		}
	}
	out["partitions"] = parts
	return out, nil
}
