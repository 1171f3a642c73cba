package collector_test

import (
	"context"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// TestChallengeOutcomes: an answer after the deadline is "late", one whose
// clock-synced time lies before the challenge is "stale".
func TestChallengeOutcomes(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := collectortest.NewGateway(t, "gw-ch")
	var offset atomic.Int64 // added to the collector's clock
	var answerTime atomic.Int64
	var late atomic.Bool // the answer is received 10 min after the challenge
	b.Subscribe(t, "modemguard/v1/gw-ch/challenge", func(_ string, nonce []byte) {
		env := gw.Next(t, func(r *attest.Report) {
			r.Nonce = append(attest.Bytes(nil), nonce...)
			r.TimeMS = answerTime.Load()
		})
		go func() {
			if late.Load() {
				offset.Store(int64(10 * time.Minute))
			}
			b.Publish(t, reportTopic(gw.ID), env, false)
		}()
	})
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: writeKeys(t, "", gw), ChallengeTimeout: time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	run(t, c)
	waitFor(t, "connected", c.Connected)

	outcome := func() string {
		d, err := c.Store().GatewayDetail(context.Background(), gw.ID, 0)
		if err != nil || len(d.Challenges) == 0 {
			return ""
		}
		return d.Challenges[0].Outcome
	}
	late.Store(true)
	answerTime.Store(time.Now().UnixMilli())
	if _, err := c.Challenge(context.Background(), gw.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a late answer", func() bool { return outcome() == collector.ChallengeLate })

	late.Store(false)
	offset.Store(0)
	answerTime.Store(time.Now().Add(-time.Hour).UnixMilli())
	if _, err := c.Challenge(context.Background(), gw.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a stale answer", func() bool { return outcome() == collector.ChallengeStale })
	if _, err := c.Challenge(context.Background(), "bad/id"); err == nil {
		t.Fatal("challenge of a bad id: no error")
	}
}

// TestSilentAndWatch: a gateway without reports for SilentAfter is silent;
// a changed enrollment file is picked up without a signal.
func TestSilentAndWatch(t *testing.T) {
	b := collectortest.StartBroker(t)
	a := collectortest.NewGateway(t, "gw-a")
	nb := collectortest.NewGateway(t, "gw-b")
	keys := writeKeys(t, "", a)
	var offset atomic.Int64
	c := newCollector(t, collector.Config{Broker: b.URL, KeysFile: keys, KeysPoll: 20 * time.Millisecond, SilentAfter: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	run(t, c)
	waitFor(t, "connected", c.Connected)
	ingest(t, c, reportTopic(a.ID), a.Next(t, nil))
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	silent := func() bool {
		var gws []collector.Gateway
		getJSON(t, srv.URL+"/api/v1/gateways", &gws)
		return gws[0].Silent
	}
	if silent() {
		t.Fatal("silent right after a report")
	}
	offset.Store(int64(2 * time.Hour))
	if !silent() {
		t.Fatal("not silent after 2h")
	}

	// Enroll gw-b by rewriting the file (a new size, so the change shows
	// even on a filesystem with coarse timestamps).
	if err := os.WriteFile(keys, []byte(a.Enrollment()+nb.Enrollment()), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gw-b accepted after the file changed", func() bool {
		_ = c.Ingest(context.Background(), reportTopic(nb.ID), nb.Next(t, nil))
		_, err := c.Store().GatewayDetail(context.Background(), nb.ID, 0)
		return err == nil
	})
}
