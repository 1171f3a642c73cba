// Package collectortest holds fakes for testing the collector: an embedded
// MQTT broker (mochi-mqtt) on a loopback port and gateways that sign
// reports with attest, in memory or with a real attest.Chain.
package collectortest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"sync"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/modemguard/modemguard/attest"
)

// Broker is an embedded MQTT broker for one test.
type Broker struct {
	Addr  string // host:port
	URL   string // tcp://host:port
	srv   *mochi.Server
	once  sync.Once
	subID int
}

// StartBroker starts a broker on 127.0.0.1:0 and closes it when the test
// ends.
func StartBroker(t testing.TB) *Broker { return StartBrokerAt(t, "127.0.0.1:0") }

// StartBrokerAt starts a broker on addr, e.g. the address of a broker the
// test closed, to restart it.
func StartBrokerAt(t testing.TB, addr string) *Broker {
	t.Helper()
	// mochi-mqtt v2 in-process pattern (github.com/mochi-mqtt/server README).
	s := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	b := &Broker{Addr: l.Address(), URL: "tcp://" + l.Address(), srv: s}
	t.Cleanup(b.Close)
	return b
}

// Close stops the broker; calling it again does nothing (mochi panics on a
// second Close, issue #426).
func (b *Broker) Close() { b.once.Do(func() { _ = b.srv.Close() }) }

// Publish publishes through the broker's inline client at QoS 1.
func (b *Broker) Publish(t testing.TB, topic string, payload []byte, retain bool) {
	t.Helper()
	if err := b.srv.Publish(topic, payload, retain, 1); err != nil {
		t.Fatal(err)
	}
}

// Subscribe calls fn (on the broker's goroutine: it must not block) for
// each message matching filter, through the inline client.
func (b *Broker) Subscribe(t testing.TB, filter string, fn func(topic string, payload []byte)) {
	t.Helper()
	b.subID++
	err := b.srv.Subscribe(filter, b.subID, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Gateway signs reports like an agent, keeping its chain in memory (no
// fsync, so benchmarks measure the collector and not the gateway).
type Gateway struct {
	ID  string
	Key *attest.Key

	mu   sync.Mutex
	seq  uint64
	hash [32]byte
}

// NewGateway returns a gateway with a fresh key.
func NewGateway(t testing.TB, id string) *Gateway {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Gateway{ID: id, Key: attest.NewKey(priv)}
}

// Enrollment returns the gateway's enrollment file line.
func (g *Gateway) Enrollment() string {
	return g.ID + " " + attest.EncodePublicKey(g.Key.Public()) + "\n"
}

// Next issues the next report: SampleReport, changed by edit (may be nil)
// before seq and prev_hash are set. It returns the envelope.
func (g *Gateway) Next(t testing.TB, edit func(*attest.Report)) []byte {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	r := SampleReport(g.ID)
	if edit != nil {
		edit(&r)
	}
	r.Seq = g.seq + 1
	r.PrevHash = append(attest.Bytes(nil), g.hash[:]...)
	env, hash := Sign(t, g.Key, r)
	g.seq, g.hash = r.Seq, hash
	return env
}

// Skip advances the chain by one report that is never returned (a gap).
func (g *Gateway) Skip(t testing.TB) { g.Next(t, nil) }

// Sign encodes r as is and signs it with k; it returns the envelope and
// the body's SHA-256.
func Sign(t testing.TB, k *attest.Key, r attest.Report) ([]byte, [32]byte) {
	t.Helper()
	body, err := r.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := attest.Seal(nil, k, body)
	if err != nil {
		t.Fatal(err)
	}
	return env, sha256.Sum256(body)
}

// SampleReport is a realistic report of gateway id: one Quectel EC25 on a
// policy that alerts.
func SampleReport(id string) attest.Report {
	signal := -71
	return attest.Report{
		GatewayID:    id,
		BootID:       "6f1c2d0e-8a57-4d8e-9a43-3f5b7c1d2e90",
		TimeMS:       1767225600123,
		ClockSynced:  true,
		AgentVersion: "v0.6.0",
		Modules: []attest.Module{{
			Manufacturer: "Quectel", Model: "EC25", Firmware: "EC25EFAR06A08M4G", FirmwareDetail: "EC25EFAR06A08M4G_01.003.01.003",
			Port: "/dev/ttyUSB2", IMEI: "867698041234561", TAC: "86769804", IMSI: "262011234567890", ICCID: "8949020000012345678",
			SIM: "ready", Vendor: "quectel", VendorName: "Quectel Wireless Solutions", OriginCountry: "CN",
			Lists:   []string{"house-select-2023"},
			USB:     attest.USB{VID: "2c7c", PID: "0125", Interface: 2},
			Network: attest.Network{Operator: "Telekom.de", PLMN: "26201", RAT: "lte", Registered: true, State: "home", APN: "iot.example", Signal: &signal},
			Findings: []attest.Finding{
				{ID: "prc-origin", Severity: "medium", Detail: "vendor quectel is headquartered in CN"},
			},
			Verdict: "alert", Enforcement: "none",
		}},
		Events:  []attest.Event{},
		Verdict: "alert",
	}
}
