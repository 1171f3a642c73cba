package collector_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
	"github.com/modemguard/modemguard/uplink"
)

// agentGW is the library half of an agent (attest chain, uplink outbox and
// session) publishing to the embedded broker, answering challenges.
type agentGW struct {
	t     *testing.T
	id    string
	key   *attest.Key
	chain *attest.Chain
	ob    *uplink.Outbox
}

func startAgent(t *testing.T, brokerURL, id string) *agentGW {
	t.Helper()
	dir := t.TempDir()
	k, _, err := attest.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := attest.OpenChain(dir, k, attest.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := uplink.OpenOutbox(filepath.Join(dir, "outbox.db"), uplink.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := &agentGW{t: t, id: id, key: k, chain: ch, ob: ob}
	up, err := uplink.New(uplink.Config{Broker: brokerURL, GatewayID: id, BootID: "boot-" + id, KeyID: k.ID(),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		OnChallenge: func(n []byte) { g.report(n) }}, ob)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = up.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("uplink did not stop")
		}
		ob.Close()
	})
	return g
}

func (g *agentGW) enrollment() string {
	return g.id + " " + attest.EncodePublicKey(g.key.Public()) + "\n"
}

func (g *agentGW) report(nonce []byte) {
	r := collectortest.SampleReport(g.id)
	r.TimeMS, r.Nonce = 0, nonce
	is, err := g.chain.Issue(r)
	if err != nil {
		g.t.Error(err)
		return
	}
	if err := g.ob.Enqueue(is.Report.Seq, is.Envelope); err != nil {
		g.t.Error(err)
	}
}

// metric scrapes one sample (name with labels, as exposed) from /metrics.
func metric(t testing.TB, h http.Handler, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			v, _ := strconv.ParseFloat(val, 64)
			return v
		}
	}
	return 0
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// TestEndToEnd: a real uplink publishes birth and reports through the
// embedded broker; the collector stores them, answers challenges and
// serves them over HTTP.
func TestEndToEnd(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := startAgent(t, b.URL, "gw-e2e")
	keys := writeKeys(t, gw.enrollment())
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: keys, ChallengeTimeout: 10 * time.Second})
	run(t, c)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	waitFor(t, "connected", c.Connected)
	gw.report(nil)
	gw.report(nil)
	waitFor(t, "2 reports and the birth", func() bool {
		g, err := c.Store().GatewayDetail(context.Background(), gw.id, 0)
		return err == nil && g.LastSeq == 2 && g.Online != nil && *g.Online
	})
	if _, err := c.Challenge(context.Background(), gw.id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the challenge answered", func() bool {
		g := gateway(t, c, gw.id)
		return len(g.Challenges) == 1 && g.Challenges[0].Outcome == collector.ChallengeAnswered && g.Challenges[0].Seq == 3
	})

	// The CLI's way: its own connection, recorded in the same database.
	res, err := collector.SendChallenge(context.Background(), collector.ChallengeConfig{Broker: b.URL, GatewayID: gw.id, Key: gw.key.Public(), Timeout: 10 * time.Second, Store: c.Store()})
	if err != nil || !res.Answered || !res.Verified || res.Seq != 4 {
		t.Fatalf("SendChallenge: %+v %v", res, err)
	}
	waitFor(t, "the collector stored the CLI challenge's answer", func() bool { return gateway(t, c, gw.id).LastSeq == 4 })
	if ch := gateway(t, c, gw.id).Challenges; len(ch) != 2 || ch[0].Outcome != collector.ChallengeAnswered || ch[0].Origin != "cli" {
		t.Fatalf("challenges: %+v", ch)
	}

	// A challenge nobody answers times out.
	res, err = collector.SendChallenge(context.Background(), collector.ChallengeConfig{Broker: b.URL, GatewayID: "gw-silent", Timeout: 300 * time.Millisecond})
	if err != nil || res.Answered {
		t.Fatalf("unanswered challenge: %+v %v", res, err)
	}

	// HTTP API: the keys the issue names.
	var gws []map[string]any
	getJSON(t, srv.URL+"/api/v1/gateways", &gws)
	if len(gws) != 1 {
		t.Fatalf("gateways: %v", gws)
	}
	for _, k := range []string{"gateway_id", "online", "last_seen_ms", "last_seq", "chain", "verdict", "modules"} {
		if _, ok := gws[0][k]; !ok {
			t.Errorf("gateway lacks %q: %v", k, gws[0])
		}
	}
	mods := gws[0]["modules"].([]any)
	for _, k := range []string{"manufacturer", "model", "firmware", "imei", "imsi", "iccid", "sim", "vendor", "origin_country", "usb", "network", "findings", "verdict", "enforcement"} {
		if _, ok := mods[0].(map[string]any)[k]; !ok {
			t.Errorf("module lacks %q", k)
		}
	}
	var detail collector.GatewayDetail
	getJSON(t, srv.URL+"/api/v1/gateways/gw-e2e", &detail)
	if detail.LastSeq != 4 || detail.Trust != "enrolled" || len(detail.History) != 1 || detail.StatusKeyID != gw.key.ID() || detail.BootID == "" {
		t.Fatalf("detail: %+v", detail)
	}
	var reports []collector.StoredReport
	getJSON(t, srv.URL+"/api/v1/gateways/gw-e2e/reports?limit=2", &reports)
	if len(reports) != 2 || reports[0].Seq != 4 || reports[0].Nonce == "" {
		t.Fatalf("reports: %+v", reports)
	}
	var rejs []map[string]any
	getJSON(t, srv.URL+"/api/v1/rejections", &rejs)
	if len(rejs) != 0 {
		t.Fatalf("rejections: %v", rejs)
	}
	for path, want := range map[string]int{"/api/v1/gateways/nope": 404, "/api/v1/rejections?limit=x": 400, "/": 200, "/app.js": 200, "/style.css": 200, "/healthz": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if n := metric(t, c.Handler(), `modemguard_collector_reports_accepted_total{outcome="ok"}`); n != 4 {
		t.Errorf("accepted metric %v, want 4", n)
	}
	if n := metric(t, c.Handler(), `modemguard_collector_verify_seconds_count`); n != 4 {
		t.Errorf("verify histogram count %v", n)
	}
}

