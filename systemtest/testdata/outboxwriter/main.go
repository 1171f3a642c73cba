// Command outboxwriter is the victim of the power-loss test
// (systemtest/chaos_test.go, TestChaosOutboxPowerLoss): it opens the outbox
// at the path given and enqueues entries as fast as it can, acknowledging
// the oldest ones so the file stays small, until it is killed. After each
// operation returns it prints a line on stdout, so the test knows what was
// durably committed when the SIGKILL landed:
//
//	open LASTSEQ DEPTH   the outbox opened
//	commit SEQ           Enqueue(SEQ) returned nil: SEQ is on disk
//	ack-start SEQ        Ack(SEQ) is about to be called: SEQ may go any moment
//	ack SEQ              Ack(SEQ) returned nil: SEQ is gone for good
//
// It lives under testdata so `go build ./...` and `go vet ./...` skip it;
// the test builds it by path.
package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/modemguard/modemguard/uplink"
)

// window is how many entries stay queued; older ones are acknowledged.
const window = 64

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: outboxwriter OUTBOX-PATH SEED")
		os.Exit(2)
	}
	seed, err := strconv.ParseUint(os.Args[2], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outboxwriter: seed:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ob, err := uplink.OpenOutbox(os.Args[1], uplink.OutboxConfig{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "outboxwriter:", err)
		os.Exit(1)
	}
	// Flushed after every line: a line is out before the next operation starts.
	out := bufio.NewWriterSize(os.Stdout, 64)
	say := func(format string, a ...any) {
		fmt.Fprintf(out, format+"\n", a...)
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
	st := ob.Stats()
	say("open %d %d", st.LastSeq, st.Depth)
	entries, err := ob.Peek(1 << 20)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outboxwriter: peek:", err)
		os.Exit(1)
	}
	queued := make([]uint64, 0, len(entries)+window)
	for _, e := range entries {
		queued = append(queued, e.Seq)
	}
	payload := make([]byte, 4096)
	for seq := st.LastSeq + 1; ; seq++ {
		n := 64 + rng.IntN(len(payload)-64)
		for i := range n {
			payload[i] = byte(seq) + byte(i)
		}
		if err := ob.Enqueue(seq, payload[:n]); err != nil {
			fmt.Fprintln(os.Stderr, "outboxwriter:", err)
			os.Exit(1)
		}
		say("commit %d", seq)
		queued = append(queued, seq)
		if len(queued) > window {
			// Acknowledge one to three of the oldest, as PUBACKs would.
			k := min(1+rng.IntN(3), len(queued)-window)
			acks := queued[:k]
			for _, s := range acks {
				say("ack-start %d", s)
			}
			if err := ob.Ack(acks...); err != nil {
				fmt.Fprintln(os.Stderr, "outboxwriter:", err)
				os.Exit(1)
			}
			for _, s := range acks {
				say("ack %d", s)
			}
			queued = queued[k:]
		}
	}
}
