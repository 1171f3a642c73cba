package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/modemguard/modemguard/backoff"
)

// Nonce bounds for challenges.
const (
	MinNonce = 8
	MaxNonce = 64
)

// Uplink keeps an MQTT session to the broker and delivers the outbox's
// entries over it. See the package documentation for the delivery rule.
type Uplink struct {
	cfg    Config // normalized copy
	ob     *Outbox
	log    *slog.Logger
	topics Topics

	// epoch counts connections; paho's OnConnect handler increments it. A
	// PUBACK counts only if the epoch did not change since the publish.
	epoch      atomic.Uint64
	connected  atomic.Bool
	published  atomic.Uint64
	delivered  atomic.Uint64
	failures   atomic.Uint64
	chDropped  atomic.Uint64
	challenges chan []byte // nonces for the dispatcher; written by paho's handler
}

// Stats is a snapshot of an Uplink.
type Stats struct {
	Connected         bool
	Connections       uint64 // successful connections (the epoch)
	Published         uint64 // PUBLISH packets sent, resends included
	Delivered         uint64 // entries removed from the outbox after a PUBACK
	PublishFailures   uint64 // publishes that timed out, failed or lost their connection
	ChallengesDropped uint64
	Outbox            OutboxStats
}

// New checks cfg and returns an Uplink that delivers ob's entries.
func New(cfg Config, ob *Outbox) (*Uplink, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if ob == nil {
		return nil, errors.New("uplink: no outbox")
	}
	return &Uplink{cfg: c, ob: ob, log: c.Logger, topics: TopicsFor(c.GatewayID), challenges: make(chan []byte, 8)}, nil
}

// Topics returns the gateway's topics.
func (u *Uplink) Topics() Topics { return u.topics }

// Stats returns the counters.
func (u *Uplink) Stats() Stats {
	return Stats{
		Connected:         u.connected.Load(),
		Connections:       u.epoch.Load(),
		Published:         u.published.Load(),
		Delivered:         u.delivered.Load(),
		PublishFailures:   u.failures.Load(),
		ChallengesDropped: u.chDropped.Load(),
		Outbox:            u.ob.Stats(),
	}
}

// Status is the JSON on the status topic.
type Status struct {
	State       string  `json:"state"` // "online" or "offline"
	GatewayID   string  `json:"gateway_id"`
	BootID      string  `json:"boot_id"`
	KeyID       string  `json:"kid"`
	PubKey      string  `json:"pubkey,omitempty"` // online: the base64 public key, for a collector's trust on first use
	Conn        uint64  `json:"conn"`             // connection number in this run; a will with a lower one is stale
	Reason      string  `json:"reason,omitempty"` // offline: "shutdown" or "connection lost"
	TimeMS      int64   `json:"time_ms,omitempty"`
	OutboxDepth *int    `json:"outbox_depth,omitempty"`
	Dropped     *uint64 `json:"dropped,omitempty"` // reports dropped from the outbox, ever
}

func (u *Uplink) status(state, reason string, conn uint64) []byte {
	s := Status{State: state, GatewayID: u.cfg.GatewayID, BootID: u.cfg.BootID, KeyID: u.cfg.KeyID, Conn: conn, Reason: reason}
	if state == "online" {
		s.PubKey = u.cfg.PubKey
		st := u.ob.Stats()
		s.TimeMS = time.Now().UnixMilli()
		s.OutboxDepth, s.Dropped = &st.Depth, &st.Dropped
	}
	b, _ := json.Marshal(s)
	return b
}

