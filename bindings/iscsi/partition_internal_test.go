package iscsi

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// A 20 TiB disk's table is built without a file of its size, reads back
// with go-diskfs, and its protective MBR covers the disk as the UEFI spec
// says for disks past 2 TiB (0xFFFFFFFF sectors).
func TestBuildTableLargeGPT(t *testing.T) {
	const size = 20 << 40
	l, err := PlanLayout(size, Partitioning{BootMode: "uefi", BootOption: "local", RootMB: 100 << 10, SwapMB: 4096})
	if err != nil {
		t.Fatal(err)
	}
	res := &PartitionResult{Layout: l}
	res.DiskSize = size
	dir := t.TempDir()
	head, tail, err := buildTable(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := os.ReadFile(head)
	tb, _ := os.ReadFile(tail)
	if len(hb) != 1<<20 || len(tb) != gptTailBytes {
		t.Fatalf("head %d bytes, tail %d bytes", len(hb), len(tb))
	}
	if got := binary.LittleEndian.Uint32(hb[446+12:]); got != 0xFFFFFFFF || hb[446+4] != 0xEE {
		t.Errorf("protective MBR type %#x size %#x, want 0xee / 0xffffffff", hb[446+4], got)
	}
	d := &diskEnds{size: size, head: hb, tail: tb, tailOff: size - gptTailBytes}
	tbl, err := gpt.Read(d, 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(tbl.GUID, res.DiskID) || len(tbl.Partitions) != 3 {
		t.Fatalf("read back %s with %d partitions, built %s", tbl.GUID, len(tbl.Partitions), res.DiskID)
	}
	for i, p := range tbl.Partitions {
		want := res.Layout.Partitions[i]
		if int64(p.Start)*512 != want.Start || int64(p.End+1)*512 != want.End() || !strings.EqualFold(p.GUID, want.PartUUID) {
			t.Errorf("partition %d read back %+v, built %+v", i+1, p, want)
		}
	}
	if tbl.Partitions[0].Type != gpt.EFISystemPartition || tbl.Partitions[1].Type != gpt.LinuxSwap {
		t.Errorf("types %s %s", tbl.Partitions[0].Type, tbl.Partitions[1].Type)
	}
	// writes outside the two ends are refused, not lost
	if _, err := d.WriteAt([]byte{1}, size/2); err == nil {
		t.Error("a write in the middle of the disk was accepted")
	}
}

// msdos: the signature is the disk identifier and the PARTUUIDs' prefix;
// a root partition reaching the last sector leaves no tail to write.
func TestBuildTableMsdosToTheEnd(t *testing.T) {
	l, err := PlanLayout(1025<<20, Partitioning{RootMB: 1024, BootOption: "local"})
	if err != nil {
		t.Fatal(err)
	}
	res := &PartitionResult{Layout: l}
	res.DiskSize = 1025 << 20
	head, tail, err := buildTable(res, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if tail != "" {
		t.Errorf("tail %q written over the root partition", tail)
	}
	hb, _ := os.ReadFile(head)
	sig := binary.LittleEndian.Uint32(hb[440:])
	if res.DiskID != "0x"+strings.Split(res.Layout.Partitions[0].PartUUID, "-")[0] || sig == 0 ||
		res.Layout.Partitions[0].PartUUID[9:] != "01" || hb[446] != 0x80 || hb[450] != 0x83 || hb[510] != 0x55 {
		t.Errorf("disk id %s, partuuid %s, boot flag %#x type %#x", res.DiskID, res.Layout.Partitions[0].PartUUID, hb[446], hb[450])
	}
}
