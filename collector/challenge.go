package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/modemguard/modemguard/attest"
)

// Challenge outcomes (the outcome column of challenges).
const (
	ChallengePending  = "pending"
	ChallengeAnswered = "answered" // a report carrying the nonce arrived in time
	ChallengeLate     = "late"     // it arrived after the deadline
	ChallengeStale    = "stale"    // it arrived, but its time_ms lies before the challenge (beyond FreshSkew)
	ChallengeTimeout  = "timeout"  // no answer by the deadline (a late answer still turns it into "late")
	ChallengeFailed   = "failed"   // the nonce could not be published
)

// NonceSize is the size of the nonces the collector sends (the wire format
// allows 8 to 64 bytes).
const NonceSize = 16

func newNonce() []byte {
	b := make([]byte, NonceSize)
	_, _ = crand.Read(b)
	return b
}

// challengeTopic is where a gateway listens for nonces.
func challengeTopic(gatewayID string) string { return "modemguard/v1/" + gatewayID + "/challenge" }

// recordChallenge stores a pending challenge.
func (s *Store) recordChallenge(ctx context.Context, gatewayID string, nonce []byte, sent, deadline time.Time, origin string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO challenges (gateway_id, nonce, sent_ms, deadline_ms, outcome, origin) VALUES (?, ?, ?, ?, ?, ?)`),
		gatewayID, hex.EncodeToString(nonce), sent.UnixMilli(), deadline.UnixMilli(), ChallengePending, origin)
	return err
}

// finishChallenge sets the outcome of a challenge still pending.
func (s *Store) finishChallenge(ctx context.Context, gatewayID string, nonce []byte, outcome string, answered time.Time, seq uint64) error {
	var ans int64
	if !answered.IsZero() {
		ans = answered.UnixMilli()
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE challenges SET outcome = ?, answered_ms = ?, seq = ? WHERE gateway_id = ? AND nonce = ? AND outcome = ?`),
		outcome, ans, int64(seq), gatewayID, hex.EncodeToString(nonce), ChallengePending)
	return err
}

// Challenge publishes a fresh nonce to a gateway and records it as pending;
// the answer is recorded when a report carrying the nonce is stored, and
// the challenge times out after Config.ChallengeTimeout.
func (c *Collector) Challenge(ctx context.Context, gatewayID string) ([]byte, error) {
	if !ValidGatewayID(gatewayID) {
		return nil, fmt.Errorf("collector: challenge: gateway id %q is not valid", gatewayID)
	}
	cl := c.currentClient()
	if cl == nil {
		return nil, errors.New("collector: challenge: not connected to the broker")
	}
	nonce := newNonce()
	now := c.cfg.Now()
	if err := c.store.recordChallenge(ctx, gatewayID, nonce, now, now.Add(c.cfg.ChallengeTimeout), "collector"); err != nil {
		return nil, fmt.Errorf("collector: challenge: %w", err)
	}
	// Not retained: a retained challenge is ignored by the gateway.
	if err := waitToken(ctx, cl.Publish(challengeTopic(gatewayID), 1, false, nonce), c.cfg.ConnectTimeout); err != nil {
		_ = c.store.finishChallenge(ctx, gatewayID, nonce, ChallengeFailed, time.Time{}, 0)
		c.metrics.challenges.WithLabelValues(ChallengeFailed).Inc()
		return nil, fmt.Errorf("collector: challenge %s: %w", gatewayID, err)
	}
	c.metrics.challenges.WithLabelValues("sent").Inc()
	return nonce, nil
}

// challengeAll challenges every gateway that is online.
func (c *Collector) challengeAll(ctx context.Context) {
	rows, err := c.store.db.QueryContext(ctx, `SELECT gateway_id FROM gateways WHERE online = 1`)
	if err != nil {
		c.log.Warn("collector: scheduled challenges skipped", "err", err)
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		if _, err := c.Challenge(ctx, id); err != nil {
			c.log.Warn("collector: scheduled challenge failed", "gateway", id, "err", err)
		}
	}
}

// expireChallenges marks pending challenges past their deadline.
func (c *Collector) expireChallenges(ctx context.Context) {
	res, err := c.store.db.ExecContext(ctx, c.store.q(`UPDATE challenges SET outcome = ? WHERE outcome = ? AND deadline_ms < ?`),
		ChallengeTimeout, ChallengePending, c.cfg.Now().UnixMilli())
	if err != nil {
		return
	}
	if n, _ := res.RowsAffected(); n > 0 {
		c.metrics.challenges.WithLabelValues(ChallengeTimeout).Add(float64(n))
		c.log.Warn("collector: challenges unanswered", "count", n)
	}
}

