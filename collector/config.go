package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/modemguard/modemguard/yamlconf"
)

// Config configures a Collector. The zero value works: a broker on
// 127.0.0.1:1883, SQLite at DefaultDatabase, no enrolled gateway (so every
// report is rejected as from an unknown gateway until KeysFile or TOFU say
// otherwise). New copies it; the caller's struct is never changed.
type Config struct {
	// Broker is tcp://host:port or ssl://host:port. Default
	// tcp://127.0.0.1:1883.
	Broker string
	// ShareGroup, if set, subscribes to the reports through the MQTT shared
	// subscription $share/<ShareGroup>/..., so the collectors of one group
	// split the fleet's reports: each report goes to one of them. Status
	// messages are not shared (every instance keeps online/offline).
	ShareGroup string
	// ClientID is the MQTT client id. Set it (unique per instance) to keep
	// a persistent session: the broker then queues reports while the
	// collector is down. Empty: a random id and a clean session.
	ClientID string
	// Username and Password authenticate to the broker, both optional.
	Username, Password string
	// CAFile verifies an ssl:// broker; default the system roots.
	CAFile string

	// Database is the inventory DSN, see OpenStore. Default DefaultDatabase.
	Database string

	// KeysFile is the enrollment file (see Enrollment). It is read again
	// when its modification time changes (checked every KeysPoll, default
	// 10s) and on ReloadKeys; a file that does not parse keeps the keys in
	// force and logs the error with file:line.
	KeysFile string
	KeysPoll time.Duration
	// TOFU: trust on first use. A gateway that is not enrolled may claim a
	// pool key of the enrollment file (a "*" line) whose key id its report
	// names, and it is pinned to it from then on, marked trust "tofu".
	// (The birth message names only a key id, and an Ed25519 public key
	// cannot be recovered from a signature, so the key itself must come
	// from the pool.) Default false: only enrolled gateways are trusted.
	TOFU bool

	// MaxMessage is the largest payload accepted; larger ones are recorded
	// as "oversized". Default attest.MaxBody + 4 KiB.
	MaxMessage int
	// Buffer is how many received messages wait for the database. While it
	// is full the collector stops reading; messages are acknowledged to the
	// broker only once stored, so the broker holds back the rest (its
	// in-flight window; Mosquitto's max_inflight_messages is 20).
	// Default 256.
	Buffer int
	// SilentAfter: a gateway with no verified report for this long is
	// shown as silent. Default 15m (three 5-minute report intervals).
	SilentAfter time.Duration
	// FreshSkew is how far a challenged report's time_ms may lie before the
	// challenge was sent (clock skew). Default 2m.
	FreshSkew time.Duration
	// ChallengeEvery, if positive, challenges every online gateway that
	// often. ChallengeTimeout is how long an answer may take; default 60s.
	ChallengeEvery   time.Duration
	ChallengeTimeout time.Duration
	// Retention is how long stored reports, rejections and chain events
	// are kept. Default 30 days. Each gateway's head stays in its row.
	Retention time.Duration

	// ConnectTimeout bounds one connection attempt. Default 30s.
	ConnectTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between connection attempts
	// and between database retries; it doubles with jitter. Default 500ms
	// and 30s.
	BackoffMin, BackoffMax time.Duration

	// Logger receives events. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) normalize() (Config, error) {
	if c.Broker == "" {
		c.Broker = "tcp://127.0.0.1:1883"
	}
	u, err := url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("collector: broker %q: want tcp://host:port or ssl://host:port", c.Broker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
	default:
		return c, fmt.Errorf("collector: broker %q: scheme %q, want tcp:// or ssl://", c.Broker, u.Scheme)
	}
	if strings.ContainsAny(c.ShareGroup, "/+#\x00") {
		return c, fmt.Errorf("collector: share group %q must not contain '/', '+' or '#'", c.ShareGroup)
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.KeysPoll, 10*time.Second)
	def(&c.SilentAfter, 15*time.Minute)
	def(&c.FreshSkew, 2*time.Minute)
	def(&c.ChallengeTimeout, 60*time.Second)
	def(&c.Retention, 30*24*time.Hour)
	def(&c.ConnectTimeout, 30*time.Second)
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 1<<20 + 4<<10
	}
	if c.Buffer <= 0 {
		c.Buffer = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// FileConfig is the YAML configuration of `modemguard collect`
// (docs/collector.md). Unknown keys are refused.
type FileConfig struct {
	MQTT struct {
		Broker       string `yaml:"broker"`
		ShareGroup   string `yaml:"share_group"`
		ClientID     string `yaml:"client_id"`
		Username     string `yaml:"username"`
		PasswordFile string `yaml:"password_file"`
		CAFile       string `yaml:"ca_file"`
	} `yaml:"mqtt"`
	Database string `yaml:"database"`
	Listen   string `yaml:"listen"`
	Trust    struct {
		KeysFile string `yaml:"keys_file"`
		TOFU     bool   `yaml:"tofu"`
	} `yaml:"trust"`
	Challenge struct {
		Every   Duration `yaml:"every"`
		Timeout Duration `yaml:"timeout"`
	} `yaml:"challenge"`
	SilentAfter Duration `yaml:"silent_after"`
	Retention   Duration `yaml:"retention"`
	MaxMessage  int      `yaml:"max_message"`
	Buffer      int      `yaml:"buffer"`
}

// Duration is a time.Duration written as "5m", "90s" or "1h" in YAML.
type Duration = yamlconf.Duration

// ConfigError is a problem in a configuration file, at a line when known.
type ConfigError = yamlconf.Error

// fileSections name the file configuration's Go types in messages.
var fileSections = map[string]string{"FileConfig": "the top level"}

// ParseFileConfig parses and checks a configuration file's content; name
// is used in errors (file:line).
func ParseFileConfig(name string, data []byte) (*FileConfig, error) {
	var c FileConfig
	f, err := yamlconf.Decode(name, data, &c, fileSections, "docs/collector.md") // an empty file is the zero configuration
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, f.Errorf(key, format, a...))
	}
	if c.MQTT.Broker != "" {
		if u, err := url.Parse(c.MQTT.Broker); err != nil || u.Host == "" || u.Port() == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") {
			bad("broker", "%q must be tcp://host:port or ssl://host:port", c.MQTT.Broker)
		}
	}
	if strings.ContainsAny(c.MQTT.ShareGroup, "/+#\x00 ") {
		bad("share_group", "%q must not contain '/', '+', '#' or blanks", c.MQTT.ShareGroup)
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "sqlite://") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		bad("database", "%q must be sqlite:///path/to/file.db or postgres://user@host/db", redact(c.Database))
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", "%q must be host:port, e.g. 127.0.0.1:8080", c.Listen)
		}
	}
	if c.Challenge.Every != 0 && time.Duration(c.Challenge.Every) < time.Second {
		bad("every", "%v is too short: at least 1s", time.Duration(c.Challenge.Every))
	}
	if c.MaxMessage < 0 {
		bad("max_message", "%d must be positive", c.MaxMessage)
	}
	if c.Buffer < 0 {
		bad("buffer", "%d must be positive", c.Buffer)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	return &c, nil
}

// Config turns the file configuration into a Config. password is the
// content of mqtt.password_file, which the caller reads.
func (f *FileConfig) Config(password string) Config {
	return Config{
		Broker:           f.MQTT.Broker,
		ShareGroup:       f.MQTT.ShareGroup,
		ClientID:         f.MQTT.ClientID,
		Username:         f.MQTT.Username,
		Password:         password,
		CAFile:           f.MQTT.CAFile,
		Database:         f.Database,
		KeysFile:         f.Trust.KeysFile,
		TOFU:             f.Trust.TOFU,
		ChallengeEvery:   time.Duration(f.Challenge.Every),
		ChallengeTimeout: time.Duration(f.Challenge.Timeout),
		SilentAfter:      time.Duration(f.SilentAfter),
		Retention:        time.Duration(f.Retention),
		MaxMessage:       f.MaxMessage,
		Buffer:           f.Buffer,
	}
}
