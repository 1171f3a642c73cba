package collector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// snapshot is the part of a gateway a rejection must not change.
func snapshot(t testing.TB, c *collector.Collector, id string) string {
	t.Helper()
	g := gateway(t, c, id)
	b, _ := json.Marshal([]any{g.LastSeq, g.LastSeenMS, g.Verdict, g.Modules, g.Trust, g.KeyID, g.Reports, g.History})
	return string(b)
}

func lastRejection(t testing.TB, c *collector.Collector) collector.Rejection {
	t.Helper()
	rs := rejections(t, c)
	if len(rs) == 0 {
		t.Fatal("no rejection recorded")
	}
	return rs[0]
}

// TestReportOutcomes feeds one gateway's reports through every outcome of
// docs/wire-format.md "The chain" and checks each is recorded as such and
// that no rejection touches the inventory.
func TestReportOutcomes(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-0001")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, "", gw)})
	topic := reportTopic(gw.ID)

	r1 := gw.Next(t, nil)
	ingest(t, c, topic, r1)
	r2 := gw.Next(t, nil)
	ingest(t, c, topic, r2)
	g := gateway(t, c, gw.ID)
	if g.LastSeq != 2 || g.Chain != collector.ChainOK || g.Trust != "enrolled" || g.Verdict != "alert" || len(g.Modules) != 1 || g.Modules[0].IMEI != "867698041234561" {
		t.Fatalf("after 2 reports: %+v", g.Gateway)
	}
	if len(g.History) != 1 || g.History[0].Kind != collector.ChangeSeen {
		t.Fatalf("history: %+v", g.History)
	}

	rejected := func(name string, payload []byte, topic, reason string, seq uint64) {
		t.Helper()
		before := snapshot(t, c, gw.ID)
		ingest(t, c, topic, payload)
		rj := lastRejection(t, c)
		if rj.Reason != reason {
			t.Fatalf("%s: reason %q (%s), want %q", name, rj.Reason, rj.Detail, reason)
		}
		if seq != 0 && (rj.Seq == nil || *rj.Seq != seq) {
			t.Fatalf("%s: seq %v, want %d", name, rj.Seq, seq)
		}
		if after := snapshot(t, c, gw.ID); after != before {
			t.Fatalf("%s changed the inventory:\nbefore %s\nafter  %s", name, before, after)
		}
	}

	// Replay: the same report again.
	rejected("replay", r2, topic, collector.ReasonReplay, 2)

	// Forged: a body changed after signing.
	forged := bytes.Clone(gw.Next(t, func(r *attest.Report) { r.Verdict = "allow" }))
	i := bytes.Index(forged, []byte("allow"))
	copy(forged[i:], "deny!")
	rejected("forged", forged, topic, collector.ReasonBadSignature, 3)

	// Signed by another key that claims the gateway's key id.
	other := collectortest.NewGateway(t, gw.ID)
	r := collectortest.SampleReport(gw.ID)
	r.Seq, r.PrevHash = 3, make(attest.Bytes, 32)
	env, _ := collectortest.Sign(t, other.Key, r)
	rejected("other key", env, topic, collector.ReasonUnknownKey, 3)

	// Gap: 3 was issued above but never delivered intact; 4 skipped too.
	gw.Skip(t) // 4
	r5 := gw.Next(t, nil)
	ingest(t, c, topic, r5)
	g = gateway(t, c, gw.ID)
	if g.LastSeq != 5 || g.Chain != collector.ChainGap || g.Missing != 2 || len(g.ChainEvents) != 1 || g.ChainEvents[0].Kind != collector.OutcomeGap {
		t.Fatalf("after gap: chain %s missing %d events %+v", g.Chain, g.Missing, g.ChainEvents)
	}

	// Fork: a different report with seq 2, validly signed.
	r = collectortest.SampleReport(gw.ID)
	r.Seq, r.PrevHash, r.Verdict = 2, make(attest.Bytes, 32), "deny"
	fork, _ := collectortest.Sign(t, gw.Key, r)
	rejected("fork", fork, topic, collector.ReasonFork, 2)
	if g := gateway(t, c, gw.ID); g.Chain != collector.ChainFork {
		t.Fatalf("chain after fork: %s", g.Chain)
	}

	// Broken chain: seq 6 whose prev_hash does not name 5.
	r = collectortest.SampleReport(gw.ID)
	r.Seq, r.PrevHash = 6, bytes.Repeat([]byte{1}, 32)
	broken, _ := collectortest.Sign(t, gw.Key, r)
	rejected("broken chain", broken, topic, collector.ReasonBrokenChain, 6)

	// Malformed, oversized, topic mismatch, unknown gateway.
	rejected("malformed", []byte("\x81\xa1v\x01 not msgpack"), topic, collector.ReasonMalformed, 0)
	rejected("oversized", make([]byte, 2<<20), topic, collector.ReasonOversized, 0)
	rejected("topic", r5, reportTopic("gw-0002"), collector.ReasonTopic, 5)
	stranger := collectortest.NewGateway(t, "gw-stranger")
	ingest(t, c, reportTopic(stranger.ID), stranger.Next(t, nil))
	if rj := lastRejection(t, c); rj.Reason != collector.ReasonUnknownGW || rj.GatewayID != "gw-stranger" {
		t.Fatalf("unknown gateway: %+v", rj)
	}
	if _, err := c.Store().GatewayDetail(context.Background(), "gw-stranger", 0); err != collector.ErrNotFound {
		t.Fatalf("an unknown gateway got a row: %v", err)
	}

	// Every rejection is listed with its reason.
	var reasons []string
	for _, rj := range rejections(t, c) {
		reasons = append(reasons, rj.Reason)
	}
	want := []string{"unknown gateway", "topic mismatch", "oversized", "malformed", "broken chain", "fork", "unknown key", "bad signature", "replay"}
	if !reflect.DeepEqual(reasons, want) {
		t.Fatalf("rejections %q, want %q", reasons, want)
	}
	if g := gateway(t, c, gw.ID); g.Rejected != 7 || g.Reports != 3 {
		t.Fatalf("counters: rejected %d reports %d", g.Rejected, g.Reports)
	}
}