// TestInjectedOnBroker: a forged report, a replay and a gap published on
// the broker are each recorded.
func TestInjectedOnBroker(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := collectortest.NewGateway(t, "gw-inj")
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: writeKeys(t, "", gw)})
	run(t, c)
	waitFor(t, "connected", c.Connected)
	topic := reportTopic(gw.ID)
	r1 := gw.Next(t, nil)
	b.Publish(t, topic, r1, false)
	b.Publish(t, topic, r1, false) // replay
	forged := collectortest.NewGateway(t, gw.ID)
	forged.Key = collectortest.NewGateway(t, "x").Key
	b.Publish(t, topic, forged.Next(t, nil), false) // signed by a stranger
	gw.Skip(t)
	b.Publish(t, topic, gw.Next(t, nil), false) // gap: seq 3
	b.Publish(t, topic, []byte("garbage"), false)
	waitFor(t, "all recorded", func() bool { return len(rejections(t, c)) == 3 && gateway(t, c, gw.ID).LastSeq == 3 })
	var reasons []string
	for _, r := range rejections(t, c) {
		reasons = append(reasons, r.Reason)
	}
	if strings.Join(reasons, ",") != "malformed,unknown key,replay" {
		t.Fatalf("reasons %q", reasons)
	}
	if g := gateway(t, c, gw.ID); g.Chain != collector.ChainGap || g.Missing != 1 {
		t.Fatalf("gap: %+v", g.Gateway)
	}
}

// TestSharedSubscription: two collectors in one share group, on one
// database, store every report exactly once between them.
func TestSharedSubscription(t *testing.T) {
	b := collectortest.StartBroker(t)
	gws := []*collectortest.Gateway{collectortest.NewGateway(t, "gw-s1"), collectortest.NewGateway(t, "gw-s2")}
	keys := writeKeys(t, "", gws...)
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	var cs []*collector.Collector
	for i := range 2 {
		c := newCollector(t, collector.Config{Broker: b.URL, ShareGroup: "collectors", ClientID: "collector-" + strconv.Itoa(i), KeysFile: keys, Database: db})
		run(t, c)
		cs = append(cs, c)
	}
	waitFor(t, "both connected", func() bool { return cs[0].Connected() && cs[1].Connected() })
	const n = 30
	for range n {
		for _, g := range gws {
			b.Publish(t, reportTopic(g.ID), g.Next(t, nil), false)
		}
	}
	total := func() (sum float64, each []float64) {
		for _, c := range cs {
			var v float64
			for _, o := range []string{"ok", "gap", "late"} {
				v += metric(t, c.Handler(), `modemguard_collector_reports_accepted_total{outcome="`+o+`"}`)
			}
			each = append(each, v)
			sum += v
		}
		return sum, each
	}
	waitFor(t, "every report stored", func() bool { s, _ := total(); return s == 2*n })
	_, each := total()
	if each[0] == 0 || each[1] == 0 {
		t.Errorf("one collector got everything: %v", each)
	}
	if rs := rejections(t, cs[0]); len(rs) != 0 {
		t.Fatalf("rejections: %+v", rs)
	}
	for _, g := range gws {
		d := gateway(t, cs[0], g.ID)
		if d.LastSeq != n || d.Reports != n || d.Missing != 0 || d.Chain != collector.ChainOK {
			t.Fatalf("%s: seq %d reports %d missing %d chain %s", g.ID, d.LastSeq, d.Reports, d.Missing, d.Chain)
		}
	}
	t.Logf("split between the instances: %v", each)
}

