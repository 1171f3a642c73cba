package agent

import (
	"os"
	"strings"
	"testing"
)

// TestDocumentedExamplesParse keeps docs/configuration.md and the example
// the Debian package installs true to the parser.
func TestDocumentedExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/configuration.md has no yaml example")
	}
	example, _, _ := strings.Cut(rest, "```")
	if _, err := ParseConfig("docs/configuration.md", []byte(example)); err != nil {
		t.Errorf("the documented example does not parse: %v", err)
	}
	pkg, err := os.ReadFile("../packaging/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig("packaging/config.yaml", pkg); err != nil {
		t.Errorf("the packaged example does not parse: %v", err)
	}
	for _, key := range []string{"gateway_id", "state_dir", "policy", "vendors", "port", "baud", "proxy_link", "broker",
		"ca_file", "cert_file", "key_file", "server_name", "username", "password_file", "interval", "listen"} {
		if !strings.Contains(string(doc), "`"+key+"`") && !strings.Contains(string(doc), "."+key+"`") {
			t.Errorf("docs/configuration.md does not document %s", key)
		}
	}
}
