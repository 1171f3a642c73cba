package collector

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/modemguard/modemguard/attest"
)

// Gateway is one gateway in the inventory, as GET /api/v1/gateways shows it.
type Gateway struct {
	GatewayID    string          `json:"gateway_id"`
	Online       *bool           `json:"online"` // null until a status message arrived
	Silent       bool            `json:"silent"` // no verified report for Config.SilentAfter
	LastSeenMS   int64           `json:"last_seen_ms"`
	LastSeq      uint64          `json:"last_seq"`
	Chain        string          `json:"chain"` // none, ok, gap, broken, fork
	ChainDetail  string          `json:"chain_detail,omitempty"`
	Missing      int64           `json:"missing"` // reports known to be missing
	Verdict      string          `json:"verdict"`
	Modules      []attest.Module `json:"modules"` // the latest identity, key names as in the report
	Trust        string          `json:"trust"`   // enrolled, tofu, or "" before a report verified
	KeyID        string          `json:"kid"`
	StatusKeyID  string          `json:"status_kid,omitempty"` // the key id the birth message announced
	BootID       string          `json:"boot_id"`
	AgentVersion string          `json:"agent_version"`
	ReportTimeMS int64           `json:"report_time_ms"`
	ClockSynced  bool            `json:"clock_synced"`
	FirstSeenMS  int64           `json:"first_seen_ms"`
	StatusMS     int64           `json:"status_ms,omitempty"`
	StatusReason string          `json:"status_reason,omitempty"`
	OutboxDepth  *int64          `json:"outbox_depth,omitempty"`
	Dropped      int64           `json:"dropped"`
	Reports      int64           `json:"reports"`  // stored reports, ever
	Rejected     int64           `json:"rejected"` // rejections attributed to it, ever
}

// GatewayDetail is GET /api/v1/gateways/{id}.
type GatewayDetail struct {
	Gateway
	History     []ModuleChange `json:"history"`
	ChainEvents []ChainEvent   `json:"chain_events"`
	Rejections  []Rejection    `json:"rejections"`
	Challenges  []ChallengeRow `json:"challenges"`
}

// ChainEvent is a report accepted out of sequence.
type ChainEvent struct {
	Seq        uint64 `json:"seq"`
	Kind       string `json:"kind"` // gap, late
	Detail     string `json:"detail"`
	ReceivedMS int64  `json:"received_ms"`
}

// Rejection is a report that was not applied.
type Rejection struct {
	ID         int64   `json:"id"`
	GatewayID  string  `json:"gateway_id"`
	Seq        *uint64 `json:"seq"` // null when the report could not be read
	Reason     string  `json:"reason"`
	Detail     string  `json:"detail"`
	Topic      string  `json:"topic"`
	Hash       string  `json:"body_sha256,omitempty"`
	Size       int64   `json:"size"`
	ReceivedMS int64   `json:"received_ms"`
}

// ChallengeRow is one challenge and its outcome.
type ChallengeRow struct {
	Nonce      string `json:"nonce"`
	SentMS     int64  `json:"sent_ms"`
	DeadlineMS int64  `json:"deadline_ms"`
	Outcome    string `json:"outcome"`
	AnsweredMS int64  `json:"answered_ms,omitempty"`
	Seq        uint64 `json:"seq,omitempty"`
	Origin     string `json:"origin"`
}

// StoredReport is one stored report with its decoded body.
type StoredReport struct {
	Seq        uint64          `json:"seq"`
	ReceivedMS int64           `json:"received_ms"`
	TimeMS     int64           `json:"time_ms"`
	Outcome    string          `json:"outcome"`
	Hash       string          `json:"body_sha256"`
	KeyID      string          `json:"kid"`
	Verdict    string          `json:"verdict"`
	Nonce      string          `json:"nonce,omitempty"`
	Report     json.RawMessage `json:"report"`
}

const gatewayCols = `gateway_id, trust, kid, head_seq, missing, chain, chain_detail, verdict, modules, boot_id, agent_version, report_time_ms, clock_synced,
	first_seen_ms, last_seen_ms, reports, rejected, online, status_kid, status_reason, status_ms, outbox_depth, dropped`