// TestLateArrival: a report filling a gap is stored but not applied, and
// the gap closes when every missing report arrived.
func TestLateArrival(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-late")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, "", gw)})
	topic := reportTopic(gw.ID)
	r1 := gw.Next(t, nil)
	r2 := gw.Next(t, func(r *attest.Report) { r.Modules[0].Firmware = "OLD-2" })
	r3 := gw.Next(t, func(r *attest.Report) { r.Modules[0].Firmware = "NEW-3" })
	ingest(t, c, topic, r1)
	ingest(t, c, topic, r3)
	if g := gateway(t, c, gw.ID); g.Chain != collector.ChainGap || g.Missing != 1 {
		t.Fatalf("gap not seen: %s %d", g.Chain, g.Missing)
	}
	ingest(t, c, topic, r2)
	g := gateway(t, c, gw.ID)
	if g.Chain != collector.ChainOK || g.Missing != 0 || g.LastSeq != 3 || g.Modules[0].Firmware != "NEW-3" || g.Reports != 3 {
		t.Fatalf("after late arrival: chain %s missing %d seq %d firmware %s reports %d", g.Chain, g.Missing, g.LastSeq, g.Modules[0].Firmware, g.Reports)
	}
	if len(g.ChainEvents) != 2 || g.ChainEvents[0].Kind != collector.OutcomeLate {
		t.Fatalf("chain events: %+v", g.ChainEvents)
	}
	ingest(t, c, topic, r2)
	if rj := lastRejection(t, c); rj.Reason != collector.ReasonReplay {
		t.Fatalf("late replay: %+v", rj)
	}
	rs, err := c.Store().Reports(context.Background(), gw.ID, 10)
	if err != nil || len(rs) != 3 || rs[1].Outcome != collector.OutcomeLate || rs[0].Outcome != collector.OutcomeGap {
		t.Fatalf("reports: %v %+v", err, rs)
	}
	var body struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(rs[0].Report, &body); err != nil || body.Seq != 3 {
		t.Fatalf("stored report body: %v %s", err, rs[0].Report)
	}
}

