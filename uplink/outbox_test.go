package uplink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openOutbox(t testing.TB, path string, cfg OutboxConfig) *Outbox {
	t.Helper()
	o, err := OpenOutbox(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.db.Close() })
	return o
}

func seqs(t testing.TB, o *Outbox) []uint64 {
	t.Helper()
	es, err := o.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
		if want := fmt.Sprintf("payload-%d", e.Seq); string(e.Payload) != want {
			t.Fatalf("seq %d payload %q, want %q", e.Seq, e.Payload, want)
		}
	}
	return out
}

func enqueue(t testing.TB, o *Outbox, from, to uint64) {
	t.Helper()
	for s := from; s <= to; s++ {
		if err := o.Enqueue(s, []byte(fmt.Sprintf("payload-%d", s))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOutboxEnqueuePeekAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "outbox.db")
	o := openOutbox(t, path, OutboxConfig{})
	enqueue(t, o, 1, 5)
	if got := seqs(t, o); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("peek %v", got)
	}
	es, _ := o.Peek(2)
	if len(es) != 2 || es[0].Seq != 1 {
		t.Fatalf("peek 2: %v", es)
	}
	if err := o.Ack(1, 3, 99); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, o); fmt.Sprint(got) != "[2 4 5]" {
		t.Fatalf("after ack: %v", got)
	}
	st := o.Stats()
	if st.Depth != 3 || st.LastSeq != 5 || st.Bytes != int64(3*len("payload-2")) {
		t.Errorf("stats %+v", st)
	}
	if err := o.Enqueue(5, []byte("again")); err == nil || !strings.Contains(err.Error(), "not above") {
		t.Errorf("re-enqueue of seq 5: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o2 := openOutbox(t, path, OutboxConfig{})
	if got := seqs(t, o2); fmt.Sprint(got) != "[2 4 5]" {
		t.Fatalf("after reopen: %v", got)
	}
	if o2.Stats().LastSeq != 5 {
		t.Errorf("last seq not kept: %+v", o2.Stats())
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("outbox file mode %v", fi.Mode().Perm())
	}
}

func TestOutboxBounds(t *testing.T) {
	logs := &syncBuffer{}
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := openOutbox(t, path, OutboxConfig{MaxEntries: 3, Logger: testLogger(logs)})
	enqueue(t, o, 1, 5)
	if got := seqs(t, o); fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("entries bound: %v", got)
	}
	if d := o.Stats().Dropped; d != 2 {
		t.Fatalf("dropped %d, want 2", d)
	}
	if !strings.Contains(logs.String(), "dropped the oldest") {
		t.Errorf("no drop log line:\n%s", logs)
	}
	o.Close()
	o = openOutbox(t, path, OutboxConfig{MaxBytes: 20})
	if d := o.Stats().Dropped; d != 2 {
		t.Fatalf("dropped count not persisted: %d", d)
	}
	enqueue(t, o, 6, 6) // 3 entries of 9 bytes + 1 = 36 > 20 bytes: keep 2
	if got := seqs(t, o); fmt.Sprint(got) != "[5 6]" {
		t.Fatalf("bytes bound: %v", got)
	}
	if err := o.Enqueue(7, make([]byte, 21)); err == nil {
		t.Error("an entry larger than MaxBytes was accepted")
	}
}

func TestOutboxMaxAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), OutboxConfig{MaxAge: time.Hour, Now: clock})
	enqueue(t, o, 1, 2)
	now = now.Add(40 * time.Minute)
	enqueue(t, o, 3, 3)
	now = now.Add(30 * time.Minute) // 1 and 2 are 70 minutes old
	if got := seqs(t, o); fmt.Sprint(got) != "[3]" {
		t.Fatalf("after expiry: %v", got)
	}
	if o.Stats().Dropped != 2 {
		t.Errorf("stats %+v", o.Stats())
	}
}

func TestOutboxCorruptFileMovedAside(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":    bytes.Repeat([]byte("not a bbolt file "), 1000),
		"short":      []byte("x"),
		"zero pages": make([]byte, 16384),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "outbox.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &syncBuffer{}
			o := openOutbox(t, path, OutboxConfig{Logger: testLogger(logs)})
			enqueue(t, o, 1, 1)
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("corrupt file not moved aside: %v", aside)
			}
			kept, _ := os.ReadFile(aside[0])
			if !bytes.Equal(kept, content) {
				t.Error("the moved file is not the original")
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "corrupt") || !strings.Contains(l, aside[0]) {
				t.Errorf("log line does not say what happened:\n%s", l)
			}
		})
	}
}

