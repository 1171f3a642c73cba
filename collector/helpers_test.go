package collector_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// testLog routes a collector's log into the test's output.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// writeKeys writes an enrollment file for the gateways (plus extra lines)
// and returns its path.
func writeKeys(t testing.TB, extra string, gws ...*collectortest.Gateway) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test enrollment\n")
	for _, g := range gws {
		b.WriteString(g.Enrollment())
	}
	b.WriteString(extra)
	p := filepath.Join(t.TempDir(), "gateways.keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newCollector opens a collector on a fresh SQLite file unless cfg names a
// database, and closes it when the test ends.
func newCollector(t testing.TB, cfg collector.Config) *collector.Collector {
	t.Helper()
	if cfg.Database == "" {
		cfg.Database = "sqlite://" + filepath.Join(t.TempDir(), "collector.db")
	}
	if cfg.Logger == nil {
		cfg.Logger = logger(t)
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	c, err := collector.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// run runs c until the test ends.
func run(t testing.TB, c *collector.Collector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("collector.Run did not return within 20s of cancel")
		}
	})
}

// waitFor polls cond until it holds, for at most 15s: the database commit
// has no event a test could wait on.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func ingest(t testing.TB, c *collector.Collector, topic string, payload []byte) {
	t.Helper()
	if err := c.Ingest(context.Background(), topic, payload); err != nil {
		t.Fatalf("ingest %s: %v", topic, err)
	}
}

func reportTopic(id string) string { return "modemguard/v1/" + id + "/report" }
func statusTopic(id string) string { return "modemguard/v1/" + id + "/status" }

func gateway(t testing.TB, c *collector.Collector, id string) *collector.GatewayDetail {
	t.Helper()
	d, err := c.Store().GatewayDetail(context.Background(), id, 0)
	if err != nil {
		t.Fatalf("gateway %s: %v", id, err)
	}
	return d
}

func rejections(t testing.TB, c *collector.Collector) []collector.Rejection {
	t.Helper()
	rs, err := c.Store().Rejections(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
