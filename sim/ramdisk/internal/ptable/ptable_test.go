package ptable

import (
	"bytes"
	"testing"
)

// FuzzRead feeds arbitrary disk heads (MBR/GPT-like) to Read.
func FuzzRead(f *testing.F) {
	gptHead := make([]byte, 2048)
	copy(gptHead[512:], "EFI PART")
	gptHead[512+72] = 2    // entries at LBA 2
	gptHead[512+80] = 4    // 4 entries
	gptHead[512+84] = 0x80 // of 128 bytes
	copy(gptHead[1024:], ESPType)
	mbr := make([]byte, 1024)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.Add(gptHead)
	f.Add(mbr)
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := Read(bytes.NewReader(data), "sda")
		if _, ok := out["root uuid"]; !ok {
			t.Fatal("no root uuid key")
		}
	})
}