// Run connects, delivers and reconnects until ctx ends; then it publishes a
// retained "offline" status, disconnects and returns nil. Entries stay in
// the outbox until acknowledged; Run never blocks Enqueue.
func (u *Uplink) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { u.dispatchChallenges(ctx) })

	b := backoff.Backoff{Min: u.cfg.BackoffMin, Max: u.cfg.BackoffMax}
	var conn uint64
	for ctx.Err() == nil {
		conn++
		cl, lost, err := u.connect(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d := b.Next()
			u.log.Warn("uplink: cannot connect to the broker; retrying", "broker", u.cfg.Broker, "in", d.Round(time.Millisecond), "err", err)
			backoff.Sleep(ctx, d)
			continue
		}
		b.Reset()
		u.connected.Store(true)
		u.log.Info("uplink: connected", "broker", u.cfg.Broker, "client_id", u.cfg.ClientID, "conn", conn, "outbox_depth", u.ob.Stats().Depth)
		err = u.deliver(ctx, cl, lost)
		u.connected.Store(false)
		if ctx.Err() != nil {
			u.shutdown(cl, conn)
			break
		}
		cl.Disconnect(0)
		d := b.Next()
		u.log.Warn("uplink: connection ended; reconnecting", "broker", u.cfg.Broker, "in", d.Round(time.Millisecond), "err", err)
		backoff.Sleep(ctx, d)
	}
	return nil
}

