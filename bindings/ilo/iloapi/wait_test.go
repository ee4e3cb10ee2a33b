package iloapi

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// fakeReset answers ok for upFor probes, then fails downFor probes, then
// answers ok again, counting probes.
type fakeReset struct {
	upFor, downFor int32
	n              atomic.Int32
}

func (f *fakeReset) probe(ctx context.Context) error {
	n := f.n.Add(1)
	if n > f.upFor && n <= f.upFor+f.downFor {
		return Transient("probe", "connection refused", errors.New("refused"))
	}
	return nil
}

func TestWaitUntilUp(t *testing.T) {
	const iv = 5 * time.Millisecond
	tests := []struct {
		name          string
		upFor, downFo int32
		settle, limit time.Duration
		wantCode      Kind // kindOK: success
		minProbes     int32
	}{
		{"goes down then up", 2, 3, time.Second, time.Second, kindOK, 6},
		{"never seen down: settle passes", 1000, 0, 30 * time.Millisecond, time.Second, kindOK, 2},
		{"never up again: transient at limit", 1, 1 << 30, 20 * time.Millisecond, 80 * time.Millisecond, KindTransient, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeReset{upFor: tt.upFor, downFor: tt.downFo}
			start := time.Now()
			err := WaitUntilUp(context.Background(), "reset_ilo", tt.settle, iv, tt.limit, f.probe)
			if outcome(err) != tt.wantCode {
				t.Fatalf("err = %v, want kind %v", err, tt.wantCode)
			}
			if f.n.Load() < tt.minProbes {
				t.Fatalf("%d probes, want >= %d", f.n.Load(), tt.minProbes)
			}
			if tt.wantCode == kindOK && tt.downFo > 0 && time.Since(start) >= tt.settle {
				t.Fatalf("took %s: it should return once the iLO is back, not wait out settle", time.Since(start))
			}
		})
	}
	login := func(context.Context) error {
		return LoginFailed("", "bad password", nil)
	}
	if err := WaitUntilUp(context.Background(), "reset_ilo", time.Second, iv, time.Second, login); KindOf(err) != KindLoginFailed {
		t.Fatalf("login failure: %v", err)
	}
}
