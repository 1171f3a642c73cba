package collector_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

const issueConfig = `mqtt:
  broker: tcp://127.0.0.1:1883
  share_group: collectors          # optional
database: sqlite:///var/lib/modemguard/collector.db   # or postgres://user@host/db
listen: 127.0.0.1:8080
trust:
  keys_file: /etc/modemguard/gateways.keys   # one line per gateway: <gateway_id> <base64 public key>
  tofu: false
challenge:
  every: 1h
`

func TestParseFileConfig(t *testing.T) {
	c, err := collector.ParseFileConfig("c.yaml", []byte(issueConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Config("")
	if cfg.Broker != "tcp://127.0.0.1:1883" || cfg.ShareGroup != "collectors" || cfg.Database != "sqlite:///var/lib/modemguard/collector.db" ||
		c.Listen != "127.0.0.1:8080" || cfg.KeysFile != "/etc/modemguard/gateways.keys" || cfg.TOFU || cfg.ChallengeEvery.String() != "1h0m0s" {
		t.Fatalf("%+v", cfg)
	}
	if _, err := collector.ParseFileConfig("empty.yaml", nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"mqtt:\n  brokr: tcp://x:1\n", `c.yaml:2: unknown key "brokr"`},
		{"listen: 1\ndatabse: x\n", `c.yaml:2: unknown key "databse"`},
		{"trust:\n  tofu: maybe\n", "c.yaml:2:"},
		{"challenge:\n  every: soon\n", `c.yaml:2: "soon" is not a duration`},
		{"mqtt:\n  broker: http://x\n", "c.yaml:2: broker:"},
		{"database: mysql://x\n", "c.yaml:1: database:"},
		{"listen: 8080\n", "c.yaml:1: listen:"},
		{"mqtt:\n  share_group: a/b\n", "c.yaml:2: share_group:"},
		{"- a\n", "c.yaml:1:"},
	} {
		_, err := collector.ParseFileConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "collector: ") {
			t.Errorf("%q: error %q lacks the package prefix", tc.yaml, err)
		}
	}
}

func TestParseEnrollment(t *testing.T) {
	a, b := collectortest.NewGateway(t, "gw-a"), collectortest.NewGateway(t, "gw-b")
	keyB := strings.Fields(b.Enrollment())[1]
	e, err := collector.ParseEnrollment("k", []byte("# fleet\n\n"+a.Enrollment()+"  * "+keyB+"   # spare\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Gateways) != 1 || len(e.Pool) != 1 || e.Pool[b.Key.ID()] == nil {
		t.Fatalf("%+v", e)
	}
	for _, tc := range []struct{ text, want string }{
		{"gw-a\n", "k:1: want <gateway_id> <base64 public key>"},
		{"\ngw/a " + keyB + "\n", "k:2: gateway id"},
		{"gw-a AAAA\n", "k:1: attest: public key has 3 bytes"},
		{a.Enrollment() + "gw-x " + strings.Fields(a.Enrollment())[1] + "\n", "k:2: key " + a.Key.ID() + " is already on line 1"},
		{"gw-a " + keyB + "\n" + a.Enrollment(), "k:2: gateway gw-a is already enrolled on line 1"},
	} {
		_, err := collector.ParseEnrollment("k", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
	if _, err := collector.LoadEnrollment(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestOpenStoreErrors(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "sqlite://", "sqlite://a.db?x=1", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1"} {
		_, err := collector.OpenStore(context.Background(), dsn)
		if err == nil {
			t.Errorf("%s: no error", dsn)
			continue
		}
		if strings.Contains(err.Error(), "secret") || !strings.HasPrefix(err.Error(), "collector: ") {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}

func FuzzParseFileConfig(f *testing.F) {
	f.Add([]byte(issueConfig))
	f.Add([]byte("mqtt: [1, 2]\n"))
	f.Add([]byte("challenge: {every: 1s, timeout: -1s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := collector.ParseFileConfig("f.yaml", data)
		if err == nil {
			_ = c.Config("")
		}
	})
}

func FuzzParseEnrollment(f *testing.F) {
	f.Add([]byte("gw-1 3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q2+7w3q0=\n# c\n* AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("gw-1\n\n\x00 x y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := collector.ParseEnrollment("f", data)
		if err == nil {
			for id := range e.Gateways {
				if !collector.ValidGatewayID(id) {
					t.Fatalf("accepted gateway id %q", id)
				}
			}
		}
	})
}

// FuzzIngest: arbitrary payloads on the report and status topics never
// panic, never fail (bad input is recorded, not returned) and never create
// an accepted report without a valid signature.
func FuzzIngest(f *testing.F) {
	gw := collectortest.NewGateway(f, "gw-f")
	good := gw.Next(f, nil)
	f.Add("modemguard/v1/gw-f/report", good)
	f.Add("modemguard/v1/gw-f/report", good[:len(good)/2])
	f.Add("modemguard/v1/gw-f/status", []byte(`{"state":"online","gateway_id":"gw-f","boot_id":"b","conn":1}`))
	f.Add("modemguard/v1/gw\xff/report", []byte{0x80})
	f.Add("modemguard/v1//report", []byte{})
	c := newCollector(f, collector.Config{KeysFile: writeKeys(f, "", gw), Database: "sqlite://" + filepath.Join(f.TempDir(), "fuzz.db")})
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		if err := c.Ingest(context.Background(), topic, payload); err != nil {
			t.Fatalf("ingest returned %v", err)
		}
	})
}

// TestDocsExampleConfig: the commented example in docs/collector.md parses.
func TestDocsExampleConfig(t *testing.T) {
	doc, err := os.ReadFile("../docs/collector.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in docs/collector.md")
	}
	c, err := collector.ParseFileConfig("docs/collector.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.ShareGroup != "collectors" || c.Trust.KeysFile == "" || c.Challenge.Every == 0 {
		t.Fatalf("%+v", c)
	}
}
