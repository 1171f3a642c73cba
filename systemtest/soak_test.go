//go:build system

package systemtest

import (
	"os"
	"testing"
	"time"
)

// The long versions of the chaos tests (chaos_test.go), run by `make soak`
// (MODEMGUARD_SOAK=1, MODEMGUARD_SOAK_DURATION=30m by default). Without
// MODEMGUARD_SOAK=1 they skip: make test-system runs the short versions.

// soakDuration skips the test unless a soak was asked for and returns its
// length.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if os.Getenv("MODEMGUARD_SOAK") != "1" {
		t.Skip("soak tests run with MODEMGUARD_SOAK=1 (make soak)")
	}
	d := 30 * time.Minute
	if s := os.Getenv("MODEMGUARD_SOAK_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("MODEMGUARD_SOAK_DURATION=%q: want a duration such as 30m or 2h", s)
		}
	}
	return d
}

// TestSoakModemFaults repeats the module fault cycle (garbage, byte-by-byte
// answers, URCs mid-answer, reboots mid-command, dropped answers, the pty
// vanishing, module swaps) for the soak duration: the agent recovers and
// reports every time, and its goroutines, descriptors and RSS at the end
// are within small bounds of the first cycle's.
func TestSoakModemFaults(t *testing.T) {
	modemFaults(t, 0, soakDuration(t))
}

// TestSoakOutboxPowerLoss SIGKILLs the outbox writer for a tenth of the
// soak duration (at least a minute), with no cap on iterations.
func TestSoakOutboxPowerLoss(t *testing.T) {
	outboxPowerLoss(t, 1<<30, max(soakDuration(t)/10, time.Minute))
}
