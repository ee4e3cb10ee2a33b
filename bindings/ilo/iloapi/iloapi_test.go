package iloapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	tr, err := NewTransport(Options{Host: "127.0.0.1", Port: 1, Timeout: 300 * time.Millisecond, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.MinBackoff, tr.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	tests := []struct {
		name     string
		fn       func(n int) error
		code     Kind // kindOK: success
		attempts int  // exact, 0 = at least 2
	}{
		{"success after transient", func(n int) error {
			if n < 3 {
				return Transient("op", "busy", nil)
			}
			return nil
		}, kindOK, 3},
		{"permanent is not retried", func(int) error {
			return ILOError("op", &StatusError{Protocol: "ribcl", Status: "0x0035", Message: "bad"})
		}, KindILO, 1},
		{"login is not retried", func(int) error { return LoginFailed("op", "no", nil) }, KindLoginFailed, 1},
		{"transient until client_timeout", func(int) error { return Transient("op", "503", nil) }, KindTransient, 0},
	}
	for _, tc := range tests {
		n := 0
		start := time.Now()
		err := tr.Retry(context.Background(), "op", func(context.Context) error { n++; return tc.fn(n) })
		if outcome(err) != tc.code {
			t.Errorf("%s: kind %v (%v)", tc.name, outcome(err), err)
		}
		if (tc.attempts > 0 && n != tc.attempts) || (tc.attempts == 0 && n < 2) {
			t.Errorf("%s: %d attempts", tc.name, n)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("%s: took %s beyond client_timeout", tc.name, d)
		}
	}
	// A run cancelled mid-retry reports cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	err = tr.Retry(ctx, "op", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if KindOf(err) != KindCancelled {
		t.Errorf("cancelled: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	ls := NewLimiters(2)
	l := ls.Get("a:443")
	if ls.Get("a:443") != l || ls.Get("b:443") == l {
		t.Fatal("limiters must be per address")
	}
	ctx := context.Background()
	_ = l.Acquire(ctx)
	_ = l.Acquire(ctx)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third acquire: %v", err)
	}
	l.Release()
	if err := l.Acquire(ctx); err != nil || l.InFlight() != 2 {
		t.Fatalf("after release: %v %d", err, l.InFlight())
	}
}

func TestPinMismatchMessage(t *testing.T) {
	e := &PinMismatchError{Address: "h:443", Expected: "aa", Got: "bb"}
	if s := e.Error(); !contains(s, "aa") || !contains(s, "bb") {
		t.Fatal(s)
	}
}

func contains(s, sub string) bool { return index(s, sub) >= 0 }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// kindOK is the outcome of a call that succeeded.
const kindOK Kind = -1

// outcome is kindOK for nil, else the error's kind.
func outcome(err error) Kind {
	if err == nil {
		return kindOK
	}
	return KindOf(err)
}
