// Package localport picks TCP ports on 127.0.0.1 that a later listener can
// still have: ports below the kernel's ephemeral range.
//
// A port found by listening on ":0" and closing comes from the ephemeral
// range, which the kernel hands to the next ":0" listener or outgoing
// connection on the host; a server told to bind it a moment later (a qemu
// port forward, a tgtd target, a Swift all-in-one) then fails with "address
// already in use". Ports below that range are only ever taken on purpose.
package localport

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// base is the lowest port handed out: above the privileged ports.
const base = 1024

// Free returns a port free on 127.0.0.1 below the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range; 32768 when unreadable), starting
// the search at a random place so concurrent callers rarely collide.
func Free() (int, error) {
	lo := EphemeralStart()
	span := lo - base
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	start := int(binary.LittleEndian.Uint64(buf[:]) % uint64(span))
	for i := 0; i < span && i < 4096; i++ {
		p := base + (start+i)%span
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("allocate a local port: no free port on 127.0.0.1 between %d and %d", base, lo)
}

// EphemeralStart is the first port of the kernel's ephemeral range
// (32768, Linux's default, when it cannot be read or is implausibly low).
func EphemeralStart() int {
	lo := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2*base {
				lo = v
			}
		}
	}
	return lo
}
