package sim

import (
	"context"
	"testing"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// FuzzIPMIHandlers feeds arbitrary request bodies to the IPMI commands the
// simulator decodes itself (sensor reading and thresholds, SEL): none may
// panic, and a SEL entry answer is never longer than the record.
func FuzzIPMIHandlers(f *testing.F) {
	s, err := New(Options{Nodes: []NodeSpec{{Generation: Gen10, Count: 1}}, DiskSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	face := s.Server(0).ipmi
	face.srv.PowerOn()
	face.sync()
	f.Add(uint8(0), []byte{0x10})
	f.Add(uint8(3), []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0xff})
	f.Add(uint8(3), []byte{0x00, 0x00, 0xff, 0xff, 0x10, 0x05})
	f.Add(uint8(4), []byte{0x01, 0x00, 'C', 'L', 'R', 0xaa})
	hs := []func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error){
		face.handleGetSensorReading, face.handleGetSensorThresholds, face.handleGetSELInfo,
		face.handleGetSELEntry, face.handleClearSEL, face.handleReserveSEL, face.handleGetSELAllocInfo,
		face.handleGetSELTime, face.handleGetChassisStatus,
	}
	f.Fuzz(func(t *testing.T, which uint8, req []byte) {
		i := int(which) % len(hs)
		out, cc, _ := hs[i](context.Background(), &handlers.HandlerContext{}, req)
		if i == 3 && cc == types.CodeOK && len(out) > 2+16 {
			t.Fatalf("SEL entry answer of %d bytes", len(out))
		}
	})
}
