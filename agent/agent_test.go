package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/simulator"
	"github.com/modemguard/modemguard/uplink"
)

// broker is an embedded MQTT broker that records what gateways publish.
type broker struct {
	srv  *mqtt.Server
	addr string

	mu      sync.Mutex
	reports [][]byte
	status  []string
	ch      chan struct{}
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{ch: make(chan struct{}, 1)}
	b.srv = mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := b.srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := b.srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	b.addr = tcp.Address()
	if err := b.srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.srv.Close() })
	if err := b.srv.Subscribe("modemguard/v1/+/#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		b.mu.Lock()
		if strings.HasSuffix(pk.TopicName, "/report") {
			b.reports = append(b.reports, bytes.Clone(pk.Payload))
		} else if strings.HasSuffix(pk.TopicName, "/status") {
			b.status = append(b.status, string(pk.Payload))
		}
		b.mu.Unlock()
		select {
		case b.ch <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor waits until ok holds for the recorded traffic.
func (b *broker) waitFor(t *testing.T, what string, ok func(reports [][]byte, status []string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		b.mu.Lock()
		done := ok(b.reports, b.status)
		b.mu.Unlock()
		if done {
			return
		}
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

type agentRig struct {
	egress *egressRecorder
	t      *testing.T
	bench  *bench
	agent  *Agent
	broker *broker
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, cfgText string, profiles map[string]string) *agentRig {
	t.Helper()
	return startAgentWithPolicy(t, cfgText, profiles, nil)
}

func startAgentWithPolicy(t *testing.T, cfgText string, profiles map[string]string, pol *policy.Policy) *agentRig {
	t.Helper()
	dir := t.TempDir()
	br := newBroker(t)
	cfg, err := ParseConfig("test.yaml", []byte(strings.ReplaceAll(strings.ReplaceAll(cfgText, "STATE", dir), "BROKER", "tcp://"+br.addr)))
	if err != nil {
		t.Fatal(err)
	}
	sims := map[string]*simulator.Modem{}
	for path, prof := range profiles {
		p, err := simulator.LoadProfile(prof)
		if err != nil {
			t.Fatal(err)
		}
		sims[path] = simulator.New(p, simulator.Options{Seed: uint64(len(sims) + 1)})
	}
	t.Cleanup(func() {
		for _, s := range sims {
			s.Close()
		}
	})
	recorder := &egressRecorder{}
	a, err := New(Options{
		Config: cfg,
		Policy: pol,
		OpenPort: func(path string, baud int) (io.ReadWriteCloser, error) {
			return sims[path].Pipe(), nil
		},
		HostBytes: func() (uint64, bool) { return 0, false },
		Egress:    recorder.hooks(),
		Version:   "test",
		Metrics:   NewMetrics(),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &agentRig{t: t, agent: a, broker: br, dir: dir, cancel: cancel, done: make(chan error, 1), egress: recorder}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *agentRig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("Run did not return within 30s of cancel")
	}
}

func (r *agentRig) pubkey() ed25519.PublicKey {
	k, err := attest.LoadKey(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return k.Public()
}

// decodeAll verifies every report with the gateway's key and chain.
func decodeAll(t *testing.T, pub ed25519.PublicKey, msgs [][]byte) []*attest.Report {
	t.Helper()
	v := attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(pub)})
	var out []*attest.Report
	for _, m := range msgs {
		got, err := v.Verify(m)
		if err != nil {
			t.Fatalf("report does not verify: %v", err)
		}
		out = append(out, got.Report)
	}
	return out
}

const twoModems = `gateway_id: gw-test
state_dir: STATE
modems:
  - port: /dev/sim0
  - port: /dev/sim1
mqtt:
  broker: BROKER
report:
  interval: 1h
`

func TestAgentPublishesVerifiedReports(t *testing.T) {
	r := startAgent(t, twoModems, map[string]string{"/dev/sim0": "quectel-ec25", "/dev/sim1": "telit-le910c1"})
	r.broker.waitFor(t, "a report with both modules", func(reports [][]byte, _ []string) bool {
		if len(reports) == 0 {
			return false
		}
		rep, err := attest.DecodeEnvelope(reports[len(reports)-1])
		if err != nil {
			return false
		}
		body, err := attest.DecodeReport(rep.Body)
		return err == nil && len(body.Modules) == 2
	})
	r.broker.mu.Lock()
	reports := decodeAll(t, r.pubkey(), r.broker.reports)
	r.broker.mu.Unlock()
	last := reports[len(reports)-1]
	vendors := []string{last.Modules[0].Vendor, last.Modules[1].Vendor}
	if strings.Join(vendors, ",") != "quectel,telit-cinterion" || last.GatewayID != "gw-test" || last.Verdict != "allow" {
		t.Errorf("report: vendors %v gateway %q verdict %q", vendors, last.GatewayID, last.Verdict)
	}

	// A challenge is answered with a fresh report carrying its nonce.
	nonce := []byte("0123456789abcdef")
	if err := r.broker.srv.Publish(uplink.TopicsFor("gw-test").Challenge, nonce, false, 1); err != nil {
		t.Fatal(err)
	}
	r.broker.waitFor(t, "the challenge answer", func(reports [][]byte, _ []string) bool {
		for _, m := range reports {
			env, err := attest.DecodeEnvelope(m)
			if err != nil {
				continue
			}
			rep, err := attest.DecodeReport(env.Body)
			if err == nil && bytes.Equal(rep.Nonce, nonce) {
				return true
			}
		}
		return false
	})

	// Metrics are served.
	rec := httptest.NewRecorder()
	r.agent.opts.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"modemguard_reports_made_total", `modemguard_modem_up{port="/dev/sim0",slot="0"} 1`, "modemguard_outbox_depth"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A clean stop leaves a retained offline status.
	r.stop()
	r.broker.waitFor(t, "the offline status", func(_ [][]byte, status []string) bool {
		if len(status) == 0 {
			return false
		}
		var s uplink.Status
		return json.Unmarshal([]byte(status[len(status)-1]), &s) == nil && s.State == "offline"
	})
}

// TestAgentRestartContinuesChain restarts the agent on the same state directory:
// the chain continues and every report verifies as one stream.
func TestAgentRestartContinuesChain(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.ReplaceAll(twoModems, "  - port: /dev/sim1\n", "")
	first := startAgentIn(t, dir, cfg)
	first.broker.waitFor(t, "a report", func(reports [][]byte, _ []string) bool { return len(reports) > 0 })
	first.stop()
	second := startAgentIn(t, dir, cfg)
	second.broker.waitFor(t, "a report after restart", func(reports [][]byte, _ []string) bool { return len(reports) > 0 })
	second.stop()
	first.broker.mu.Lock()
	second.broker.mu.Lock()
	all := append(append([][]byte{}, first.broker.reports...), second.broker.reports...)
	first.broker.mu.Unlock()
	second.broker.mu.Unlock()
	reps := decodeAll(t, first.pubkey(), all)
	for i, rep := range reps {
		if rep.Seq != uint64(i+1) {
			t.Errorf("report %d has seq %d", i, rep.Seq)
		}
	}
}

func startAgentIn(t *testing.T, dir, cfg string) *agentRig {
	t.Helper()
	r := startAgent(t, strings.ReplaceAll(cfg, "STATE", dir), map[string]string{"/dev/sim0": "quectel-ec25"})
	r.dir = dir
	return r
}

// egressRecorder stands in for nftables: it records plans instead of
// installing them.
type egressRecorder struct {
	mu      sync.Mutex
	plans   []*policy.EgressPlan
	cleared int
}

func (e *egressRecorder) hooks() *EgressHooks {
	return &EgressHooks{
		Apply: func(p *policy.EgressPlan) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.plans = append(e.plans, p)
			return nil
		},
		Clear: func() error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.cleared++
			return nil
		},
		Resolver:    staticResolver{},
		Nameservers: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.53")} },
	}
}

type staticResolver struct{}

func (staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("198.51.100.7")}, nil
}

// TestAgentBlockDataDropsHostEgress denies a module with on_deny:
// block-data: its PDP contexts go down and the host's cellular traffic is
// dropped too (a plan with no allowed destination, DNS kept).
func TestAgentBlockDataDropsHostEgress(t *testing.T) {
	dir := t.TempDir()
	pol := dir + "/policy.yaml"
	if err := os.WriteFile(pol, []byte("version: 1\nmodules:\n  default: deny\non_deny: block-data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(pol)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(twoModems, "  - port: /dev/sim1\n", "")
	r := startAgentWithPolicy(t, cfg, map[string]string{"/dev/sim0": "quectel-ec25"}, p)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.egress.mu.Lock()
		n := len(r.egress.plans)
		var last *policy.EgressPlan
		if n > 0 {
			last = r.egress.plans[n-1]
		}
		r.egress.mu.Unlock()
		if last != nil && len(last.Groups) == 0 && len(last.DNS) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drop-all plan applied; plans: %d", n)
		}
		time.Sleep(10 * time.Millisecond) // the agent's egress loop runs on its own goroutine
	}
}
