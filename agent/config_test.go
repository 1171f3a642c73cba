package agent

import (
	"strings"
	"testing"
	"time"
)

const exampleConfig = `gateway_id: gw-0001
state_dir: /var/lib/modemguard
policy: /etc/modemguard/policy.yaml
modems:
  - port: auto                 # or a path such as /dev/ttyUSB2
    baud: 115200
    proxy_link: /run/modemguard/ttyAT0   # optional: the AT firewall pty for other software
mqtt:
  broker: ssl://broker.example.com:8883
  ca_file: /etc/modemguard/ca.pem
  cert_file: /etc/modemguard/client.pem
  key_file: /etc/modemguard/client.key
report:
  interval: 5m                 # any duration from 1s up
metrics:
  listen: 127.0.0.1:9273       # optional Prometheus endpoint
`

func TestParseIssueExample(t *testing.T) {
	c, err := ParseConfig("modemguard.yaml", []byte(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.GatewayID != "gw-0001" || len(c.Modems) != 1 || c.Modems[0].ProxyLink != "/run/modemguard/ttyAT0" ||
		time.Duration(c.Report.Interval) != 5*time.Minute || c.MQTT.KeyFile != "/etc/modemguard/client.key" {
		t.Errorf("parsed %+v", c)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig("m.yaml", []byte("gateway_id: gw-1\nmqtt: {broker: tcp://127.0.0.1:1883}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/var/lib/modemguard" || c.Modems[0].Port != "auto" || c.Modems[0].Baud != 115200 ||
		time.Duration(c.Report.Interval) != 5*time.Minute {
		t.Errorf("defaults %+v", c)
	}
}

func TestConfigErrorsNameTheLine(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"typo":       {"gateway_id: gw-1\nmqtt:\n  brokr: tcp://x:1\n", "m.yaml:3: "},
		"interval":   {"gateway_id: gw-1\nmqtt: {broker: tcp://x:1}\nreport:\n  interval: 5 minutes\n", "m.yaml:4: "},
		"too short":  {"gateway_id: gw-1\nmqtt: {broker: tcp://x:1}\nreport:\n  interval: 10ms\n", "m.yaml:4: interval: 10ms is too short"},
		"gateway id": {"gateway_id: gw/1\nmqtt: {broker: tcp://x:1}\n", "m.yaml:1: gateway_id"},
		"no broker":  {"gateway_id: gw-1\n", "broker is required"},
		"scheme":     {"gateway_id: gw-1\nmqtt:\n  broker: http://x:1\n", "m.yaml:3: broker"},
		"half tls":   {"gateway_id: gw-1\nmqtt:\n  broker: ssl://x:1\n  cert_file: c.pem\n", "m.yaml:4: cert_file"},
		"two autos":  {"gateway_id: gw-1\nmqtt: {broker: tcp://x:1}\nmodems:\n  - port: auto\n  - port: auto\n", "only one modem may use port auto"},
		"wrong type": {"gateway_id: gw-1\nmqtt: {broker: tcp://x:1}\nmodems:\n  - baud: fast\n", "m.yaml:4: "},
	} {
		_, err := ParseConfig("m.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleConfig))
	f.Add([]byte("gateway_id: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseConfig("fuzz.yaml", b)
	})
}
