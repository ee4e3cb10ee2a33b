package localport

import (
	"net"
	"strconv"
	"testing"
)

// Free gives distinct bindable ports below the ephemeral range.
func TestFreeBelowEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p < base || p >= EphemeralStart() {
			t.Fatalf("port %d outside [%d, %d)", p, base, EphemeralStart())
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		defer l.Close() // held: the next Free must not return it
		if seen[p] {
			t.Fatalf("port %d returned twice while held", p)
		}
		seen[p] = true
	}
}