// TestModuleHistory: swaps, firmware and SIM changes are told apart.
func TestModuleHistory(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-hist")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, "", gw)})
	topic := reportTopic(gw.ID)
	ingest(t, c, topic, gw.Next(t, nil))
	ingest(t, c, topic, gw.Next(t, func(r *attest.Report) { r.Modules[0].Firmware = "EC25EFAR06A09M4G" }))
	ingest(t, c, topic, gw.Next(t, func(r *attest.Report) {
		r.Modules[0].Firmware = "EC25EFAR06A09M4G"
		r.Modules[0].ICCID = "8949020000099999999"
	}))
	ingest(t, c, topic, gw.Next(t, func(r *attest.Report) {
		r.Modules[0] = attest.Module{Manufacturer: "SIMCOM", Model: "SIM7600E", Firmware: "LE20B04", Port: "/dev/ttyUSB2", IMEI: "862636050000001", Vendor: "simcom", OriginCountry: "CN"}
	}))
	ingest(t, c, topic, gw.Next(t, func(r *attest.Report) { r.Modules = nil }))
	g := gateway(t, c, gw.ID)
	var kinds []string
	for i := len(g.History) - 1; i >= 0; i-- {
		kinds = append(kinds, g.History[i].Kind)
	}
	want := []string{collector.ChangeSeen, collector.ChangeFirmware, collector.ChangeSIM, collector.ChangeSwapped, collector.ChangeRemoved}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("history %q, want %q", kinds, want)
	}
	if sw := g.History[1]; sw.IMEI != "862636050000001" || !strings.Contains(sw.Detail, "867698041234561") {
		t.Fatalf("swap entry: %+v", sw)
	}
	if len(g.Modules) != 0 {
		t.Fatalf("modules after removal: %+v", g.Modules)
	}
}

// TestTOFU: an unknown gateway claims a pool key; the pin holds and no
// other gateway can claim the same key.
func TestTOFU(t *testing.T) {
	a := collectortest.NewGateway(t, "gw-a")
	pool := "* " + strings.Fields(a.Enrollment())[1] + "\n"
	keys := writeKeys(t, pool)
	c := newCollector(t, collector.Config{KeysFile: keys, TOFU: true})
	ingest(t, c, reportTopic("gw-a"), a.Next(t, nil))
	g := gateway(t, c, "gw-a")
	if g.Trust != "tofu" || g.KeyID != a.Key.ID() || g.LastSeq != 1 {
		t.Fatalf("tofu pin: %+v", g.Gateway)
	}
	ingest(t, c, reportTopic("gw-a"), a.Next(t, nil))
	if g := gateway(t, c, "gw-a"); g.LastSeq != 2 {
		t.Fatalf("pinned gateway's second report: %+v", g.Gateway)
	}
	// Another gateway with the same (pool) key is refused.
	b := &collectortest.Gateway{ID: "gw-b", Key: a.Key}
	ingest(t, c, reportTopic("gw-b"), b.Next(t, nil))
	if rj := lastRejection(t, c); rj.Reason != collector.ReasonUnknownKey || rj.GatewayID != "gw-b" {
		t.Fatalf("second claim of a pool key: %+v", rj)
	}
	// Without TOFU the same collector database refuses unknown gateways.
	c2 := newCollector(t, collector.Config{KeysFile: keys})
	ingest(t, c2, reportTopic("gw-c"), collectortest.NewGateway(t, "gw-c").Next(t, nil))
	if rj := lastRejection(t, c2); rj.Reason != collector.ReasonUnknownGW {
		t.Fatalf("tofu off: %+v", rj)
	}
}

