package iloapi

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// DefaultMaxConnections is the process-wide bound on open iLO connections
// when none is configured ([ilo] max_connections).
const DefaultMaxConnections = 1024

// ConnLimiter bounds the connections open to iLOs across a whole process
// (every node, every run): a dial waits for a free slot (bounded by its
// context) and the slot is given back when the connection closes. One
// value is shared by every Transport of a process. It is safe for
// concurrent use.
type ConnLimiter struct {
	slots chan struct{}
	open  atomic.Int64
	peak  atomic.Int64
}

// NewConnLimiter returns a limiter of n open connections (n < 1 means
// DefaultMaxConnections).
func NewConnLimiter(n int) *ConnLimiter {
	if n < 1 {
		n = DefaultMaxConnections
	}
	return &ConnLimiter{slots: make(chan struct{}, n)}
}

// Cap is the number of connections allowed open at once.
func (c *ConnLimiter) Cap() int { return cap(c.slots) }

// Open is the number of connections open now.
func (c *ConnLimiter) Open() int { return int(c.open.Load()) }

// Peak is the largest number of connections open at once so far.
func (c *ConnLimiter) Peak() int { return int(c.peak.Load()) }

// dial wraps dial: it takes a slot first (waiting while every slot is in
// use, until ctx ends) and returns a connection that frees it on Close.
func (c *ConnLimiter) dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for one of the %d iLO connections of this process ([ilo] max_connections): %w", cap(c.slots), ctx.Err())
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			<-c.slots
			return nil, err
		}
		n := c.open.Add(1)
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
		return &limitedConn{Conn: conn, free: c.release}, nil
	}
}

func (c *ConnLimiter) release() {
	c.open.Add(-1)
	<-c.slots
}

// limitedConn gives its slot back on its first Close.
type limitedConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (l *limitedConn) Close() error {
	err := l.Conn.Close()
	l.once.Do(l.free)
	return err
}
