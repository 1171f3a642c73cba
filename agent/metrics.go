package agent

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the agent's Prometheus metrics. Create them with NewMetrics,
// pass them in Options, and serve Handler.
type Metrics struct {
	reg *prometheus.Registry

	firewall *prometheus.CounterVec
	events   *prometheus.CounterVec

	mu     sync.Mutex
	agent  *Agent
	states map[int]ModuleState
}

// NewMetrics registers the agent's metrics on a registry of their own (plus
// the Go runtime and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), states: map[int]ModuleState{}}
	m.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.firewall = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_at_firewall_decisions_total",
		Help: "AT firewall decisions on governed command lines, by action."}, []string{"action"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modemguard_events_total",
		Help: "Events recorded for reports, by kind."}, []string{"kind"})
	m.reg.MustRegister(m.firewall, m.events)
	m.reg.MustRegister(&stateCollector{m: m})
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) attach(a *Agent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agent = a
}

func (m *Metrics) observe(s ModuleState, ev []Event) {
	m.mu.Lock()
	m.states[s.Slot] = s
	m.mu.Unlock()
	for _, e := range ev {
		m.events.WithLabelValues(e.Kind).Inc()
		if e.Kind == EventATFirewall {
			m.firewall.WithLabelValues(e.Action).Inc()
		}
	}
}

var (
	descMade     = prometheus.NewDesc("modemguard_reports_made_total", "Reports signed and committed to the outbox.", nil, nil)
	descSent     = prometheus.NewDesc("modemguard_reports_sent_total", "Reports the broker acknowledged (PUBACK).", nil, nil)
	descDropped  = prometheus.NewDesc("modemguard_reports_dropped_total", "Reports lost: dropped from a full or too old outbox, or never committed (disk full).", nil, nil)
	descDepth    = prometheus.NewDesc("modemguard_outbox_depth", "Reports waiting in the outbox.", nil, nil)
	descMQTT     = prometheus.NewDesc("modemguard_mqtt_connected", "1 while connected to the broker.", nil, nil)
	descUp       = prometheus.NewDesc("modemguard_modem_up", "1 while the module in this slot answers.", []string{"slot", "port"}, nil)
	descVerdict  = prometheus.NewDesc("modemguard_modem_verdict", "1 for the module's current policy verdict.", []string{"slot", "verdict"}, nil)
	descATErrors = prometheus.NewDesc("modemguard_at_timeouts_total", "AT commands abandoned without an answer.", []string{"slot"}, nil)
	descATCmds   = prometheus.NewDesc("modemguard_at_commands_total", "AT commands sent.", []string{"slot"}, nil)
)

// stateCollector reads the agent's state at scrape time.
type stateCollector struct{ m *Metrics }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMade, descSent, descDropped, descDepth, descMQTT, descUp, descVerdict, descATErrors, descATCmds} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	a := c.m.agent
	states := make([]ModuleState, 0, len(c.m.states))
	for _, s := range c.m.states {
		states = append(states, s)
	}
	c.m.mu.Unlock()
	if a != nil && a.upl != nil {
		st := a.upl.Stats()
		ch <- prometheus.MustNewConstMetric(descMade, prometheus.CounterValue, float64(a.made.Load()))
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(st.Delivered))
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Outbox.Dropped+a.lost.Load()))
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(st.Outbox.Depth))
		ch <- prometheus.MustNewConstMetric(descMQTT, prometheus.GaugeValue, b2f(st.Connected))
	}
	for _, s := range states {
		slot := strconv.Itoa(s.Slot)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(s.Up), slot, s.Port)
		if s.Module != nil {
			ch <- prometheus.MustNewConstMetric(descVerdict, prometheus.GaugeValue, 1, slot, s.Verdict.Action.String())
		}
		ch <- prometheus.MustNewConstMetric(descATErrors, prometheus.CounterValue, float64(s.AT.Timeouts), slot)
		ch <- prometheus.MustNewConstMetric(descATCmds, prometheus.CounterValue, float64(s.AT.Commands), slot)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
