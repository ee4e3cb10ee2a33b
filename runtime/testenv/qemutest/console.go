package qemutest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]|\x1b[()][0-9A-B]`)

// Clean strips ANSI escapes and carriage returns from serial console text
// (OVMF and GRUB paint the screen with them).
func Clean(s string) string {
	return strings.ReplaceAll(ansiRE.ReplaceAllString(s, ""), "\r", "")
}

// Console is a serial console being captured: an io.Writer (qemu's serial
// output, a sim server's console stream) that tests wait on for marker
// lines. Safe for concurrent use.
type Console struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write
	closed  bool
	err     error // why the writer side ended, when it did
}

// NewConsole returns an empty console.
func NewConsole() *Console { return &Console{changed: make(chan struct{})} }

// Write appends p; it never fails.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// CloseWithError marks the end of the output (qemu exited): waiters that
// have not found their marker get err (or a plain "console closed").
func (c *Console) CloseWithError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed, c.err = true, err
	close(c.changed)
	c.changed = make(chan struct{})
}

// String returns everything written so far, cleaned of escapes and CRs.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Clean(string(c.buf))
}

// Len is the number of raw bytes written so far (an offset for WaitFrom).
func (c *Console) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

// FailMarkers are console lines that end a boot early: firmware, boot
// loader and kernel failures.
var FailMarkers = []string{"Kernel panic", "error: out of memory", "No bootable device",
	"Failed to boot both default and fallback entries", "not a bootable disk",
	"UEFI Interactive Shell", "Verification failed", "error: bad shim signature"}

// MarkerError is returned when a failure marker appeared, the console
// closed or the context ended before the wanted marker.
type MarkerError struct {
	Want   string
	Reason string // "failure marker \"...\"", "console closed: ...", "context deadline exceeded"
}

func (e *MarkerError) Error() string {
	return fmt.Sprintf("no %q on the console: %s", e.Want, e.Reason)
}

// Wait waits for the first line holding want and returns that line; see WaitFrom.
func (c *Console) Wait(ctx context.Context, want string, fails ...string) (string, error) {
	return c.WaitFrom(ctx, 0, want, fails...)
}

// WaitFrom waits until a line holding want appears in the output after raw
// byte offset from (a value of Len) and returns that whole line (cleaned).
// It fails with a *MarkerError when one of fails appears first (after from),
// when the console is closed without want, or when ctx ends.
func (c *Console) WaitFrom(ctx context.Context, from int, want string, fails ...string) (string, error) {
	for {
		c.mu.Lock()
		text := ""
		if from < len(c.buf) {
			text = Clean(string(c.buf[from:]))
		}
		changed, closed, cerr := c.changed, c.closed, c.err
		c.mu.Unlock()
		if i := strings.Index(text, want); i >= 0 {
			start := strings.LastIndexByte(text[:i], '\n') + 1
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				// the line is still being written: wait for its end unless closed
				if !closed {
					if err := waitChange(ctx, changed); err != nil {
						return text[start:], nil
					}
					continue
				}
				return text[start:], nil
			}
			return text[start : i+end], nil
		}
		for _, f := range fails {
			if strings.Contains(text, f) {
				return "", &MarkerError{Want: want, Reason: fmt.Sprintf("failure marker %q", f)}
			}
		}
		if closed {
			reason := "console closed"
			if cerr != nil {
				reason += ": " + cerr.Error()
			}
			return "", &MarkerError{Want: want, Reason: reason}
		}
		if err := waitChange(ctx, changed); err != nil {
			return "", &MarkerError{Want: want, Reason: err.Error()}
		}
	}
}

func waitChange(ctx context.Context, changed <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BootMarker is the line the test instance image prints once booted.
const BootMarker = "LIGHTSOUT-TEST-IMAGE-BOOTED"

var bootMarkerRE = regexp.MustCompile(`LIGHTSOUT-TEST-IMAGE-BOOTED firmware=(bios|uefi) secureboot=([01])`)

// ParseBootMarker reads the firmware ("bios" or "uefi") and the secure boot
// state from the test image's marker line; ok is false without a marker.
func ParseBootMarker(text string) (firmware string, secureBoot bool, ok bool) {
	m := bootMarkerRE.FindStringSubmatch(text)
	if m == nil {
		return "", false, false
	}
	return m[1], m[2] == "1", true
}
