package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/runtime"
	"github.com/lightsout/lightsout/runtime/store"
)

func TestErrorKind(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"connection to iLO 127.0.0.1:40123 failed: EOF", "connection to iLO 127.0.0.1:40999 failed: EOF"},
		{"run timed out after 30s\ndetail", "run timed out after 45s"},
	} {
		if errorKind(tc.a) != errorKind(tc.b) {
			t.Errorf("%q and %q are different kinds: %q, %q", tc.a, tc.b, errorKind(tc.a), errorKind(tc.b))
		}
	}
	if errorKind("login failed") == errorKind("timeout") {
		t.Error("different errors of one kind")
	}
}

// The summary of 200 runs counts them by result, lists the slowest
// nodes first and groups the errors by kind.
func TestPrintSummary(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var results []runtime.Result
	for i := range 200 {
		r := runtime.Result{RunID: int64(i + 1), Node: fmt.Sprintf("n%03d", i), Status: store.StatusSucceeded,
			StartedAt: t0, FinishedAt: t0.Add(time.Duration(i%100) * time.Second)}
		switch {
		case i == 150:
			r.FinishedAt = t0.Add(time.Hour)
		case i%50 == 7:
			r.Status, r.Error = store.StatusFailed, fmt.Sprintf("connection to iLO 127.0.0.1:%d failed: EOF", 40000+i)
		case i == 9:
			r.Status, r.Error = store.StatusTimedOut, "run timed out: client_timeout"
		}
		results = append(results, r)
	}
	var b bytes.Buffer
	if err := printSummary(&b, results); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"200 runs", "succeeded  195", "failed     4", "timed_out  1",
		"slowest nodes", "n150  151  succeeded  1h0m0s",
		"4     n007     8    connection to iLO ADDR failed: EOF", "1     n009     10   run timed out: client_timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n") > 20 {
		t.Errorf("summary of 200 runs is %d lines:\n%s", strings.Count(out, "\n"), out)
	}
}

// Off a terminal, over many nodes, progress prints only the runs that did
// not succeed and a line at each tenth with the rate and the ETA.
func TestProgressQuietOffTerminal(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{w: &b, total: 100, start: now, now: func() time.Time { return now }, rows: map[int64]*liveRow{}, stop: make(chan struct{})}
	for i := range 100 {
		p.step(int64(i+1), fmt.Sprintf("n%d", i), "inspect")
		now = now.Add(100 * time.Millisecond)
		st := store.StatusSucceeded
		if i == 42 {
			st = store.StatusFailed
		}
		p.done(runtime.Result{RunID: int64(i + 1), Node: fmt.Sprintf("n%d", i), Status: st})
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 11 || !strings.Contains(out, "n42: run 43 failed") || strings.Contains(out, "inspect") {
		t.Fatalf("quiet progress:\n%s", out)
	}
	if !strings.Contains(lines[0], "[10/100] 1s, 10.0 nodes/s, ETA 9s") {
		t.Fatalf("first tenth %q, want the rate and ETA", lines[0])
	}
}