func TestOutboxDamagedPage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	o := openOutbox(t, path, OutboxConfig{})
	for s := uint64(1); s <= 40; s++ {
		if err := o.Enqueue(s, bytes.Repeat([]byte{byte(s)}, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	o.Close()
	b, _ := os.ReadFile(path)
	for i := 4 * 4096; i < len(b) && i < 12*4096; i++ { // scribble over data and branch pages
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o2, err := OpenOutbox(path, OutboxConfig{})
	if err != nil {
		t.Fatalf("a damaged outbox must not stop the agent: %v", err)
	}
	defer o2.Close()
	if _, err := o2.Peek(100); err != nil {
		t.Fatalf("peek after recovery: %v", err)
	}
	if err := o2.Enqueue(1000, []byte("x")); err != nil {
		t.Fatalf("enqueue after recovery: %v", err)
	}
}

func TestOutboxLockedIsAnErrorNotCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	openOutbox(t, path, OutboxConfig{})
	// flock is per open file description: a second open in this process conflicts like another process would.
	_, err := OpenOutbox(path, OutboxConfig{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("err %v, want a lock error", err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Fatal("a locked outbox was moved aside")
	}
}

func TestOutboxWaitEmpty(t *testing.T) {
	o := openOutbox(t, filepath.Join(t.TempDir(), "outbox.db"), OutboxConfig{})
	enqueue(t, o, 1, 2)
	done := make(chan error)
	go func() { done <- o.WaitEmpty(context.Background()) }()
	if err := o.Ack(1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("WaitEmpty returned with one entry left: %v", err)
	default:
	}
	if err := o.Ack(2); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	enqueue(t, o, 3, 3)
	if err := o.WaitEmpty(ctx); err == nil || !strings.Contains(err.Error(), "1 entries still unsent") {
		t.Fatalf("err %v", err)
	}
}

// helperEnv makes the test binary a helper process that enqueues and then
// dies by SIGKILL (see TestMain).
const helperEnv = "UPLINK_OUTBOX_KILL_HELPER"

// runKillHelper opens the outbox at path, enqueues seqs 1..n, acks 1..acked,
// prints "ready" and SIGKILLs itself: no Close, no deferred cleanup.
func runKillHelper(spec string) {
	parts := strings.Split(spec, ",")
	n, _ := strconv.ParseUint(parts[1], 10, 64)
	acked, _ := strconv.ParseUint(parts[2], 10, 64)
	o, err := OpenOutbox(parts[0], OutboxConfig{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for s := uint64(1); s <= n; s++ {
		if err := o.Enqueue(s, []byte(fmt.Sprintf("payload-%d", s))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	for s := uint64(1); s <= acked; s++ {
		if err := o.Ack(s); err != nil {
			os.Exit(3)
		}
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func TestOutboxSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path+",25,10")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, out)
	}
	o := openOutbox(t, path, OutboxConfig{})
	got := seqs(t, o)
	if len(got) != 15 || got[0] != 11 || got[14] != 25 {
		t.Fatalf("after SIGKILL: %v, want 11..25", got)
	}
	if o.Stats().LastSeq != 25 {
		t.Errorf("last seq %d", o.Stats().LastSeq)
	}
}

// BenchmarkOutboxCommit measures durable enqueues (one fsync'd bbolt
// transaction each) of a 1.4 KB envelope, the rate at which reports can be
// made; acknowledgements cost about the same.
func BenchmarkOutboxCommit(b *testing.B) {
	o := openOutbox(b, filepath.Join(b.TempDir(), "outbox.db"), OutboxConfig{})
	payload := bytes.Repeat([]byte{0xa5}, 1400)
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		if err := o.Enqueue(seq, payload); err != nil {
			b.Fatal(err)
		}
		if seq%64 == 0 { // keep the file small, as delivery would
			es, _ := o.Peek(64)
			ack := make([]uint64, len(es))
			for i, e := range es {
				ack[i] = e.Seq
			}
			_ = o.Ack(ack...)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "commits/s")
}
