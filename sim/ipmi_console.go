package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bougou/go-ipmi/pkg/hal"
)

// consoleBacklog bounds the serial output kept for the next SOL attachment.
const consoleBacklog = 64 << 10

// simConsole is a server's serial port as SOL sees it: what the server
// prints (POST banner at power-on, lines written with [Server.ConsoleWrite],
// echo and a login prompt for what is typed) waits in a bounded buffer
// until a SOL session reads it.
type simConsole struct {
	name string
	poll func() // brings power events (the POST banner) up to date

	mu       sync.Mutex
	out      []byte
	line     []byte
	attached bool
}

// ConsoleWrite prints p on the server's serial console (what SOL shows):
// the emulated OS and ramdisk write their boot log here.
func (s *Server) ConsoleWrite(p []byte) {
	if s.ipmi == nil {
		return
	}
	s.ipmi.console.print(p)
}

func (c *simConsole) print(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, p...)
	if n := len(c.out); n > consoleBacklog {
		c.out = append(c.out[:0], c.out[n-consoleBacklog:]...)
	}
}

// Open implements hal.ConsoleHAL: one attachment at a time.
func (c *simConsole) Open(context.Context) (hal.ConsoleConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached {
		return nil, errors.New("sim: the serial console is already attached to a SOL session")
	}
	c.attached = true
	return &simConsoleConn{c: c}, nil
}

type simConsoleConn struct {
	c      *simConsole
	closed bool
}

// ReadAvailable implements hal.ConsoleConn: pending output, never blocking.
func (k *simConsoleConn) ReadAvailable(p []byte) (int, error) {
	c := k.c
	if c.poll != nil {
		c.poll()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := copy(p, c.out)
	c.out = c.out[:copy(c.out, c.out[n:])]
	return n, nil
}

// Write is what the SOL user types: echoed like a terminal; a line ends
// with an answer and a login prompt.
func (k *simConsoleConn) Write(p []byte) (int, error) {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		switch b {
		case '\r', '\n':
			if len(c.line) > 0 {
				c.out = append(c.out, fmt.Sprintf("\r\nyou typed: %s", c.line)...)
			}
			c.out = append(c.out, fmt.Sprintf("\r\n%s login: ", c.name)...)
			c.line = c.line[:0]
		default:
			c.out = append(c.out, b)
			if len(c.line) < 1024 {
				c.line = append(c.line, b)
			}
		}
	}
	return len(p), nil
}

func (k *simConsoleConn) Close() error {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	if !k.closed {
		k.closed = true
		k.c.attached = false
	}
	return nil
}

func (k *simConsoleConn) SendBreak(context.Context) error { return nil }

// ConsoleBacklog returns the serial output no SOL session has read yet
// (bounded), for tests and for capturing a console without IPMI.
func (s *Server) ConsoleBacklog() []byte {
	if s.ipmi == nil {
		return nil
	}
	c := s.ipmi.console
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.out...)
}