type scanner interface{ Scan(...any) error }

func scanGateway(s scanner, silentBefore int64) (Gateway, error) {
	var (
		g             Gateway
		head, synced  int64
		online, depth int64
		modules       string
	)
	err := s.Scan(&g.GatewayID, &g.Trust, &g.KeyID, &head, &g.Missing, &g.Chain, &g.ChainDetail, &g.Verdict, &modules, &g.BootID, &g.AgentVersion,
		&g.ReportTimeMS, &synced, &g.FirstSeenMS, &g.LastSeenMS, &g.Reports, &g.Rejected, &online, &g.StatusKeyID, &g.StatusReason, &g.StatusMS, &depth, &g.Dropped)
	if err != nil {
		return g, err
	}
	g.LastSeq, g.ClockSynced = uint64(head), synced == 1
	if online >= 0 {
		b := online == 1
		g.Online = &b
	}
	if depth >= 0 {
		g.OutboxDepth = &depth
	}
	g.Modules = []attest.Module{}
	_ = json.Unmarshal([]byte(modules), &g.Modules)
	g.Silent = g.LastSeenMS < silentBefore
	return g, nil
}

// Gateways lists the inventory. A gateway whose last verified report is
// older than silentBefore (Unix ms) is marked silent.
func (s *Store) Gateways(ctx context.Context, silentBefore int64) ([]Gateway, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+gatewayCols+` FROM gateways ORDER BY gateway_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Gateway{}
	for rows.Next() {
		g, err := scanGateway(rows, silentBefore)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GatewayDetail returns one gateway with its module history, chain events,
// recent rejections and challenges; ErrNotFound if it is unknown.
func (s *Store) GatewayDetail(ctx context.Context, id string, silentBefore int64) (*GatewayDetail, error) {
	g, err := scanGateway(s.db.QueryRowContext(ctx, s.q(`SELECT `+gatewayCols+` FROM gateways WHERE gateway_id = ?`), id), silentBefore)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d := &GatewayDetail{Gateway: g, History: []ModuleChange{}, ChainEvents: []ChainEvent{}, Challenges: []ChallengeRow{}}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, time_ms, received_ms, kind, imei, old_value, new_value, detail FROM module_changes WHERE gateway_id = ? ORDER BY id DESC LIMIT 500`), id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var m ModuleChange
		var seq int64
		if err := rows.Scan(&seq, &m.TimeMS, &m.ReceivedMS, &m.Kind, &m.IMEI, &m.Old, &m.New, &m.Detail); err != nil {
			rows.Close()
			return nil, err
		}
		m.Seq = uint64(seq)
		d.History = append(d.History, m)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT seq, kind, detail, received_ms FROM chain_events WHERE gateway_id = ? ORDER BY id DESC LIMIT 200`), id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var e ChainEvent
		var seq int64
		if err := rows.Scan(&seq, &e.Kind, &e.Detail, &e.ReceivedMS); err != nil {
			rows.Close()
			return nil, err
		}
		e.Seq = uint64(seq)
		d.ChainEvents = append(d.ChainEvents, e)
	}
	rows.Close()
	if d.Rejections, err = s.Rejections(ctx, id, 200); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT nonce, sent_ms, deadline_ms, outcome, answered_ms, seq, origin FROM challenges WHERE gateway_id = ? ORDER BY id DESC LIMIT 100`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ch ChallengeRow
		var seq int64
		if err := rows.Scan(&ch.Nonce, &ch.SentMS, &ch.DeadlineMS, &ch.Outcome, &ch.AnsweredMS, &seq, &ch.Origin); err != nil {
			return nil, err
		}
		ch.Seq = uint64(seq)
		d.Challenges = append(d.Challenges, ch)
	}
	return d, rows.Err()
}

