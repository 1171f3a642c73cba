package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/modemguard/modemguard/attest"
)

// broker is an embedded mochi-mqtt broker on loopback that records what is
// published to the report and status topics. It can be stopped and started
// again on the same address.
type broker struct {
	t    *testing.T
	addr string
	srv  *mqtt.Server

	mu       sync.Mutex
	reports  [][]byte
	statuses [][]byte
	changed  chan struct{}
}

func startBroker(t *testing.T) *broker {
	b := &broker{t: t, addr: "127.0.0.1:0", changed: make(chan struct{})}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		b.t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: b.addr})
	if err := s.AddListener(l); err != nil {
		b.t.Fatal(err)
	}
	b.addr = l.Address()
	if err := s.Serve(); err != nil {
		b.t.Fatal(err)
	}
	record := func(dst *[][]byte) mqtt.InlineSubFn {
		return func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			b.mu.Lock()
			defer b.mu.Unlock()
			*dst = append(*dst, append([]byte(nil), pk.Payload...))
			close(b.changed)
			b.changed = make(chan struct{})
		}
	}
	if err := s.Subscribe("modemguard/v1/+/report", 1, record(&b.reports)); err != nil {
		b.t.Fatal(err)
	}
	if err := s.Subscribe("modemguard/v1/+/status", 2, record(&b.statuses)); err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.srv = s
	b.mu.Unlock()
}

func (b *broker) stop() {
	b.mu.Lock()
	s := b.srv
	b.srv = nil
	b.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

func (b *broker) url() string { return "tcp://" + b.addr }

// waitFor waits until cond holds over the recorded messages.
func (b *broker) waitFor(what string, timeout time.Duration, cond func(reports, statuses [][]byte) bool) {
	b.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		ok := cond(b.reports, b.statuses)
		ch := b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			b.mu.Lock()
			defer b.mu.Unlock()
			b.t.Fatalf("timed out after %v waiting for %s (%d reports, %d statuses)", timeout, what, len(b.reports), len(b.statuses))
		}
	}
}

// verifySeqs verifies every recorded report and returns the seqs seen, how
// often each, and the reports by seq.
func verifySeqs(t *testing.T, pub attest.KeyFunc, reports [][]byte) (count map[uint64]int, bySeq map[uint64]*attest.Report) {
	t.Helper()
	v := attest.NewVerifier(attest.VerifierConfig{Keys: pub})
	count, bySeq = map[uint64]int{}, map[uint64]*attest.Report{}
	for _, msg := range reports {
		got, err := v.Verify(msg)
		if got == nil {
			t.Fatalf("report does not verify: %v", err)
		}
		if err != nil && !errors.Is(err, attest.ErrReplay) {
			t.Errorf("chain: %v", err)
		}
		count[got.Report.Seq]++
		bySeq[got.Report.Seq] = got.Report
	}
	return count, bySeq
}

type fixture struct {
	key   *attest.Key
	chain *attest.Chain
	ob    *Outbox
	dir   string
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	k, _, err := attest.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.OpenChain(dir, k, attest.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ob := openOutbox(t, filepath.Join(dir, "outbox.db"), OutboxConfig{})
	return &fixture{key: k, chain: c, ob: ob, dir: dir}
}

// report issues a report (with nonce, if any) and commits it to the outbox:
// what the agent does.
func (f *fixture) report(t *testing.T, nonce []byte) {
	r := attest.Report{GatewayID: "gw-1", BootID: "boot-1", Verdict: "allow", Nonce: nonce}
	is, err := f.chain.Issue(r)
	if err != nil {
		t.Error(err)
		return
	}
	if err := f.ob.Enqueue(is.Report.Seq, is.Envelope); err != nil {
		t.Error(err)
	}
}

func (f *fixture) config(b *broker) Config {
	return Config{
		Broker: b.url(), GatewayID: "gw-1", BootID: "boot-1", KeyID: f.key.ID(),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		ConnectTimeout: 5 * time.Second, PublishTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(testWriter{}, nil)),
	}
}

