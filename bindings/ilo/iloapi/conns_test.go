package iloapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// A ConnLimiter of 2 lets two connections open; a third dial waits and
// fails when its context ends; closing one frees its slot (once, even when
// closed twice).
func TestConnLimiter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cl := NewConnLimiter(2)
	var d net.Dialer
	dial := cl.dial(d.DialContext)
	ctx := context.Background()
	a, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if cl.Open() != 2 || cl.Peak() != 2 {
		t.Fatalf("open %d peak %d, want 2 and 2", cl.Open(), cl.Peak())
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := dial(short, "tcp", ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third dial: %v, want a deadline error", err)
	}
	a.Close()
	a.Close()
	if cl.Open() != 1 {
		t.Fatalf("open %d after one close, want 1", cl.Open())
	}
	c, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial after a close: %v", err)
	}
	b.Close()
	c.Close()
	if cl.Open() != 0 || cl.Peak() != 2 {
		t.Fatalf("open %d peak %d at the end, want 0 and 2", cl.Open(), cl.Peak())
	}
}
