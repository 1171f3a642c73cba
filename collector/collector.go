package collector

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/modemguard/modemguard/backoff"
)

// Topic filters the collector subscribes to (docs/wire-format.md).
const (
	ReportFilter = "modemguard/v1/+/report"
	StatusFilter = "modemguard/v1/+/status"
)

// Collector receives, verifies and stores the fleet's reports and serves
// the inventory (Handler). Create it with New, run it with Run, then Close.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	store   *Store
	metrics *metrics

	enr     atomic.Pointer[Enrollment] // the enrollment in force; replaced whole on reload
	msgs    chan inbound               // received messages, waiting for the database; bounded by cfg.Buffer
	clientM sync.Mutex                 // guards client
	client  mqtt.Client                // the current connection, nil while disconnected; owned by mqttLoop
}

// inbound is one received message and how to acknowledge it.
type inbound struct {
	topic   string
	payload []byte
	ack     func()
}

// New opens the inventory (applying migrations) and reads the enrollment
// file. It does not connect; Run does.
func New(ctx context.Context, cfg Config) (*Collector, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, log: cfg.Logger, msgs: make(chan inbound, cfg.Buffer)}
	c.metrics = newMetrics(func() float64 { return float64(len(c.msgs)) })
	enr := &Enrollment{Gateways: map[string]ed25519.PublicKey{}, Pool: map[string]ed25519.PublicKey{}}
	if cfg.KeysFile != "" {
		if enr, err = LoadEnrollment(cfg.KeysFile); err != nil {
			return nil, err
		}
	}
	c.enr.Store(enr)
	if c.store, err = OpenStore(ctx, cfg.Database); err != nil {
		return nil, err
	}
	c.log.Info("collector: inventory open", "database", c.store.dsn, "enrolled", len(enr.Gateways), "pool_keys", len(enr.Pool), "tofu", cfg.TOFU)
	return c, nil
}

// Close closes the inventory. Call it after Run returned.
func (c *Collector) Close() error { return c.store.Close() }

// Store returns the inventory.
func (c *Collector) Store() *Store { return c.store }

func (c *Collector) enrollment() *Enrollment { return c.enr.Load() }

// ReloadKeys reads the enrollment file again. On an error the keys in
// force stay.
func (c *Collector) ReloadKeys() error {
	if c.cfg.KeysFile == "" {
		return nil
	}
	enr, err := LoadEnrollment(c.cfg.KeysFile)
	if err != nil {
		c.log.Error("collector: enrollment file not reloaded; the previous keys stay in force", "err", err)
		return err
	}
	c.enr.Store(enr)
	c.log.Info("collector: enrollment file reloaded", "file", c.cfg.KeysFile, "enrolled", len(enr.Gateways), "pool_keys", len(enr.Pool))
	return nil
}

// Run connects to the broker and stores what arrives until ctx ends, then
// returns nil. It reconnects with backoff and jitter, retries the database
// with backoff (holding back acknowledgements meanwhile), reloads the
// enrollment file when it changes, sends scheduled challenges and prunes
// old rows. Every goroutine it starts has ended when it returns.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.mqttLoop(ctx) })
	wg.Go(func() { c.pipeline(ctx) })
	wg.Go(func() { c.housekeeping(ctx) })
	wg.Wait()
	return nil
}

// pipeline stores messages one at a time, in arrival order, so the chain
// of a gateway is judged in the order the broker delivered it.
func (c *Collector) pipeline(ctx context.Context) {
	for {
		var m inbound
		select {
		case <-ctx.Done():
			return
		case m = <-c.msgs:
		}
		b := backoff.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}
		for {
			err := c.Ingest(ctx, m.topic, m.payload)
			if err == nil {
				m.ack()
				break
			}
			if ctx.Err() != nil {
				return // not acknowledged: the broker sends it again
			}
			d := b.Next()
			c.log.Warn("collector: database error; holding the message and retrying", "topic", clean(m.topic), "in", d.Round(time.Millisecond), "buffered", len(c.msgs), "err", err)
			if !backoff.Sleep(ctx, d) {
				return
			}
		}
	}
}

// housekeeping reloads the enrollment file when it changes, sends the
// scheduled challenges, times out unanswered ones and prunes old rows.
func (c *Collector) housekeeping(ctx context.Context) {
	keysTick := time.NewTicker(c.cfg.KeysPoll)
	defer keysTick.Stop()
	sweepEvery := min(max(c.cfg.ChallengeTimeout/4, time.Second), time.Minute)
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	var challenge <-chan time.Time
	if c.cfg.ChallengeEvery > 0 {
		t := time.NewTicker(c.cfg.ChallengeEvery)
		defer t.Stop()
		challenge = t.C
	}
	var lastPrune time.Time
	keysStamp := c.keysStamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keysTick.C:
			if st := c.keysStamp(); st != keysStamp {
				keysStamp = st
				_ = c.ReloadKeys()
			}
		case <-challenge:
			c.challengeAll(ctx)
		case <-sweep.C:
			c.expireChallenges(ctx)
			if time.Since(lastPrune) > time.Hour {
				lastPrune = time.Now()
				c.prune(ctx)
			}
		}
	}
}