// testWriter discards; swap for os.Stderr when debugging.
type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// run starts u.Run and returns a stop function that cancels and waits.
func run(t *testing.T, u *Uplink) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestReportsArriveAndVerify(t *testing.T) {
	b := startBroker(t)
	f := newFixture(t)
	for range 3 {
		f.report(t, nil)
	}
	cfg := f.config(b)
	nonce := []byte("nonce-0123456789")
	cfg.OnChallenge = func(n []byte) { f.report(t, n) }
	orig := cfg
	u, err := New(cfg, f.ob)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientID != orig.ClientID || cfg.InFlight != 0 {
		t.Fatal("New changed the caller's Config")
	}
	stop := run(t, u)
	b.waitFor("3 reports", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 3 })
	for range 2 {
		f.report(t, nil) // made while connected
	}
	b.waitFor("5 reports", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 5 })

	// A challenge: the nonce comes back in a fresh, signed report.
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	if err := srv.Publish("modemguard/v1/gw-1/challenge", nonce, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish("modemguard/v1/gw-1/challenge", []byte("short"), false, 0); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the challenge answer", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 6 })
	if err := f.ob.WaitEmpty(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	stop()
	b.waitFor("the offline status", 10*time.Second, func(_, st [][]byte) bool {
		return len(st) > 0 && bytes.Contains(st[len(st)-1], []byte(`"offline"`))
	})

	b.mu.Lock()
	reports, statuses := b.reports, b.statuses
	b.mu.Unlock()
	count, bySeq := verifySeqs(t, attest.StaticKey(f.key.Public()), reports)
	for s := uint64(1); s <= 6; s++ {
		if count[s] != 1 {
			t.Errorf("seq %d arrived %d times", s, count[s])
		}
	}
	if !bytes.Equal(bySeq[6].Nonce, nonce) {
		t.Errorf("challenge answer carries nonce %q", bySeq[6].Nonce)
	}
	if len(reports) != 6 {
		t.Errorf("%d reports; the 5-byte challenge must be ignored", len(reports))
	}
	st := u.Stats()
	if st.Delivered != 6 || st.Outbox.Depth != 0 || st.Connections != 1 {
		t.Errorf("stats %+v", st)
	}
	// Status: online (with boot id and key id) on connect, offline on shutdown.
	if len(statuses) < 2 {
		t.Fatalf("statuses: %q", statuses)
	}
	var on, off Status
	_ = json.Unmarshal(statuses[0], &on)
	_ = json.Unmarshal(statuses[len(statuses)-1], &off)
	if on.State != "online" || on.BootID != "boot-1" || on.KeyID != f.key.ID() || on.Conn != 1 {
		t.Errorf("birth %s", statuses[0])
	}
	if off.State != "offline" || off.Reason != "shutdown" {
		t.Errorf("last status %s", statuses[len(statuses)-1])
	}
	assertRetainedStatus(t, b, "offline")
}

// assertRetainedStatus subscribes like a late collector and checks the
// retained status.
func assertRetainedStatus(t *testing.T, b *broker, want string) {
	t.Helper()
	got := make(chan []byte, 1)
	opts := pmqtt.NewClientOptions().AddBroker(b.url()).SetClientID("checker").SetAutoReconnect(false)
	cl := pmqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("checker connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	tok := cl.Subscribe("modemguard/v1/gw-1/status", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		if m.Retained() {
			select {
			case got <- m.Payload():
			default:
			}
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("checker subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		var s Status
		if err := json.Unmarshal(p, &s); err != nil || s.State != want {
			t.Errorf("retained status %s, want state %q", p, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no retained status")
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestBrokerRestartDeliversEverything(t *testing.T) {
	b := startBroker(t)
	f := newFixture(t)
	u, err := New(f.config(b), f.ob)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	for range 3 {
		f.report(t, nil)
	}
	b.waitFor("3 reports", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 3 })
	if err := f.ob.WaitEmpty(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	b.stop()
	for range 5 { // made while the broker is down: never blocked
		f.report(t, nil)
	}
	if d := f.ob.Stats().Depth; d != 5 {
		t.Fatalf("outbox depth %d while the broker is down, want 5", d)
	}
	b.start() // same address
	if err := f.ob.WaitEmpty(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	b.waitFor("8 distinct reports", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 5 })
	stop()
	b.mu.Lock()
	reports := b.reports
	b.mu.Unlock()
	count, _ := verifySeqs(t, attest.StaticKey(f.key.Public()), reports)
	dups := 0
	for s := uint64(1); s <= 8; s++ {
		if count[s] == 0 {
			t.Errorf("seq %d never arrived", s)
		}
		dups += max(0, count[s]-1)
	}
	t.Logf("%d reports received for 8 seqs (%d duplicates); %d connections", len(reports), dups, u.Stats().Connections)
	if u.Stats().Connections < 2 {
		t.Errorf("connections %d, want a reconnect", u.Stats().Connections)
	}
}

// TestResendAfterCrash: the agent died (no Close) with reports in its
// outbox, some already acknowledged; a new process opens the file and sends
// exactly the rest, in seq order.
func TestResendAfterCrash(t *testing.T) {
	b := startBroker(t)
	f := newFixture(t)
	for range 6 {
		f.report(t, nil)
	}
	if err := f.ob.Ack(1, 2); err != nil {
		t.Fatal(err)
	}
	// Crash: what is on disk is the file as it is now.
	data, err := os.ReadFile(f.ob.Path())
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "outbox.db")
	if err := os.WriteFile(crashed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ob2 := openOutbox(t, crashed, OutboxConfig{})
	if d := ob2.Stats().Depth; d != 4 {
		t.Fatalf("depth after crash %d, want 4", d)
	}
	u, err := New(f.config(b), ob2)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	if err := ob2.WaitEmpty(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	b.waitFor("4 reports", 10*time.Second, func(r, _ [][]byte) bool { return len(r) >= 4 })
	stop()
	b.mu.Lock()
	reports := b.reports
	b.mu.Unlock()
	var got []uint64
	for _, msg := range reports {
		env, err := attest.DecodeEnvelope(msg)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := attest.DecodeReport(env.Body)
		got = append(got, r.Seq)
	}
	if s := strings.Trim(strings.Join(strings.Fields(strings.Trim(fmtSeqs(got), "[]")), ","), ","); s != "3,4,5,6" {
		t.Errorf("resent %v, want 3,4,5,6 in order", got)
	}
}

func fmtSeqs(s []uint64) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), ",", " ")
}

func TestUnreachableBrokerDoesNotBlock(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(&broker{addr: "127.0.0.1:1"}) // nothing listens on port 1
	u, err := New(cfg, f.ob)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	for range 3 {
		f.report(t, nil)
	}
	if d := f.ob.Stats().Depth; d != 3 {
		t.Fatalf("depth %d", d)
	}
	stop() // returns promptly although never connected
	if u.Stats().Connections != 0 {
		t.Errorf("connections %d", u.Stats().Connections)
	}
}

func TestConfigErrors(t *testing.T) {
	ob := openOutbox(t, filepath.Join(t.TempDir(), "o.db"), OutboxConfig{})
	for name, c := range map[string]Config{
		"no gateway":   {Broker: "tcp://127.0.0.1:1883"},
		"slash in id":  {Broker: "tcp://127.0.0.1:1883", GatewayID: "a/b"},
		"scheme":       {Broker: "http://x:1", GatewayID: "g"},
		"no host":      {Broker: "tcp://", GatewayID: "g"},
		"cert, no key": {Broker: "ssl://x:8883", GatewayID: "g", CertFile: "c.pem"},
		"missing CA":   {Broker: "ssl://x:8883", GatewayID: "g", CAFile: "/nonexistent/ca.pem"},
		"tls over tcp": {Broker: "tcp://x:1883", GatewayID: "g", CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := New(c, ob); err == nil || !strings.HasPrefix(err.Error(), "uplink: ") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, err := New(Config{Broker: "ssl://x:8883", GatewayID: "g"}, ob); err != nil {
		t.Errorf("ssl:// with system roots: %v", err)
	}
	if tp := TopicsFor("gw-7"); tp.Report != "modemguard/v1/gw-7/report" || tp.Status != "modemguard/v1/gw-7/status" || tp.Challenge != "modemguard/v1/gw-7/challenge" {
		t.Errorf("topics %+v", tp)
	}
}