// Reports returns a gateway's latest stored reports, newest seq first.
func (s *Store) Reports(ctx context.Context, id string, limit int) ([]StoredReport, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT seq, received_ms, time_ms, outcome, hash, kid, verdict, nonce, envelope FROM reports WHERE gateway_id = ? ORDER BY seq DESC LIMIT ?`), id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []StoredReport{}
	for rows.Next() {
		var r StoredReport
		var seq int64
		var envelope []byte
		if err := rows.Scan(&seq, &r.ReceivedMS, &r.TimeMS, &r.Outcome, &r.Hash, &r.KeyID, &r.Verdict, &r.Nonce, &envelope); err != nil {
			return nil, err
		}
		r.Seq = uint64(seq)
		r.Report = json.RawMessage("null")
		if env, err := attest.DecodeEnvelope(envelope); err == nil {
			if b, err := attest.BodyJSON(env.Body); err == nil {
				r.Report = b
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Rejections returns the latest rejections, of one gateway or ("") all.
func (s *Store) Rejections(ctx context.Context, gatewayID string, limit int) ([]Rejection, error) {
	q, args := `SELECT id, gateway_id, seq, reason, detail, topic, hash, size, received_ms FROM rejections ORDER BY id DESC LIMIT ?`, []any{limit}
	if gatewayID != "" {
		q, args = `SELECT id, gateway_id, seq, reason, detail, topic, hash, size, received_ms FROM rejections WHERE gateway_id = ? ORDER BY id DESC LIMIT ?`, []any{gatewayID, limit}
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Rejection{}
	for rows.Next() {
		var r Rejection
		var seq sql.NullInt64
		if err := rows.Scan(&r.ID, &r.GatewayID, &seq, &r.Reason, &r.Detail, &r.Topic, &r.Hash, &r.Size, &r.ReceivedMS); err != nil {
			return nil, err
		}
		if seq.Valid {
			v := uint64(seq.Int64)
			r.Seq = &v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

//go:embed web
var webFS embed.FS

// Handler serves the JSON API under /api/v1/, Prometheus metrics at
// /metrics, /healthz, and the web page at /.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	silentBefore := func() int64 { return c.cfg.Now().Add(-c.cfg.SilentAfter).UnixMilli() }
	mux.HandleFunc("GET /api/v1/gateways", func(w http.ResponseWriter, r *http.Request) {
		c.timed("api", func() { gs, err := c.store.Gateways(r.Context(), silentBefore()); writeJSON(w, gs, err) })
	})
	mux.HandleFunc("GET /api/v1/gateways/{id}", func(w http.ResponseWriter, r *http.Request) {
		c.timed("api", func() {
			d, err := c.store.GatewayDetail(r.Context(), r.PathValue("id"), silentBefore())
			writeJSON(w, d, err)
		})
	})
	mux.HandleFunc("GET /api/v1/gateways/{id}/reports", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := limitParam(w, r, 20)
		if !ok {
			return
		}
		c.timed("api", func() { rs, err := c.store.Reports(r.Context(), r.PathValue("id"), limit); writeJSON(w, rs, err) })
	})
	mux.HandleFunc("GET /api/v1/rejections", func(w http.ResponseWriter, r *http.Request) {
		limit, ok := limitParam(w, r, 100)
		if !ok {
			return
		}
		c.timed("api", func() {
			rs, err := c.store.Rejections(r.Context(), r.URL.Query().Get("gateway"), limit)
			writeJSON(w, rs, err)
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := c.store.Ping(ctx); err != nil {
			http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		connected := c.currentClient() != nil
		writeJSON(w, map[string]any{"database": "ok", "mqtt_connected": connected}, nil)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.metrics.reg, promhttp.HandlerOpts{}))
	sub, _ := fs.Sub(webFS, "web")
	static := http.FileServerFS(sub)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		static.ServeHTTP(w, r)
	}))
	return mux
}

func (c *Collector) timed(op string, fn func()) {
	start := time.Now()
	fn()
	c.metrics.dbSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func limitParam(w http.ResponseWriter, r *http.Request, def int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		http.Error(w, "limit: want a number from 1 to 10000", http.StatusBadRequest)
		return 0, false
	}
	return n, true
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "not found", http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}
