package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseIssueExample(t *testing.T) {
	data, err := os.ReadFile("testdata/issue5.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("issue5.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	sum := sha256.Sum256(data)
	want := &Policy{
		Name:    "issue5.yaml",
		Hash:    "sha256:" + hex.EncodeToString(sum[:]),
		Version: 1,
		Modules: Modules{Default: Allow, Rules: []Rule{
			{ID: "covered-list", When: Conditions{Lists: []string{"fcc-covered"}}, Action: Deny, Line: 5},
			{ID: "prc-origin", When: Conditions{Origin: []string{"CN"}}, Action: Alert, Line: 8},
			{ID: "old-ec25-firmware", When: Conditions{Vendor: []string{"quectel"}, Model: []string{"EC25"}, FirmwareBelow: "EC25EFAR06A08M4G"}, Action: Deny, Line: 11},
		}},
		Network: Network{APNs: []string{"iot.example"}, DenyMCC: []string{"460", "461"}, Roaming: Alert},
		ModuleStack: ModuleStack{
			Default: Deny,
			Allow:   []Destination{{Host: "broker.example.com", Ports: []uint16{8883}, Line: 21}},
			FOTA:    Deny,
			Debug:   Deny,
		},
		Egress: &Egress{
			Interfaces: []string{"wwan*", "ww*", "ppp*", "rmnet*"},
			Allow: []Destination{
				{Host: "broker.example.com", Ports: []uint16{8883}, Line: 27},
				{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Ports: []uint16{443}, Line: 29},
			},
		},
		OnDeny: Quarantine,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", p, want)
	}
}

func TestParseDefaults(t *testing.T) {
	p := mustParse(t, "version: 1\n")
	if p.Modules.Default != Allow || p.Network.Roaming != Allow || p.ModuleStack.Default != Deny ||
		p.ModuleStack.FOTA != Deny || p.ModuleStack.Debug != Deny || p.OnDeny != BlockData || p.Egress != nil {
		t.Errorf("defaults: %+v", p)
	}
	p = mustParse(t, "version: 1\negress:\n  allow: []\nnetwork:\nmodules: {}\n")
	if p.Egress == nil || !reflect.DeepEqual(p.Egress.Interfaces, DefaultInterfaces()) || len(p.Egress.Allow) != 0 {
		t.Errorf("egress without interfaces: %+v", p.Egress)
	}
}

func TestParseShorthands(t *testing.T) {
	p := mustParse(t, `version: 1
modules:
  rules:
    - id: r1
      when: {vendor: [quectel, fibocom], model: "EC2?", origin: cn, manufacturer: 7600}
      action: alert
module_stack:
  allow:
    - {host: "*.example.com", ports: 443}
    - {host: 192.0.2.7}
    - {host: Broker.Example.COM.}
    - {cidr: "2001:db8::/32", ports: [1, 65535]}
`)
	c := p.Modules.Rules[0].When
	if !reflect.DeepEqual(c.Vendor, []string{"quectel", "fibocom"}) || c.Model[0] != "EC2?" || c.Origin[0] != "CN" || c.Manufacturer[0] != "7600" {
		t.Errorf("conditions: %+v", c)
	}
	a := p.ModuleStack.Allow
	if a[0].Host != "*.example.com" || a[0].Ports[0] != 443 ||
		a[1].Prefix != netip.MustParsePrefix("192.0.2.7/32") ||
		a[2].Host != "broker.example.com" ||
		a[3].Prefix != netip.MustParsePrefix("2001:db8::/32") || len(a[3].Ports) != 2 {
		t.Errorf("destinations: %+v", a)
	}
}

// TestParseErrors checks that every mistake is refused with its position
// and what was expected, and that several are reported at once.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // substrings, one per expected error, in order
	}{
		{"empty", "", []string{"test.yaml:1:1: empty policy"}},
		{"comment only", "# nothing\n", []string{"empty policy"}},
		{"not a mapping", "- a\n", []string{"test.yaml:1:1: policy: want a mapping of keys, got a list"}},
		{"missing version", "modules: {default: deny}\n", []string{"test.yaml:1:1: version: missing"}},
		{"version 2", "version: 2\n", []string{"test.yaml:1:10: version: this modemguard reads policy version 1, got \"2\""}},
		{"version string", "version: \"1\"\n", []string{"version: this modemguard reads policy version 1"}},
		{"unknown top key", "version: 1\nmodule:\n  default: deny\n", []string{`test.yaml:2:1: policy: unknown key "module" (did you mean "modules"?)`}},
		{"typo in action", "version: 1\nmodules:\n  default: alow\n", []string{`test.yaml:3:12: modules.default: want allow, alert or deny, got "alow" (did you mean "allow"?)`}},
		{"bool action", "version: 1\nmodules:\n  default: yes\n", []string{"modules.default: want allow, alert or deny, got \"yes\""}},
		{"true action", "version: 1\nmodules:\n  default: true\n", []string{"modules.default: want allow, alert or deny, got the boolean true"}},
		{"null action", "version: 1\nmodules:\n  default:\n", []string{"modules.default: want allow, alert or deny, got nothing (null)"}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{`test.yaml:2:1: policy: key "version" repeated (first at line 1)`}},
		{"on_deny", "version: 1\non_deny: quarantined\n", []string{`on_deny: want quarantine, block-data or alert-only, got "quarantined" (did you mean "quarantine"?)`}},
		{"rule problems", `version: 1
modules:
  rules:
    - id: a
      when: {origin: [CHN]}
      action: deny
    - id: a
      when: {vendor: Quectel}
      action: block
    - when: {}
    - id: "bad id!"
      wen: {origin: [CN]}
      action: deny
`, []string{
			`test.yaml:5:23: modules.rules[0].when.origin[0]: "CHN" is not an ISO 3166-1 alpha-2 country code`,
			`test.yaml:7:11: modules.rules[1].id: "a" is already the id of the rule at line 4`,
			`test.yaml:8:22: modules.rules[1].when.vendor: vendor ids are lower case: did you mean "quectel"?`,
			`test.yaml:9:15: modules.rules[1].action: want allow, alert or deny, got "block"`,
			`test.yaml:10:7: modules.rules[2]: missing id`,
			`test.yaml:10:7: modules.rules[2]: missing action`,
			`test.yaml:10:13: modules.rules[2].when: no conditions`,
			`test.yaml:11:7: modules.rules[3]: missing when`,
			`test.yaml:11:11: modules.rules[3].id: "bad id!": ids are letters`,
			`test.yaml:12:7: modules.rules[3]: unknown key "wen" (did you mean "when"?)`,
		}},
		{"firmware not comparable", "version: 1\nmodules:\n  rules:\n    - {id: x, when: {firmware_below: abc}, action: deny}\n", []string{`firmware_below: "abc" has no numeric part`}},
		{"network values", `version: 1
network:
  apns: [iot.example, "bad apn", ""]
  deny_mcc: [460, 46, "abc", 4600]
  roaming: maybe
`, []string{
			`test.yaml:3:23: network.apns[1]: "bad apn" is not an APN`,
			`test.yaml:3:34: network.apns[2]: want an APN, got an empty string`,
			`test.yaml:4:19: network.deny_mcc[1]: "46" is not a mobile country code`,
			`test.yaml:4:23: network.deny_mcc[2]: "abc" is not a mobile country code`,
			`test.yaml:4:30: network.deny_mcc[3]: "4600" is not a mobile country code`,
			`test.yaml:5:12: network.roaming: want allow, alert or deny, got "maybe"`,
		}},
		{"destinations", `version: 1
module_stack:
  allow:
    - host: "bad host"
    - cidr: 203.0.113.1/24
    - {host: a.example, cidr: 192.0.2.0/24}
    - ports: [80]
    - {host: b.example, ports: [0, 65536, "http", 80.5]}
    - {host: c.example, port: 443}
egress:
  allow:
    - host: "*.example.com"
  interfaces: ["*", "wwan?", "eth0/1", "averyveryverylongname*"]
`, []string{
			`test.yaml:4:13: module_stack.allow[0].host: "bad host" is not a host name or IP address`,
			`test.yaml:5:13: module_stack.allow[1].cidr: "203.0.113.1/24" has host bits set; did you mean 203.0.113.0/24?`,
			`test.yaml:6:7: module_stack.allow[2]: give host or cidr, not both`,
			`test.yaml:7:7: module_stack.allow[3]: missing host or cidr`,
			`test.yaml:8:33: module_stack.allow[4].ports[0]: want a port number 1..65535, got "0"`,
			`module_stack.allow[4].ports[1]: want a port number 1..65535, got "65536"`,
			`module_stack.allow[4].ports[2]: want a port number 1..65535, got "http"`,
			`module_stack.allow[4].ports[3]: want a port number 1..65535, got "80.5"`,
			`test.yaml:9:25: module_stack.allow[5]: unknown key "port" (did you mean "ports"?)`,
			`test.yaml:12:13: egress.allow[0].host: "*.example.com": wildcards cannot be resolved`,
			`test.yaml:13:16: egress.interfaces[0]: "*": a bare * would match every interface`,
			`egress.interfaces[1]: "wwan?": only a trailing * is supported`,
			`egress.interfaces[2]: "eth0/1": interface names have no spaces`,
			`egress.interfaces[3]: "averyveryverylongname*": longer than the 15 bytes`,
		}},
		{"yaml syntax", "version: 1\nmodules:\n  default: [allow\n", []string{"test.yaml:2: YAML syntax: did not find expected"}},
		{"tab indentation", "version: 1\nmodules:\n\tdefault: deny\n", []string{"test.yaml:3: YAML syntax: found character that cannot start any token"}},
		{"alias", "version: 1\nnetwork:\n  apns: &a [x.example]\nmodule_stack: *a\n", []string{"test.yaml:4:15: module_stack: YAML aliases (*a) are not supported"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"test.yaml:2:1: a policy file holds one YAML document"}},
		{"wrong kinds", "version: 1\nmodules: deny\nnetwork:\n  apns: iot.example\nmodule_stack: []\n", []string{
			`test.yaml:2:10: modules: want a mapping of keys, got "deny"`,
			`test.yaml:4:9: network.apns: want a list, got "iot.example"`,
			`test.yaml:5:15: module_stack: want a mapping of keys, got a list`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("test.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T %v is not an ErrorList", err, err)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("error %q lacks the policy: prefix", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range tc.want {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("error %d = %q\nwant it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	p, err := Load("testdata/issue5.yaml")
	if err != nil || p.Name != "testdata/issue5.yaml" {
		t.Fatalf("Load: %v %v", p, err)
	}
	_, err = Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("Load missing file: %v", err)
	}
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse("big", big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse of a huge file: %v", err)
	}
}

func TestHashIsOfTheBytes(t *testing.T) {
	a := mustParse(t, "version: 1\n")
	b := mustParse(t, "version: 1 # same meaning\n")
	if a.Hash == b.Hash || !strings.HasPrefix(a.Hash, "sha256:") || len(a.Hash) != 7+64 {
		t.Errorf("hashes %q %q", a.Hash, b.Hash)
	}
}

func TestParseRemediate(t *testing.T) {
	p, err := Parse("p.yaml", []byte("version: 1\nremediate: true\n"))
	if err != nil || !p.Remediate {
		t.Fatalf("remediate: %v, %v", p, err)
	}
	if _, err := Parse("p.yaml", []byte("version: 1\nremediate: yes please\n")); err == nil || !strings.Contains(err.Error(), "p.yaml:2") {
		t.Errorf("bad remediate: %v", err)
	}
}
