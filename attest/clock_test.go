package attest

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Inside a synctest bubble the clock starts at 2000-01-01: an unsynchronised
// board. NTP "arrives" when the fake time passes MinTime.
func TestClockWaitBecomesSynced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := Clock{MinTime: start.Add(90 * time.Second)}
		if c.Synced() {
			t.Fatal("synced before MinTime")
		}
		if !c.Wait(context.Background(), 3*time.Minute) {
			t.Fatal("Wait gave up although the clock became sane")
		}
		if d := time.Since(start); d < 90*time.Second || d > 92*time.Second {
			t.Errorf("Wait returned after %v, want about 90s", d)
		}
	})
}

func TestClockWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if (Clock{}).Wait(context.Background(), 2*time.Minute) {
			t.Fatal("a 2000-01-01 clock counted as synced")
		}
		if d := time.Since(start); d != 2*time.Minute {
			t.Errorf("gave up after %v, want 2m", d)
		}
		ms, synced := Clock{}.Stamp()
		if synced || ms != time.Now().UnixMilli() {
			t.Errorf("Stamp: %d %v", ms, synced)
		}
	})
}

func TestClockWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan bool)
		go func() { done <- (Clock{}).Wait(ctx, 0) }()
		time.Sleep(time.Hour) // fake time: lets the waiter run for an hour
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Wait without a timeout returned by itself")
		default:
		}
		cancel()
		if <-done {
			t.Error("cancelled Wait reported synced")
		}
	})
}

func TestClockSyncedNow(t *testing.T) {
	if !(Clock{}).Synced() {
		t.Skip("this machine's clock is before 2025; nothing to check")
	}
	if !(Clock{}).Wait(context.Background(), time.Second) {
		t.Error("Wait on a synced clock returned false")
	}
}