// TestBrokerRestart: the collector reconnects and resubscribes.
func TestBrokerRestart(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := collectortest.NewGateway(t, "gw-rs")
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: writeKeys(t, "", gw)})
	run(t, c)
	waitFor(t, "connected", c.Connected)
	b.Publish(t, reportTopic(gw.ID), gw.Next(t, nil), false)
	waitFor(t, "report 1", func() bool {
		g, err := c.Store().GatewayDetail(context.Background(), gw.ID, 0)
		return err == nil && g.LastSeq == 1
	})
	b.Close()
	waitFor(t, "connection lost", func() bool { return !c.Connected() })
	b = collectortest.StartBrokerAt(t, b.Addr)
	waitFor(t, "reconnected", c.Connected)
	b.Publish(t, reportTopic(gw.ID), gw.Next(t, nil), false)
	waitFor(t, "report 2", func() bool { return gateway(t, c, gw.ID).LastSeq == 2 })
	if n := metric(t, c.Handler(), "modemguard_collector_mqtt_connections_total"); n < 2 {
		t.Fatalf("connections %v", n)
	}
}

// TestDatabaseOutage: while the database fails, messages are held (not
// acknowledged) and retried; nothing is lost or applied twice.
func TestDatabaseOutage(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := collectortest.NewGateway(t, "gw-db")
	path := filepath.Join(t.TempDir(), "c.db")
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: writeKeys(t, "", gw), Database: "sqlite://" + path})
	run(t, c)
	waitFor(t, "connected", c.Connected)
	b.Publish(t, reportTopic(gw.ID), gw.Next(t, nil), false)
	waitFor(t, "report 1", func() bool {
		g, err := c.Store().GatewayDetail(context.Background(), gw.ID, 0)
		return err == nil && g.LastSeq == 1
	})

	// The outage: the reports table goes away under the collector.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`ALTER TABLE reports RENAME TO reports_away`); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b.Publish(t, reportTopic(gw.ID), gw.Next(t, nil), false)
	}
	waitFor(t, "database errors", func() bool { return metric(t, c.Handler(), "modemguard_collector_db_errors_total") >= 3 })
	if g := gateway(t, c, gw.ID); g.LastSeq != 1 {
		t.Fatalf("applied during the outage: %d", g.LastSeq)
	}
	if n := metric(t, c.Handler(), "modemguard_collector_buffer_depth"); n < 1 {
		t.Errorf("buffer depth %v during the outage", n)
	}
	if _, err := db.Exec(`ALTER TABLE reports_away RENAME TO reports`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", func() bool { return gateway(t, c, gw.ID).LastSeq == 6 })
	g := gateway(t, c, gw.ID)
	if g.Chain != collector.ChainOK || g.Reports != 6 || len(rejections(t, c)) != 0 {
		t.Fatalf("after the outage: %+v", g.Gateway)
	}
}

// TestScheduledChallenges: online gateways are challenged on schedule; an
// unanswered challenge times out.
func TestScheduledChallenges(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := startAgent(t, b.URL, "gw-sched")
	mute := collectortest.NewGateway(t, "gw-mute")
	keys := writeKeys(t, gw.enrollment(), mute)
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: keys, ChallengeEvery: 300 * time.Millisecond, ChallengeTimeout: 500 * time.Millisecond})
	run(t, c)
	waitFor(t, "connected", c.Connected)
	b.Publish(t, statusTopic(mute.ID), []byte(`{"state":"online","gateway_id":"gw-mute","boot_id":"b","conn":1}`), true)
	waitFor(t, "an answered and a timed-out challenge", func() bool {
		a, err1 := c.Store().GatewayDetail(context.Background(), gw.id, 0)
		m, err2 := c.Store().GatewayDetail(context.Background(), mute.ID, 0)
		if err1 != nil || err2 != nil {
			return false
		}
		answered := false
		for _, ch := range a.Challenges {
			answered = answered || ch.Outcome == collector.ChallengeAnswered
		}
		timedOut := false
		for _, ch := range m.Challenges {
			timedOut = timedOut || ch.Outcome == collector.ChallengeTimeout
		}
		return answered && timedOut
	})
}

// TestStatusFromUplink: the status JSON uplink produces decodes into
// collector.Status field for field.
func TestStatusFromUplink(t *testing.T) {
	depth, dropped := 4, uint64(2)
	in := uplink.Status{State: "online", GatewayID: "gw-1", BootID: "b", KeyID: "k", Conn: 7, Reason: "r", TimeMS: 123, OutboxDepth: &depth, Dropped: &dropped}
	b, _ := json.Marshal(in)
	var out collector.Status
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if string(b) != string(b2) {
		t.Fatalf("uplink %s\ncollector %s", b, b2)
	}
}
