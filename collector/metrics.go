package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in the Collector's own registry (never the global one), so
// several collectors in one process (tests) do not collide.
type metrics struct {
	reg           *prometheus.Registry
	accepted      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	status        *prometheus.CounterVec
	challenges    *prometheus.CounterVec
	verifySeconds prometheus.Histogram
	dbSeconds     *prometheus.HistogramVec
	dbErrors      prometheus.Counter
	connected     prometheus.Gauge
	connects      prometheus.Counter
}

func newMetrics(bufferDepth func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_collector_reports_accepted_total",
			Help: "Reports whose signature verified and that were stored, by outcome (ok, gap, late)."}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_collector_reports_rejected_total",
			Help: "Reports recorded as rejections, by reason."}, []string{"reason"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_collector_status_messages_total",
			Help: "Status messages, by what they did (online, offline, ignored)."}, []string{"result"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_collector_challenges_total",
			Help: "Challenges sent and how they ended (sent, timeout, failed)."}, []string{"result"}),
		verifySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "modemguard_collector_verify_seconds",
			Help: "Time to verify one report (decode, signature, chain).", Buckets: prometheus.ExponentialBuckets(10e-6, 2, 12)}),
		dbSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "modemguard_collector_db_seconds",
			Help: "Database transaction latency, by operation.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"op"}),
		dbErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "modemguard_collector_db_errors_total",
			Help: "Database errors while storing a message (the message is retried)."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "modemguard_collector_mqtt_connected",
			Help: "1 while connected to the broker."}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Name: "modemguard_collector_mqtt_connections_total",
			Help: "Successful connections to the broker."}),
	}
	m.reg.MustRegister(m.accepted, m.rejected, m.status, m.challenges, m.verifySeconds, m.dbSeconds, m.dbErrors, m.connected, m.connects,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "modemguard_collector_buffer_depth",
			Help: "Messages received and waiting for the database."}, bufferDepth),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
