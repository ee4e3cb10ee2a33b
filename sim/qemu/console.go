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
	changed chan struct{}
}

func (c *consoleBuf) write(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = append(c.data, p...)
	if n := len(c.data); n > consoleMax {
		c.data = append(c.data[:0], c.data[n-consoleMax:]...)
	}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// snapshot returns the cleaned output and a channel closed on the next write.
func (c *consoleBuf) snapshot() (string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return clean(string(c.data)), c.changed
}

func (c *consoleBuf) String() string {
	s, _ := c.snapshot()
	return s
}

func (c *consoleBuf) wait(ctx context.Context, marker string) (string, error) {
	for {
		s, ch := c.snapshot()
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
