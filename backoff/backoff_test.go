package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffJitterAndCap(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 1600 * time.Millisecond}
	want := []time.Duration{100, 200, 400, 800, 1600, 1600}
	for i, w := range want {
		w *= time.Millisecond
		d := b.Next()
		if d < w/2 || d > w {
			t.Errorf("attempt %d: %v, want in [%v, %v]", i, d, w/2, w)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
	// Jitter: 50 draws at the cap are not all equal.
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct waits: no jitter", len(seen))
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if !Sleep(context.Background(), time.Minute) {
			t.Fatal("Sleep did not pass")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if Sleep(ctx, time.Hour) {
			t.Fatal("Sleep passed a cancelled context")
		}
	})
}
