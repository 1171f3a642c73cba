package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/modemguard/modemguard/yamlconf"
)

// Config is the agent's configuration file (docs/configuration.md).
type Config struct {
	// GatewayID names this gateway in reports and MQTT topics:
	// letters, digits, '-', '_' and '.', 1 to 64 characters.
	GatewayID string `yaml:"gateway_id"`
	// StateDir holds the signing key, the report chain state and the
	// outbox. Default /var/lib/modemguard.
	StateDir string `yaml:"state_dir"`
	// Policy is the policy file. Empty means no policy: every module is
	// allowed and only reported.
	Policy string `yaml:"policy"`
	// Modems lists the modems to watch. Empty means one entry with port
	// auto.
	Modems []ModemConfig `yaml:"modems"`
	MQTT   MQTTConfig    `yaml:"mqtt"`
	Report ReportConfig  `yaml:"report"`
	// Metrics configures the optional Prometheus endpoint.
	Metrics MetricsConfig `yaml:"metrics"`
	// Vendors is an optional vendor registry file laid over the built-in one.
	Vendors string `yaml:"vendors"`
}

// ModemConfig is one modem to watch.
type ModemConfig struct {
	// Port is the AT port path, or auto (the default) to discover USB modules.
	Port string `yaml:"port"`
	// Baud is the baud rate; default 115200. USB ports ignore it.
	Baud int `yaml:"baud"`
	// ProxyLink, if set, is where the AT firewall serves a pty for other
	// software (a symlink, e.g. /run/modemguard/ttyAT0).
	ProxyLink string `yaml:"proxy_link"`
}

// MQTTConfig is the uplink to the central broker.
type MQTTConfig struct {
	// Broker is tcp://host:port or ssl://host:port. Required.
	Broker string `yaml:"broker"`
	// CAFile verifies the broker's certificate (ssl://); default: the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string `yaml:"server_name"`
	// Username and PasswordFile authenticate with a password.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// ReportConfig sets when reports are made.
type ReportConfig struct {
	// Interval between periodic reports, at least 1s; default 5m. A report
	// is also made at start, on every change and on a challenge.
	Interval Duration `yaml:"interval"`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is host:port for /metrics; empty disables it.
	Listen string `yaml:"listen"`
}

// Duration is a time.Duration written as "5m" or "90s" in YAML.
type Duration = yamlconf.Duration

// ConfigError is a problem in the configuration file, with its line.
type ConfigError = yamlconf.Error

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	}
	return ParseConfig(path, b)
}

// configSections name the configuration's Go types in messages.
var configSections = map[string]string{"Config": "the top level", "MQTTConfig": "mqtt", "ModemConfig": "modems",
	"ReportConfig": "report", "MetricsConfig": "metrics"}

// ParseConfig parses and validates configuration data; name is used in
// errors. Unknown keys are refused, so a typo never becomes a default.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	f, err := yamlconf.Decode(name, data, &c, configSections, "docs/configuration.md")
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := c.validate(f); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &c, nil
}

var gatewayIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validate applies defaults and checks values; f locates keys for line
// numbers.
func (c *Config) validate(f *yamlconf.File) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, f.Errorf(key, format, a...))
	}
	if !gatewayIDRe.MatchString(c.GatewayID) {
		bad("gateway_id", "%q must be 1 to 64 letters, digits, '.', '_' or '-' (it becomes an MQTT topic level)", c.GatewayID)
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/modemguard"
	}
	if len(c.Modems) == 0 {
		c.Modems = []ModemConfig{{Port: "auto"}}
	}
	autos := 0
	for i := range c.Modems {
		m := &c.Modems[i]
		if m.Port == "" {
			m.Port = "auto"
		}
		if m.Port == "auto" {
			if autos++; autos == 2 {
				bad("port", "only one modem may use port auto (it takes the first module that answers); list the others by path, e.g. /dev/serial/by-id/...")
			}
		}
		if m.Baud == 0 {
			m.Baud = 115200
		}
		if m.Baud < 0 {
			bad("baud", "%d is not a baud rate", m.Baud)
		}
	}
	if c.MQTT.Broker == "" {
		bad("mqtt", "broker is required, e.g. ssl://broker.example.com:8883")
	} else if u, err := url.Parse(c.MQTT.Broker); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls") || u.Port() == "" {
		bad("broker", "%q must be tcp://host:port or ssl://host:port", c.MQTT.Broker)
	}
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		bad("cert_file", "cert_file and key_file go together (mutual TLS needs both)")
	}
	if c.Report.Interval == 0 {
		c.Report.Interval = Duration(5 * time.Minute)
	}
	if time.Duration(c.Report.Interval) < time.Second {
		bad("interval", "%v is too short: at least 1s", time.Duration(c.Report.Interval))
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("listen", "%q must be host:port, e.g. 127.0.0.1:9273", c.Metrics.Listen)
		}
	}
	return errors.Join(errs...)
}
