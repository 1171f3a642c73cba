package collector_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// benchIngest measures verified reports per second on one goroutine: the
// full Ingest path of a valid report (decode, Ed25519 signature, chain
// against the stored head, module diff, one database transaction).
// Reports of 100 gateways are interleaved as a fleet's would be.
func benchIngest(b *testing.B, dsn string) {
	const fleet = 100
	var gws []*collectortest.Gateway
	for i := range fleet {
		gws = append(gws, collectortest.NewGateway(b, fmt.Sprintf("gw-%04d", i)))
	}
	c := newCollector(b, collector.Config{KeysFile: writeKeys(b, "", gws...), Database: dsn})
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = gws[i%fleet].Next(b, nil)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs[0])))
	b.ResetTimer()
	for i := range b.N {
		if err := c.Ingest(ctx, reportTopic(gws[i%fleet].ID), msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
	if path, ok := strings.CutPrefix(dsn, "sqlite://"); ok && b.N >= 1000 {
		var size int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				size += fi.Size()
			}
		}
		b.ReportMetric(float64(size)/float64(b.N), "db-bytes/report")
	}
	if rs := rejections(b, c); len(rs) != 0 {
		b.Fatalf("rejections: %+v", rs[0])
	}
}

func BenchmarkIngestSQLite(b *testing.B) {
	benchIngest(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"))
}

// BenchmarkIngestPostgres runs when MODEMGUARD_TEST_POSTGRES names a
// database (postgres://...); the system tier starts one and sets it.
func BenchmarkIngestPostgres(b *testing.B) {
	dsn := os.Getenv("MODEMGUARD_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("MODEMGUARD_TEST_POSTGRES is not set")
	}
	benchIngest(b, dsn)
}
