package luapattern

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A catastrophic pattern stops promptly when its context ends.
func TestMatchStopsOnCancel(t *testing.T) {
	p, err := Compile(strings.Repeat("(.-)", 12) + "b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	m, err := p.FindFirst(ctx, strings.Repeat("a", 5000), 0)
	if m != nil || err != context.DeadlineExceeded {
		t.Fatalf("got %v, %v; want deadline exceeded", m, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stopped after %v", d)
	}
}

// The backtracking stack is bounded like gopher-lua's recursion.
func TestMatchTooComplex(t *testing.T) {
	p, _ := Compile(".*b")
	_, err := p.FindFirst(context.Background(), strings.Repeat("a", MaxDepth+10), 0)
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("err = %v, want pattern/input too complex", err)
	}
}
