package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
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
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write it like 5m, 90s or 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// ConfigError is a problem in the configuration file.
type ConfigError struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses and validates configuration data; name is used in
// errors. Unknown keys are refused, so a typo never becomes a default.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, yamlError(name, err)
	}
	var nodes yaml.Node
	_ = yaml.Unmarshal(data, &nodes)
	if err := c.validate(name, &nodes); err != nil {
		return nil, err
	}
	return &c, nil
}

// yamlError turns the YAML library's errors into file:line messages.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, e := range te.Errors {
			errs = append(errs, lineError(name, e))
		}
		return errors.Join(errs...)
	}
	return lineError(name, err.Error())
}

var (
	unknownKeyRe = regexp.MustCompile(`^field (\S+) not found in type agent\.(\w+)$`)
	sections     = map[string]string{"Config": "the top level", "MQTTConfig": "mqtt", "ModemConfig": "modems",
		"ReportConfig": "report", "MetricsConfig": "metrics"}
)

func lineError(name, msg string) error {
	m := yamlLineRe.FindStringSubmatch(msg)
	if m == nil {
		return &ConfigError{File: name, Msg: msg}
	}
	var line int
	fmt.Sscan(m[1], &line)
	msg = m[2]
	if k := unknownKeyRe.FindStringSubmatch(msg); k != nil {
		msg = fmt.Sprintf("unknown key %q in %s (check the spelling against docs/configuration.md)", k[1], sections[k[2]])
	}
	return &ConfigError{File: name, Line: line, Msg: msg}
}

var gatewayIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validate applies defaults and checks values; nodes locate keys for line
// numbers.
func (c *Config) validate(name string, nodes *yaml.Node) error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &ConfigError{File: name, Line: keyLine(nodes, key), Msg: key + ": " + fmt.Sprintf(format, a...)})
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

// keyLine finds the line of the first mapping key called key, for error
// messages; 0 if absent.
func keyLine(n *yaml.Node, key string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := keyLine(c, key); l > 0 {
			return l
		}
	}
	return 0
}
