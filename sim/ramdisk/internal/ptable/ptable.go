// Package ptable reads the identifiers of MBR and GPT partition tables, as
// IPA reports them (standby.get_partition_uuids).
package ptable

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// ESPType is the ESP partition type GUID (C12A7328-F81F-11D2-BA4B-00A0C93EC93B) as stored on disk.
var ESPType = guidBytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")

// guidBytes encodes a GUID string in GPT's mixed-endian layout.
func guidBytes(s string) []byte {
	h, _ := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	out := make([]byte, 16)
	out[0], out[1], out[2], out[3] = h[3], h[2], h[1], h[0]
	out[4], out[5] = h[5], h[4]
	out[6], out[7] = h[7], h[6]
	copy(out[8:], h[8:])
	return out
}

// guidString decodes a GPT mixed-endian GUID.
func guidString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// Read returns what IPA's standby.get_partition_uuids reports for a
// whole-disk image on disk f: "root uuid" is the disk identifier (GPT disk
// GUID, or the MBR signature as 0x%08x), "efi system partition uuid" the
// ESP's unique GUID on GPT disks and "partitions" maps <name><n> to each GPT
// partition's GUID. Values are nil when the disk has no partition table.
func Read(f io.ReaderAt, name string) map[string]any {
	out := map[string]any{"root uuid": nil, "efi system partition uuid": nil, "partitions": map[string]any{}}
	head := make([]byte, 1024)
	if n, _ := f.ReadAt(head, 0); n < 1024 {
		return out
	}
	if bytes.Equal(head[512:520], []byte("EFI PART")) {
		out["root uuid"] = guidString(head[512+56 : 512+72])
		entriesLBA := binary.LittleEndian.Uint64(head[512+72:])
		count := binary.LittleEndian.Uint32(head[512+80:])
		size := binary.LittleEndian.Uint32(head[512+84:])
		if size < 128 || size > 4096 || count > 1024 || entriesLBA > 1<<40 {
			return out
		}
		buf := make([]byte, int(count)*int(size))
		n, _ := f.ReadAt(buf, int64(entriesLBA)*512)
		parts := map[string]any{}
		for i := 0; (i+1)*int(size) <= n; i++ {
			e := buf[i*int(size) : (i+1)*int(size)]
			if bytes.Equal(e[0:16], make([]byte, 16)) {
				continue
			}
			uid := guidString(e[16:32])
			parts[fmt.Sprintf("%s%d", name, i+1)] = uid
			if bytes.Equal(e[0:16], ESPType) && out["efi system partition uuid"] == nil {
				out["efi system partition uuid"] = uid
			}
		}
		out["partitions"] = parts
		return out
	}
	if head[510] == 0x55 && head[511] == 0xaa {
		out["root uuid"] = fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(head[440:444]))
	}
	return out
}
