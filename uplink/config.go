package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config configures an Uplink. Broker and GatewayID are required; every
// other field has a working default. New copies it; the caller's struct is
// never changed.
type Config struct {
	// Broker is tcp://host:port or ssl://host:port (tls:// and mqtts:// are
	// accepted as ssl://).
	Broker string
	// GatewayID names the gateway in topics and, by default, the client id.
	// It must not contain '/', '+', '#' or NUL.
	GatewayID string
	// BootID and KeyID go into the status messages, so a consumer can tell
	// a stale will from a fresh birth and knows which key signs.
	BootID string
	KeyID  string
	// PubKey, the base64 of the raw ed25519 public key, goes into the
	// online status so a collector may trust it on first use.
	PubKey string
	// ClientID defaults to "modemguard-" + GatewayID.
	ClientID string
	// TLS, for ssl://: CAFile verifies the broker (default: system roots);
	// CertFile and KeyFile, together, are the client certificate for
	// mutual TLS; ServerName overrides the name checked in the broker's
	// certificate (needed when Broker is an IP address). The files are read
	// again at every connection attempt, so renewed certificates apply on
	// the next reconnect.
	CAFile, CertFile, KeyFile, ServerName string
	// Username and Password, both optional.
	Username, Password string

	// KeepAlive is the MQTT keep-alive. Default 30s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt (TCP, TLS, CONNACK,
	// SUBACK, birth). Default 30s.
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for one PUBACK. Default 20s.
	PublishTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between connection attempts;
	// it doubles after each failure, with jitter. Defaults 1s and 2m.
	BackoffMin, BackoffMax time.Duration
	// InFlight is how many reports are published before waiting for their
	// PUBACKs. Default 8 (Mosquitto's default window is 20).
	InFlight int
	// ShutdownTimeout bounds publishing the retained "offline" status and
	// disconnecting when Run ends. Default 5s.
	ShutdownTimeout time.Duration

	// OnChallenge is called with each nonce (8 to 64 bytes) received on the
	// challenge topic, one at a time from uplink's own goroutine; it should
	// issue a fresh report carrying the nonce and enqueue it. Nonces that
	// arrive while 8 are waiting are dropped and counted.
	OnChallenge func(nonce []byte)
	// Logger receives connection events. Default: discard.
	Logger *slog.Logger
}

// Topics of one gateway (docs/wire-format.md).
type Topics struct {
	Report    string // modemguard/v1/<gateway_id>/report: envelopes, QoS 1, not retained
	Status    string // modemguard/v1/<gateway_id>/status: retained JSON, online/offline
	Challenge string // modemguard/v1/<gateway_id>/challenge: nonces from the collector
}

// TopicsFor returns the topics of a gateway.
func TopicsFor(gatewayID string) Topics {
	p := "modemguard/v1/" + gatewayID + "/"
	return Topics{Report: p + "report", Status: p + "status", Challenge: p + "challenge"}
}

// normalize validates c and returns a copy with defaults applied.
func (c Config) normalize() (Config, error) {
	if c.GatewayID == "" || strings.ContainsAny(c.GatewayID, "/+#\x00") {
		return c, fmt.Errorf("uplink: gateway id %q: want a non-empty id without '/', '+', '#'", c.GatewayID)
	}
	u, err := url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("uplink: broker %q: want tcp://host:port or ssl://host:port", c.Broker)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts", "tcps":
	default:
		return c, fmt.Errorf("uplink: broker %q: scheme %q, want tcp:// or ssl://", c.Broker, u.Scheme)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("uplink: mutual TLS needs both a client certificate file and its key file")
	}
	if c.ClientID == "" {
		c.ClientID = "modemguard-" + c.GatewayID
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.KeepAlive, 30*time.Second)
	def(&c.ConnectTimeout, 30*time.Second)
	def(&c.PublishTimeout, 20*time.Second)
	def(&c.BackoffMin, time.Second)
	def(&c.BackoffMax, 2*time.Minute)
	def(&c.ShutdownTimeout, 5*time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.InFlight <= 0 {
		c.InFlight = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := c.tlsConfig(); err != nil {
		return c, err
	}
	return c, nil
}

func (c Config) secure() bool {
	u, _ := url.Parse(c.Broker)
	return u != nil && u.Scheme != "tcp" && u.Scheme != "mqtt"
}

// tlsConfig reads the TLS files; nil for tcp://.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.secure() {
		if c.CAFile != "" || c.CertFile != "" {
			return nil, fmt.Errorf("uplink: broker %q is plain tcp:// but TLS files are set; use ssl://", c.Broker)
		}
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pemData, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("uplink: CA file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink: client certificate %s / key %s: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