// ChallengeConfig configures SendChallenge. GatewayID and Broker are
// required.
type ChallengeConfig struct {
	Broker             string
	Username, Password string
	CAFile             string
	GatewayID          string
	// Key, if set, is the gateway's public key: the answer's signature is
	// checked and a report that fails is not taken as the answer.
	Key ed25519.PublicKey
	// Timeout bounds the wait for the answer. Default 30s.
	Timeout time.Duration
	// Store, if set, records the challenge and its outcome, as the
	// collector's scheduled challenges are.
	Store  *Store
	Logger *slog.Logger
}

// ChallengeResult is what SendChallenge saw.
type ChallengeResult struct {
	GatewayID string         `json:"gateway_id"`
	Nonce     attest.Bytes   `json:"nonce"`
	Answered  bool           `json:"answered"` // a report carrying the nonce arrived within the timeout
	Verified  bool           `json:"verified"` // and its signature checked out against Key
	Seq       uint64         `json:"seq,omitempty"`
	LatencyMS int64          `json:"latency_ms,omitempty"`
	Report    *attest.Report `json:"report,omitempty"`
}

// SendChallenge connects to the broker on its own, publishes a fresh nonce
// to one gateway and waits for a report carrying it. It needs no running
// collector. A report with another nonce, or one failing the signature
// check when Key is set, is skipped.
func SendChallenge(ctx context.Context, cfg ChallengeConfig) (*ChallengeResult, error) {
	if !ValidGatewayID(cfg.GatewayID) {
		return nil, fmt.Errorf("collector: challenge: gateway id %q is not valid", cfg.GatewayID)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Broker == "" {
		cfg.Broker = "tcp://127.0.0.1:1883"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nonce := newNonce()
	res := &ChallengeResult{GatewayID: cfg.GatewayID, Nonce: nonce}
	answers := make(chan *attest.Report, 1)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		env, err := attest.DecodeEnvelope(m.Payload())
		if err != nil {
			return
		}
		r, err := attest.DecodeReport(env.Body)
		if err != nil || r.GatewayID != cfg.GatewayID || !bytes.Equal(r.Nonce, nonce) {
			return
		}
		if cfg.Key != nil {
			if err := env.Check(cfg.Key); err != nil {
				cfg.Logger.Warn("collector: an answer to the challenge fails the signature check", "gateway", cfg.GatewayID, "err", err)
				return
			}
		}
		select {
		case answers <- r:
		default:
		}
	}
	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID("modemguard-challenge-" + randomHex(6)).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(cfg.Timeout).SetOrderMatters(false)
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	tc, err := brokerTLS(cfg.Broker, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	cl := mqtt.NewClient(opts)
	if err := waitToken(ctx, cl.Connect(), cfg.Timeout); err != nil {
		cl.Disconnect(0)
		return nil, fmt.Errorf("collector: challenge: connect %s: %w", cfg.Broker, err)
	}
	defer cl.Disconnect(250)
	// Subscribe before publishing, so the answer cannot slip past.
	if err := waitToken(ctx, cl.Subscribe("modemguard/v1/"+cfg.GatewayID+"/report", 1, handler), cfg.Timeout); err != nil {
		return nil, fmt.Errorf("collector: challenge: subscribe: %w", err)
	}
	sent := time.Now()
	if cfg.Store != nil {
		if err := cfg.Store.recordChallenge(ctx, cfg.GatewayID, nonce, sent, sent.Add(cfg.Timeout), "cli"); err != nil {
			return nil, fmt.Errorf("collector: challenge: %w", err)
		}
	}
	if err := waitToken(ctx, cl.Publish(challengeTopic(cfg.GatewayID), 1, false, nonce), cfg.Timeout); err != nil {
		if cfg.Store != nil {
			_ = cfg.Store.finishChallenge(context.WithoutCancel(ctx), cfg.GatewayID, nonce, ChallengeFailed, time.Time{}, 0)
		}
		return nil, fmt.Errorf("collector: challenge: publish: %w", err)
	}
	select {
	case r := <-answers:
		res.Answered, res.Verified, res.Seq, res.Report = true, cfg.Key != nil, r.Seq, r
		res.LatencyMS = time.Since(sent).Milliseconds()
		if cfg.Store != nil {
			_ = cfg.Store.finishChallenge(context.WithoutCancel(ctx), cfg.GatewayID, nonce, ChallengeAnswered, time.Now(), r.Seq)
		}
	case <-ctx.Done():
		if cfg.Store != nil {
			_ = cfg.Store.finishChallenge(context.WithoutCancel(ctx), cfg.GatewayID, nonce, ChallengeTimeout, time.Time{}, 0)
		}
	}
	return res, nil
}