// TestRestartKeepsChain: the chain head survives a restart, so the next
// report is judged against it and an old one is a replay.
func TestRestartKeepsChain(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-restart")
	keys := writeKeys(t, "", gw)
	db := "sqlite://" + filepath.Join(t.TempDir(), "c.db")
	c := newCollector(t, collector.Config{KeysFile: keys, Database: db})
	r1 := gw.Next(t, nil)
	r2 := gw.Next(t, nil)
	ingest(t, c, reportTopic(gw.ID), r1)
	ingest(t, c, reportTopic(gw.ID), r2)
	c.Close()

	c = newCollector(t, collector.Config{KeysFile: keys, Database: db})
	ingest(t, c, reportTopic(gw.ID), r2)
	if rj := lastRejection(t, c); rj.Reason != collector.ReasonReplay {
		t.Fatalf("replay after restart: %+v", rj)
	}
	ingest(t, c, reportTopic(gw.ID), gw.Next(t, nil))
	if g := gateway(t, c, gw.ID); g.LastSeq != 3 || g.Chain != collector.ChainOK {
		t.Fatalf("after restart: %+v", g.Gateway)
	}
	if v, err := c.Store().SchemaVersion(context.Background()); err != nil || v != 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
}

// TestStatus: birth and will set online/offline; a will that overtook the
// next birth is ignored; a status produced by the uplink package decodes
// (status_test.go).
func TestStatus(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-st")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, "", gw)})
	st := func(state, boot string, conn int, reason string) []byte {
		return fmt.Appendf(nil, `{"state":%q,"gateway_id":"gw-st","boot_id":%q,"kid":%q,"conn":%d,"reason":%q,"outbox_depth":3,"dropped":1}`, state, boot, gw.Key.ID(), conn, reason)
	}
	online := func() *bool { return gateway(t, c, gw.ID).Online }
	ingest(t, c, statusTopic(gw.ID), st("online", "b1", 1, ""))
	if o := online(); o == nil || !*o {
		t.Fatalf("online: %v", o)
	}
	ingest(t, c, statusTopic(gw.ID), st("online", "b2", 1, "")) // rebooted
	ingest(t, c, statusTopic(gw.ID), st("offline", "b1", 1, "connection lost"))
	if o := online(); o == nil || !*o {
		t.Fatal("a stale will from the previous boot turned the gateway offline")
	}
	ingest(t, c, statusTopic(gw.ID), st("offline", "b2", 1, "shutdown"))
	g := gateway(t, c, gw.ID)
	if g.Online == nil || *g.Online || g.StatusReason != "shutdown" || g.StatusKeyID != gw.Key.ID() || g.OutboxDepth == nil || *g.OutboxDepth != 3 {
		t.Fatalf("offline: %+v", g.Gateway)
	}
	// Junk on the status topic is ignored, and statuses of strangers too.
	for _, p := range [][]byte{nil, []byte("{"), []byte(`{"state":"sleeping"}`), bytes.Repeat([]byte("x"), 10000)} {
		ingest(t, c, statusTopic(gw.ID), p)
	}
	ingest(t, c, statusTopic("gw-nobody"), []byte(`{"state":"online","gateway_id":"gw-nobody"}`))
	if _, err := c.Store().GatewayDetail(context.Background(), "gw-nobody", 0); err != collector.ErrNotFound {
		t.Fatalf("a stranger's status made a row: %v", err)
	}
}