// connect makes one connection attempt: CONNACK, the challenge
// subscription and the retained birth, each within ConnectTimeout.
func (u *Uplink) connect(ctx context.Context, conn uint64) (mqtt.Client, <-chan struct{}, error) {
	tc, err := u.cfg.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	lost := make(chan struct{})
	var lostOnce sync.Once
	onConnect := make(chan struct{})
	var connOnce sync.Once
	opts := mqtt.NewClientOptions().
		AddBroker(u.cfg.Broker).
		SetClientID(u.cfg.ClientID).
		SetProtocolVersion(4).   // MQTT 3.1.1
		SetCleanSession(true).   // the outbox, not the broker session, holds undelivered reports
		SetAutoReconnect(false). // Run reconnects, with jitter, on a fresh client
		SetConnectRetry(false).
		SetOrderMatters(false). // handlers never block paho's router
		SetKeepAlive(u.cfg.KeepAlive).
		SetPingTimeout(min(u.cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.PublishTimeout).
		SetBinaryWill(u.topics.Status, u.status("offline", "connection lost", conn), 1, true).
		SetOnConnectHandler(func(mqtt.Client) {
			connOnce.Do(func() {
				u.epoch.Add(1)
				close(onConnect)
			})
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			lostOnce.Do(func() {
				u.log.Warn("uplink: connection lost", "err", err)
				close(lost)
			})
		})
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	if u.cfg.Username != "" {
		opts.SetUsername(u.cfg.Username)
		opts.SetPassword(u.cfg.Password)
	}
	cl := mqtt.NewClient(opts)
	deadline := time.NewTimer(u.cfg.ConnectTimeout + time.Second)
	defer deadline.Stop()
	fail := func(what string, err error) (mqtt.Client, <-chan struct{}, error) {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("uplink: %s: %w", what, err)
	}
	if err := waitToken(ctx, deadline.C, nil, cl.Connect()); err != nil {
		return fail("connect to "+u.cfg.Broker, err)
	}
	select { // the epoch must count this connection before anything is published
	case <-onConnect:
	case <-deadline.C:
		return fail("connect", errors.New("OnConnect handler did not run"))
	case <-ctx.Done():
		return fail("connect", ctx.Err())
	}
	if err := waitToken(ctx, deadline.C, lost, cl.Subscribe(u.topics.Challenge, 1, u.onChallenge)); err != nil {
		return fail("subscribe "+u.topics.Challenge, err)
	}
	if err := waitToken(ctx, deadline.C, lost, cl.Publish(u.topics.Status, 1, true, u.status("online", "", conn))); err != nil {
		return fail("publish status", err)
	}
	return cl, lost, nil
}

// deliver sends the outbox in seq order, InFlight at a time, until the
// connection is lost or ctx ends. An entry is acknowledged (removed) only
// when its own publish token completed without error and the connection
// epoch did not change since it was published (libraries.md §1.3: after a
// reconnect paho completes old tokens when the resend is queued, not on
// PUBACK; here no client is ever reconnected, which the epoch check makes
// explicit).
func (u *Uplink) deliver(ctx context.Context, cl mqtt.Client, lost <-chan struct{}) error {
	ep := u.epoch.Load()
	for {
		changed := u.ob.Changed()
		batch, err := u.ob.Peek(u.cfg.InFlight)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			select {
			case <-changed:
				continue
			case <-lost:
				return errors.New("uplink: connection lost")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		toks := make([]mqtt.Token, len(batch))
		for i, e := range batch {
			toks[i] = cl.Publish(u.topics.Report, 1, false, e.Payload)
			u.published.Add(1)
		}
		deadline := time.NewTimer(u.cfg.PublishTimeout)
		var acked []uint64
		var failed error
		for i, tok := range toks {
			failed = waitToken(ctx, deadline.C, lost, tok)
			if failed == nil && !ackable(ep, u.epoch.Load()) {
				failed = errors.New("uplink: reconnected while waiting for PUBACK")
			}
			if failed != nil {
				break
			}
			acked = append(acked, batch[i].Seq)
		}
		deadline.Stop()
		if err := u.ob.Ack(acked...); err != nil {
			return err
		}
		u.delivered.Add(uint64(len(acked)))
		if failed != nil {
			u.failures.Add(uint64(len(batch) - len(acked)))
			return fmt.Errorf("uplink: publish seq %d: %w", batch[len(acked)].Seq, failed)
		}
	}
}

// ackable is the delivery rule: a completed publish token proves a PUBACK
// only if no (re)connection happened between the publish (at epoch sent)
// and now.
func ackable(sent, now uint64) bool { return sent == now }

// shutdown publishes the retained offline status (the will is not sent on a
// clean disconnect) and disconnects, within ShutdownTimeout.
func (u *Uplink) shutdown(cl mqtt.Client, conn uint64) {
	t := time.NewTimer(u.cfg.ShutdownTimeout)
	defer t.Stop()
	err := waitToken(context.Background(), t.C, nil, cl.Publish(u.topics.Status, 1, true, u.status("offline", "shutdown", conn)))
	if err != nil {
		u.log.Warn("uplink: could not publish the offline status", "err", err)
	}
	cl.Disconnect(250)
	u.log.Info("uplink: disconnected", "outbox_depth", u.ob.Stats().Depth)
}

// onChallenge runs on paho's goroutine: check the nonce and hand it to the
// dispatcher without blocking.
func (u *Uplink) onChallenge(_ mqtt.Client, m mqtt.Message) {
	p := m.Payload()
	if m.Retained() {
		u.log.Warn("uplink: ignoring a retained challenge (a stale nonce proves nothing fresh)", "topic", m.Topic())
		return
	}
	if len(p) < MinNonce || len(p) > MaxNonce {
		u.log.Warn("uplink: ignoring a challenge with a bad nonce length", "bytes", len(p), "want_min", MinNonce, "want_max", MaxNonce)
		return
	}
	nonce := append([]byte(nil), p...)
	select {
	case u.challenges <- nonce:
	default:
		u.chDropped.Add(1)
		u.log.Warn("uplink: too many challenges waiting; dropped one")
	}
}

func (u *Uplink) dispatchChallenges(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-u.challenges:
			if u.cfg.OnChallenge != nil {
				u.cfg.OnChallenge(n)
			}
		}
	}
}

// waitToken waits for tok within deadline, ctx and (when not nil) the
// connection staying up. paho's Wait can block forever (libraries.md §1.3).
func waitToken(ctx context.Context, deadline <-chan time.Time, lost <-chan struct{}, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-deadline:
		return errors.New("timed out")
	case <-lost:
		return errors.New("connection lost")
	case <-ctx.Done():
		return ctx.Err()
	}
}