// keysStamp identifies the enrollment file's version by size and mtime.
func (c *Collector) keysStamp() string {
	if c.cfg.KeysFile == "" {
		return ""
	}
	fi, err := os.Stat(c.cfg.KeysFile)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

func (c *Collector) prune(ctx context.Context) {
	cut := c.cfg.Now().Add(-c.cfg.Retention).UnixMilli()
	for _, q := range []string{
		`DELETE FROM reports WHERE received_ms < ?`,
		`DELETE FROM rejections WHERE received_ms < ?`,
		`DELETE FROM chain_events WHERE received_ms < ?`,
		`DELETE FROM challenges WHERE sent_ms < ?`,
	} {
		if _, err := c.store.db.ExecContext(ctx, c.store.q(q), cut); err != nil && ctx.Err() == nil {
			c.log.Warn("collector: pruning old rows failed", "err", err)
			return
		}
	}
}

// --- MQTT ---

func (c *Collector) setClient(cl mqtt.Client) {
	c.clientM.Lock()
	c.client = cl
	c.clientM.Unlock()
	if cl != nil {
		c.metrics.connected.Set(1)
	} else {
		c.metrics.connected.Set(0)
	}
}

// Connected reports whether the collector is connected and subscribed.
func (c *Collector) Connected() bool { return c.currentClient() != nil }

func (c *Collector) currentClient() mqtt.Client {
	c.clientM.Lock()
	defer c.clientM.Unlock()
	return c.client
}

// mqttLoop owns the broker connection: paho's own reconnect has no jitter
// (libraries.md §1.2), so each connection is a new client and the loop
// waits a jittered, doubling delay after each failure or loss.
func (c *Collector) mqttLoop(ctx context.Context) {
	b := backoff.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}
	for ctx.Err() == nil {
		stop := make(chan struct{})
		cl, lost, err := c.connect(ctx, stop)
		if err != nil {
			close(stop)
			if ctx.Err() != nil {
				return
			}
			d := b.Next()
			c.log.Warn("collector: cannot connect to the broker; retrying", "broker", c.cfg.Broker, "in", d.Round(time.Millisecond), "err", err)
			backoff.Sleep(ctx, d)
			continue
		}
		b.Reset()
		c.metrics.connects.Inc()
		c.setClient(cl)
		c.log.Info("collector: connected", "broker", c.cfg.Broker, "share_group", c.cfg.ShareGroup)
		select {
		case <-ctx.Done():
		case <-lost:
		}
		c.setClient(nil)
		close(stop) // unblocks a handler waiting for buffer space, so Disconnect cannot hang on it
		cl.Disconnect(250)
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		c.log.Warn("collector: connection to the broker lost; reconnecting", "in", d.Round(time.Millisecond))
		backoff.Sleep(ctx, d)
	}
}

// connect makes one connection and subscribes. lost is closed when the
// connection drops.
func (c *Collector) connect(ctx context.Context, stop chan struct{}) (mqtt.Client, <-chan struct{}, error) {
	clientID, clean := c.cfg.ClientID, false
	if clientID == "" {
		clientID, clean = "modemguard-collector-"+randomHex(6), true
	}
	lost := make(chan struct{})
	var once sync.Once
	handler := func(_ mqtt.Client, m mqtt.Message) {
		select {
		case c.msgs <- inbound{topic: m.Topic(), payload: m.Payload(), ack: m.Ack}:
		case <-stop:
		case <-ctx.Done():
		}
	}
	opts := mqtt.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(clientID).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(c.cfg.ConnectTimeout).
		SetWriteTimeout(10 * time.Second).
		// In order, so a gateway's reports are judged in delivery order;
		// the handler only queues, and blocks only when the buffer holds
		// more than the broker's in-flight window.
		SetOrderMatters(true).
		// Acknowledge after the database commit, not on receipt.
		SetAutoAckDisabled(true).
		// Queued messages of a persistent session arrive before the
		// subscription is re-made; route them too (libraries.md §1.3 #10).
		SetDefaultPublishHandler(handler).
		SetConnectionLostHandler(func(mqtt.Client, error) { once.Do(func() { close(lost) }) })
	if c.cfg.Username != "" {
		opts.SetUsername(c.cfg.Username).SetPassword(c.cfg.Password)
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	cl := mqtt.NewClient(opts)
	if err := waitToken(ctx, cl.Connect(), c.cfg.ConnectTimeout); err != nil {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("collector: connect %s: %w", c.cfg.Broker, err)
	}
	reports := ReportFilter
	if c.cfg.ShareGroup != "" {
		reports = "$share/" + c.cfg.ShareGroup + "/" + ReportFilter
	}
	tok := cl.SubscribeMultiple(map[string]byte{reports: 1, StatusFilter: 1}, handler)
	if err := waitToken(ctx, tok, c.cfg.ConnectTimeout); err != nil {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("collector: subscribe: %w", err)
	}
	for topic, code := range tok.(*mqtt.SubscribeToken).Result() {
		if code == 0x80 { // MQTT 3.1.1 §3.9.3: failure
			cl.Disconnect(0)
			return nil, nil, fmt.Errorf("collector: the broker refused the subscription to %s", topic)
		}
	}
	return cl, lost, nil
}

func (c *Collector) tlsConfig() (*tls.Config, error) {
	return brokerTLS(c.cfg.Broker, c.cfg.CAFile)
}

// brokerTLS is the TLS configuration for an ssl:// broker; nil for tcp://.
func brokerTLS(broker, caFile string) (*tls.Config, error) {
	if u, err := url.Parse(broker); err != nil || u.Scheme == "tcp" || u.Scheme == "mqtt" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("collector: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("collector: CA file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// errTimeout is returned when the broker does not answer in time.
var errTimeout = errors.New("collector: the broker did not answer in time")

// waitToken waits for a paho token, at most d, or until ctx ends; never
// token.Wait() without a bound (libraries.md §1.3 #2).
func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
