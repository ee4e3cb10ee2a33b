package qemu

import (
	"context"
	"regexp"
	"strings"
	"sync"
)

// consoleMax bounds the serial output a node keeps in memory.
const consoleMax = 4 << 20

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]|\x1b[()][0-9A-B]`)

// clean removes ANSI escapes and carriage returns (OVMF's output is full
// of them).
func clean(s string) string {
	return strings.ReplaceAll(ansiRE.ReplaceAllString(s, ""), "\r", "")
}

// consoleBuf is a node's serial output since the backend started, with a
// channel closed on every write for waiters.
type consoleBuf struct {
	mu      sync.Mutex
	data    []byte
	dropped int // bytes trimmed from the front (data[0] is byte dropped of the stream)
	changed chan struct{}
}

func (c *consoleBuf) write(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = append(c.data, p...)
	if n := len(c.data); n > consoleMax {
		c.dropped += n - consoleMax
		c.data = append(c.data[:0], c.data[n-consoleMax:]...)
	}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// mark is the position of the end of the output (bytes since the start).
func (c *consoleBuf) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped + len(c.data)
}

// snapshot returns the cleaned output from position from and a channel
// closed on the next write.
func (c *consoleBuf) snapshot(from int) (string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	i := min(max(from-c.dropped, 0), len(c.data))
	return clean(string(c.data[i:])), c.changed
}

func (c *consoleBuf) String() string {
	s, _ := c.snapshot(0)
	return s
}

func (c *consoleBuf) wait(ctx context.Context, from int, marker string) (string, error) {
	for {
		s, ch := c.snapshot(from)
		if strings.Contains(s, marker) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}
