package ipmi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lightsout/lightsout/sim/simtest"
)

// TestClosedSessionKeepsItsSocket: after closeSession, an exchange on the
// go-ipmi client (what its keepalive goroutine may still start) fails on
// the closed socket instead of finding go-ipmi's conn nil, which crashed
// the process from go-ipmi's own goroutine (v0.9.1, ExchangeUntilMatch).
func TestClosedSessionKeepsItsSocket(t *testing.T) {
	s := simtest.Start(t, "gen10=1")
	o, err := ParseDriverInfo(simtest.DriverInfo(s, 0))
	if err != nil {
		t.Fatal(err)
	}
	o.RetryTimeout, o.AttemptTimeout = 5*time.Second, time.Second
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gc, err := c.session(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gc.GetCurrentSessionInfo(ctx); err != nil {
		t.Fatalf("open session: %v", err)
	}
	c.closeSession(ctx, gc)
	_, err = gc.GetCurrentSessionInfo(ctx)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("an exchange after close: %v, want the closed socket's error (go-ipmi kept the socket)", err)
	}
}
