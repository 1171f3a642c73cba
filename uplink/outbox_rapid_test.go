package uplink

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// outboxMachine drives an Outbox and a sender that follows the delivery
// rule (ackable) against an in-memory model: which seqs must still be in
// the outbox, in order, and how many were dropped.
type outboxMachine struct {
	dir      string
	path     string
	o        *Outbox
	cfg      OutboxConfig
	next     uint64
	epoch    uint64
	inFlight map[uint64]uint64 // seq -> epoch it was published in; the sender's memory, lost on crash

	want    []uint64 // model: seqs in the outbox, ascending
	dropped uint64
	gen     int // file generation, for crash copies
}

func (m *outboxMachine) payload(seq uint64) []byte { return []byte(fmt.Sprintf("payload-%d", seq)) }

func (m *outboxMachine) enqueue(rt *rapid.T) {
	m.next += uint64(rapid.IntRange(1, 3).Draw(rt, "seqStep")) // seqs may skip (an issued report lost before its commit)
	if err := m.o.Enqueue(m.next, m.payload(m.next)); err != nil {
		rt.Fatal(err)
	}
	m.want = append(m.want, m.next)
	for len(m.want) > m.cfg.MaxEntries {
		m.want = m.want[1:]
		m.dropped++
	}
}

// publish: the sender publishes the oldest k entries at the current epoch.
func (m *outboxMachine) publish(rt *rapid.T) {
	k := rapid.IntRange(1, 4).Draw(rt, "k")
	es, err := m.o.Peek(k)
	if err != nil {
		rt.Fatal(err)
	}
	for _, e := range es {
		m.inFlight[e.Seq] = m.epoch
	}
}

// puback: a PUBACK (token done, no error) arrives for one in-flight entry.
func (m *outboxMachine) puback(rt *rapid.T) {
	if len(m.inFlight) == 0 {
		rt.Skip("nothing in flight")
	}
	keys := make([]uint64, 0, len(m.inFlight))
	for s := range m.inFlight {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	s := rapid.SampledFrom(keys).Draw(rt, "seq")
	sentAt := m.inFlight[s]
	delete(m.inFlight, s)
	// The implementation's rule decides whether the sender acks ...
	if ackable(sentAt, m.epoch) {
		if err := m.o.Ack(s); err != nil {
			rt.Fatal(err)
		}
	}
	// ... the model says what must happen: a token completed across a
	// reconnect proves nothing, so the entry stays.
	if sentAt == m.epoch {
		if i := slices.Index(m.want, s); i >= 0 {
			m.want = slices.Delete(m.want, i, i+1)
		}
	}
}

// reconnect: the connection drops and comes back; tokens of the old
// connection may still complete (paho completes them on resend).
func (m *outboxMachine) reconnect(rt *rapid.T) { m.epoch++ }

// crash: the process dies without Close. What is on disk is what a copy of
// the file holds now (every commit was fsync'd); the sender's memory is gone.
func (m *outboxMachine) crash(rt *rapid.T) {
	b, err := os.ReadFile(m.path)
	if err != nil {
		rt.Fatal(err)
	}
	m.gen++
	path := filepath.Join(m.dir, fmt.Sprintf("outbox-%d.db", m.gen))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		rt.Fatal(err)
	}
	_ = m.o.db.Close() // only to release the old file; its state is not used
	m.reopenAt(rt, path)
}

func (m *outboxMachine) reopen(rt *rapid.T) {
	if err := m.o.Close(); err != nil {
		rt.Fatal(err)
	}
	m.reopenAt(rt, m.path)
}

func (m *outboxMachine) reopenAt(rt *rapid.T, path string) {
	o, err := OpenOutbox(path, m.cfg)
	if err != nil {
		rt.Fatal(err)
	}
	m.o, m.path = o, path
	m.inFlight = map[uint64]uint64{}
	m.epoch++
	if aside, _ := filepath.Glob(filepath.Join(m.dir, "*.corrupt-*")); len(aside) > 0 {
		rt.Fatalf("a cleanly written outbox was judged corrupt: %v", aside)
	}
}

func (m *outboxMachine) check(rt *rapid.T) {
	es, err := m.o.Peek(1 << 20)
	if err != nil {
		rt.Fatal(err)
	}
	got := make([]uint64, len(es))
	for i, e := range es {
		got[i] = e.Seq
		if string(e.Payload) != string(m.payload(e.Seq)) {
			rt.Fatalf("seq %d: payload %q", e.Seq, e.Payload)
		}
	}
	if !slices.Equal(got, m.want) {
		rt.Fatalf("outbox holds %v, model %v", got, m.want)
	}
	st := m.o.Stats()
	if st.Depth != len(m.want) || st.Dropped != m.dropped || st.LastSeq != m.next {
		rt.Fatalf("stats %+v, model depth %d dropped %d last %d", st, len(m.want), m.dropped, m.next)
	}
}

func TestOutboxStateMachine(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "outbox-rapid-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		m := &outboxMachine{dir: dir, path: filepath.Join(dir, "outbox.db"), inFlight: map[uint64]uint64{}}
		m.cfg = OutboxConfig{MaxEntries: rapid.IntRange(2, 12).Draw(rt, "maxEntries")}
		if m.o, err = OpenOutbox(m.path, m.cfg); err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = m.o.db.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"enqueue":   m.enqueue,
			"publish":   m.publish,
			"puback":    m.puback,
			"reconnect": m.reconnect,
			"crash":     m.crash,
			"reopen":    m.reopen,
			"":          m.check,
		})
	})
}