// TestEnrollmentReload: a gateway enrolled after start is trusted after
// ReloadKeys; a broken file keeps the old keys.
func TestEnrollmentReload(t *testing.T) {
	a := collectortest.NewGateway(t, "gw-a")
	b := collectortest.NewGateway(t, "gw-b")
	keys := writeKeys(t, "", a)
	c := newCollector(t, collector.Config{KeysFile: keys})
	ingest(t, c, reportTopic("gw-b"), b.Next(t, nil))
	if rj := lastRejection(t, c); rj.Reason != collector.ReasonUnknownGW {
		t.Fatalf("before enrollment: %+v", rj)
	}
	if err := os.WriteFile(keys, []byte(a.Enrollment()+"gw-b not-a-key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.ReloadKeys(); err == nil || !strings.Contains(err.Error(), "gateways.keys:2:") {
		t.Fatalf("broken file: %v", err)
	}
	ingest(t, c, reportTopic("gw-a"), a.Next(t, nil)) // old keys still in force
	if err := os.WriteFile(keys, []byte(a.Enrollment()+b.Enrollment()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	ingest(t, c, reportTopic("gw-b"), b.Next(t, nil))
	if g := gateway(t, c, "gw-b"); g.LastSeq != 2 || g.Trust != "enrolled" {
		t.Fatalf("after enrollment: %+v", g.Gateway)
	}
	if g := gateway(t, c, "gw-a"); g.LastSeq != 1 {
		t.Fatalf("gw-a: %+v", g.Gateway)
	}
}

// TestLateBelowFirst: with collectors sharing a subscription the first
// report stored may not be the lowest; the seqs between are still counted.
func TestLateBelowFirst(t *testing.T) {
	gw := collectortest.NewGateway(t, "gw-low")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, "", gw)})
	r1, r2, r3 := gw.Next(t, nil), gw.Next(t, nil), gw.Next(t, nil)
	ingest(t, c, reportTopic(gw.ID), r3)
	ingest(t, c, reportTopic(gw.ID), r1)
	if g := gateway(t, c, gw.ID); g.Chain != collector.ChainGap || g.Missing != 1 || g.LastSeq != 3 {
		t.Fatalf("after 3, 1: chain %s missing %d seq %d", g.Chain, g.Missing, g.LastSeq)
	}
	ingest(t, c, reportTopic(gw.ID), r2)
	if g := gateway(t, c, gw.ID); g.Chain != collector.ChainOK || g.Missing != 0 || g.Reports != 3 {
		t.Fatalf("after 3, 1, 2: chain %s missing %d reports %d", g.Chain, g.Missing, g.Reports)
	}
}

// TestTOFUFromBirth: with trust.tofu on and no enrollment, an unknown
// gateway's birth message pins the key it announces; its reports verify,
// and a second birth announcing another key changes nothing.
func TestTOFUFromBirth(t *testing.T) {
	a := collectortest.NewGateway(t, "gw-new")
	c := newCollector(t, collector.Config{KeysFile: writeKeys(t, ""), TOFU: true})
	birth := func(pub, kid string) []byte {
		b, _ := json.Marshal(collector.Status{State: "online", GatewayID: "gw-new", BootID: "b1", KeyID: kid, PubKey: pub, Conn: 1})
		return b
	}
	ingest(t, c, "modemguard/v1/gw-new/status", birth(attest.EncodePublicKey(a.Key.Public()), a.Key.ID()))
	ingest(t, c, reportTopic("gw-new"), a.Next(t, nil))
	g := gateway(t, c, "gw-new")
	if g.Trust != "tofu" || g.LastSeq != 1 {
		t.Fatalf("after birth and report: %+v", g.Gateway)
	}
	other := collectortest.NewGateway(t, "gw-new")
	ingest(t, c, "modemguard/v1/gw-new/status", birth(attest.EncodePublicKey(other.Key.Public()), other.Key.ID()))
	ingest(t, c, reportTopic("gw-new"), other.Next(t, nil))
	if rj := lastRejection(t, c); rj.GatewayID != "gw-new" || rj.Reason == "" {
		t.Fatalf("a report signed with a newly announced key was accepted: %+v", rj)
	}
	// A key id that does not match the announced key pins nothing.
	d := collectortest.NewGateway(t, "gw-d")
	ingest(t, c, "modemguard/v1/gw-d/status", []byte(`{"state":"online","gateway_id":"gw-d","kid":"0000000000000000","pubkey":"`+attest.EncodePublicKey(d.Key.Public())+`","conn":1}`))
	ingest(t, c, reportTopic("gw-d"), d.Next(t, nil))
	if rj := lastRejection(t, c); rj.GatewayID != "gw-d" || rj.Reason != collector.ReasonUnknownGW {
		t.Fatalf("mismatched kid: %+v", rj)
	}
}
