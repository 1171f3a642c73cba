package attest

import (
	"context"
	"time"
)

// MinSaneTime is the default earliest time a clock may show and be trusted.
// Boards without a battery-backed clock boot at 1970 (or at their image's
// build date) until NTP or the modem's network time sets the clock.
var MinSaneTime = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// Clock decides whether the system clock can be trusted for report times.
// The zero value uses time.Now, MinSaneTime and a one-second poll.
type Clock struct {
	Now     func() time.Time // default time.Now
	MinTime time.Time        // default MinSaneTime: earlier readings are unsynchronised
	Poll    time.Duration    // how often Wait looks again; default 1s
}

func (c Clock) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Synced reports whether the clock shows a time at or after MinTime.
func (c Clock) Synced() bool {
	minTime := c.MinTime
	if minTime.IsZero() {
		minTime = MinSaneTime
	}
	return !c.now().Before(minTime)
}

// Stamp returns the current time in Unix milliseconds and whether the clock
// is synced, for Report.TimeMS and Report.ClockSynced.
func (c Clock) Stamp() (timeMS int64, synced bool) {
	return c.now().UnixMilli(), c.Synced()
}

// Wait waits until the clock is synced, for at most timeout (no limit when
// timeout <= 0, then only ctx ends it). It reports whether the clock became
// synced; on false the caller goes on and flags its reports
// (clock_synced: false) rather than never reporting.
func (c Clock) Wait(ctx context.Context, timeout time.Duration) bool {
	if c.Synced() {
		return true
	}
	poll := c.Poll
	if poll <= 0 {
		poll = time.Second
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return c.Synced()
		case <-t.C:
			if c.Synced() {
				return true
			}
		}
	}
}
