package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest policy file Load and Parse accept.
const MaxFileSize = 1 << 20

// Error is one problem in a policy file, at a position. Col is 0 when only
// the line is known (YAML syntax errors: the YAML library reports no column).
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error formats the problem as "file:line:col: message", the form editors
// and CI annotations understand.
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorList is every problem Parse found, in file order. It is the error
// Parse returns for an invalid file; use errors.As to get at the entries.
type ErrorList []*Error

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "policy: no errors"
	case 1:
		return "policy: " + l[0].Error()
	case 2:
		return "policy: " + l[0].Error() + " (and 1 more error)"
	}
	return fmt.Sprintf("policy: %s (and %d more errors)", l[0].Error(), len(l)-1)
}

// Load reads and parses the policy file at path. Callers that must enforce
// something whatever happens use FailClosed(err) when Load fails.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and validates a policy file; name is used in messages. On
// failure the error is an ErrorList naming file:line:col and what was
// expected for every problem found, and the Policy is nil.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	sum := sha256.Sum256(data)
	p := &parser{file: name}
	pol := &Policy{
		Name:        name,
		Hash:        "sha256:" + hex.EncodeToString(sum[:]),
		Modules:     Modules{Default: Allow},
		Network:     Network{Roaming: Allow},
		ModuleStack: ModuleStack{Default: Deny, FOTA: Deny, Debug: Deny},
		OnDeny:      BlockData,
	}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrorList{{File: name, Line: 1, Col: 1, Msg: "empty policy: want at least \"version: 1\""}}
		}
		return nil, ErrorList{p.yamlError(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errf(&extra, "a policy file holds one YAML document; remove the second one")
	} else if !errors.Is(err, io.EOF) {
		p.errs = append(p.errs, p.yamlError(err))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, ErrorList{{File: name, Line: 1, Col: 1, Msg: "empty policy: want at least \"version: 1\""}}
		}
		root = root.Content[0]
	}
	p.top(root, pol)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, ErrorList(p.errs)
	}
	return pol, nil
}

type parser struct {
	file string
	errs []*Error
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// yamlError turns a go.yaml.in/yaml error ("yaml: line 3: did not find
// expected key") into an Error with the line.
func (p *parser) yamlError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: p.file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				e.Line = n
				msg = rest[i+2:]
			}
		}
	}
	e.Msg = "YAML syntax: " + msg
	return e
}

// field is one key a mapping accepts.
type field struct {
	name string
	fn   func(key, val *yaml.Node)
}

// mapping walks a mapping node: refuses other kinds (null counts as empty),
// duplicate keys and unknown keys, and calls each field's fn.
func (p *parser) mapping(n *yaml.Node, path string, fields []field) {
	if p.isNull(n) {
		return
	}
	if !p.resolve(n, path) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s: want a mapping of keys, got %s", path, describe(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k, "%s: keys must be plain words, got %s", path, describe(k))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errf(k, "%s: key %q repeated (first at line %d)", path, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		found := false
		for _, f := range fields {
			if f.name == k.Value {
				found = true
				f.fn(k, v)
				break
			}
		}
		if !found {
			names := make([]string, len(fields))
			for i, f := range fields {
				names[i] = f.name
			}
			msg := fmt.Sprintf("%s: unknown key %q", path, k.Value)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errf(k, "%s; want one of %s", msg, strings.Join(names, ", "))
		}
	}
}

func (p *parser) isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// resolve refuses aliases: a policy should say what it means where it says
// it, and following aliases would let a small file expand without bound.
func (p *parser) resolve(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		p.errf(n, "%s: YAML aliases (*%s) are not supported in a policy; write the value out", path, n.Value)
		return false
	}
	return true
}

// seq walks a sequence; null counts as empty.
func (p *parser) seq(n *yaml.Node, path string, fn func(i int, item *yaml.Node)) {
	if p.isNull(n) || !p.resolve(n, path) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list, got %s", path, describe(n))
		return
	}
	for i, it := range n.Content {
		if p.resolve(it, fmt.Sprintf("%s[%d]", path, i)) {
			fn(i, it)
		}
	}
}

// text returns a scalar's text for a free-text field: strings and numbers
// are accepted as typed (so "7600" and 7600 are the same model), booleans
// and null are not.
func (p *parser) text(n *yaml.Node, path, want string) (string, bool) {
	if !p.resolve(n, path) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errf(n, "%s: want %s, got %s", path, want, describe(n))
		return "", false
	}
	switch n.Tag {
	case "!!str", "!!int", "!!float":
	default:
		p.errf(n, "%s: want %s, got %s", path, want, describe(n))
		return "", false
	}
	v := strings.TrimSpace(n.Value)
	if v == "" {
		p.errf(n, "%s: want %s, got an empty string", path, want)
		return "", false
	}
	return v, true
}

// texts accepts one scalar or a list of scalars.
func (p *parser) texts(n *yaml.Node, path, want string, check func(n *yaml.Node, path, v string) (string, bool)) []string {
	var out []string
	one := func(it *yaml.Node, path string) {
		v, ok := p.text(it, path, want)
		if !ok {
			return
		}
		if check != nil {
			if v, ok = check(it, path, v); !ok {
				return
			}
		}
		out = append(out, v)
	}
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errf(n, "%s: empty list; remove the key or name at least one %s", path, want)
		}
		p.seq(n, path, func(i int, it *yaml.Node) { one(it, fmt.Sprintf("%s[%d]", path, i)) })
		return out
	}
	one(n, path)
	return out
}

func (p *parser) action(n *yaml.Node, path string) Action {
	v, ok := p.text(n, path, "allow, alert or deny")
	if !ok {
		return 0
	}
	a, ok := parseAction(v)
	if !ok {
		msg := fmt.Sprintf("%s: want allow, alert or deny, got %q", path, v)
		if s := suggest(v, []string{"allow", "alert", "deny"}); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		p.errf(n, "%s", msg)
	}
	return a
}

func (p *parser) top(n *yaml.Node, pol *Policy) {
	var versionSeen bool
	p.mapping(n, "policy", []field{
		{"version", func(k, v *yaml.Node) {
			versionSeen = true
			s, ok := p.text(v, "version", "the number 1")
			if !ok {
				return
			}
			if v.Tag != "!!int" || s != "1" {
				p.errf(v, "version: this modemguard reads policy version 1, got %q", s)
				return
			}
			pol.Version = 1
		}},
		{"modules", func(k, v *yaml.Node) { p.modules(v, &pol.Modules) }},
		{"network", func(k, v *yaml.Node) { p.network(v, &pol.Network) }},
		{"module_stack", func(k, v *yaml.Node) { p.moduleStack(v, &pol.ModuleStack) }},
		{"egress", func(k, v *yaml.Node) {
			pol.Egress = &Egress{}
			p.egress(v, pol.Egress)
		}},
		{"remediate", func(k, v *yaml.Node) {
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				p.errf(v, "remediate: want true or false, got %q", v.Value)
				return
			}
			pol.Remediate = v.Value == "true"
		}},
		{"on_deny", func(k, v *yaml.Node) {
			s, ok := p.text(v, "on_deny", "quarantine, block-data or alert-only")
			if !ok {
				return
			}
			o, ok := parseOnDeny(s)
			if !ok {
				msg := fmt.Sprintf("on_deny: want quarantine, block-data or alert-only, got %q", s)
				if sg := suggest(s, []string{"quarantine", "block-data", "alert-only"}); sg != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", sg)
				}
				p.errf(v, "%s", msg)
				return
			}
			pol.OnDeny = o
		}},
	})
	if !versionSeen && n.Kind == yaml.MappingNode {
		p.errf(n, "version: missing; the first line of a policy is \"version: 1\"")
	} else if !versionSeen && p.isNull(n) {
		p.errs = append(p.errs, &Error{File: p.file, Line: 1, Col: 1, Msg: "empty policy: want at least \"version: 1\""})
	}
}

func (p *parser) modules(n *yaml.Node, m *Modules) {
	p.mapping(n, "modules", []field{
		{"default", func(k, v *yaml.Node) {
			if a := p.action(v, "modules.default"); a != 0 {
				m.Default = a
			}
		}},
		{"rules", func(k, v *yaml.Node) {
			ids := map[string]int{}
			p.seq(v, "modules.rules", func(i int, it *yaml.Node) {
				path := fmt.Sprintf("modules.rules[%d]", i)
				r := Rule{Line: it.Line}
				var haveWhen, haveAction bool
				p.mapping(it, path, []field{
					{"id", func(k, v *yaml.Node) {
						s, ok := p.text(v, path+".id", "a rule id")
						if !ok {
							return
						}
						if !validRuleID(s) {
							p.errf(v, "%s.id: %q: ids are letters, digits, '-' and '_' (at most 64), starting with a letter or digit", path, s)
							return
						}
						if first, dup := ids[s]; dup {
							p.errf(v, "%s.id: %q is already the id of the rule at line %d", path, s, first)
							return
						}
						ids[s] = v.Line
						r.ID = s
					}},
					{"when", func(k, v *yaml.Node) {
						haveWhen = true
						before := len(p.errs)
						p.when(v, path+".when", &r.When)
						if r.When.empty() && len(p.errs) == before {
							p.errf(v, "%s.when: no conditions; a rule needs at least one (use modules.default for a catch-all)", path)
						}
					}},
					{"action", func(k, v *yaml.Node) {
						haveAction = true
						r.Action = p.action(v, path+".action")
					}},
				})
				if it.Kind != yaml.MappingNode {
					return
				}
				if r.ID == "" && !hasKey(it, "id") {
					p.errf(it, "%s: missing id", path)
				}
				if !haveWhen {
					p.errf(it, "%s: missing when", path)
				}
				if !haveAction {
					p.errf(it, "%s: missing action", path)
				}
				m.Rules = append(m.Rules, r)
			})
		}},
	})
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (p *parser) when(n *yaml.Node, path string, c *Conditions) {
	p.mapping(n, path, []field{
		{"vendor", func(k, v *yaml.Node) {
			c.Vendor = p.texts(v, path+".vendor", "vendor id", func(n *yaml.Node, path, s string) (string, bool) {
				if !validName(s) {
					if validName(strings.ToLower(s)) {
						p.errf(n, "%s: vendor ids are lower case: did you mean %q?", path, strings.ToLower(s))
					} else {
						p.errf(n, "%s: %q is not a vendor id (lower-case letters, digits and '-', like quectel or sierra)", path, s)
					}
					return "", false
				}
				return s, true
			})
		}},
		{"manufacturer", func(k, v *yaml.Node) {
			c.Manufacturer = p.texts(v, path+".manufacturer", "manufacturer pattern", nil)
		}},
		{"model", func(k, v *yaml.Node) {
			c.Model = p.texts(v, path+".model", "model pattern", nil)
		}},
		{"firmware", func(k, v *yaml.Node) {
			c.Firmware = p.texts(v, path+".firmware", "firmware pattern", nil)
		}},
		{"firmware_below", func(k, v *yaml.Node) {
			s, ok := p.text(v, path+".firmware_below", "a firmware revision")
			if !ok {
				return
			}
			if !comparableRevision(s) {
				p.errf(v, "%s.firmware_below: %q has no numeric part to compare (want a revision like EC25EFAR06A08M4G or 25.30.226)", path, s)
				return
			}
			c.FirmwareBelow = s
		}},
		{"origin", func(k, v *yaml.Node) {
			c.Origin = p.texts(v, path+".origin", "country code", func(n *yaml.Node, path, s string) (string, bool) {
				u := strings.ToUpper(s)
				if len(u) != 2 || u[0] < 'A' || u[0] > 'Z' || u[1] < 'A' || u[1] > 'Z' {
					p.errf(n, "%s: %q is not an ISO 3166-1 alpha-2 country code (like CN, US, DE)", path, s)
					return "", false
				}
				if u == "UK" {
					p.errf(n, "%s: the ISO 3166-1 code of the United Kingdom is GB", path)
					return "", false
				}
				return u, true
			})
		}},
		{"lists", func(k, v *yaml.Node) {
			c.Lists = p.texts(v, path+".lists", "list name", func(n *yaml.Node, path, s string) (string, bool) {
				if !validName(s) {
					p.errf(n, "%s: %q is not a list name (lower-case letters, digits and '-', like fcc-covered or dod-1260h)", path, s)
					return "", false
				}
				return s, true
			})
		}},
	})
}

func (p *parser) network(n *yaml.Node, nw *Network) {
	p.mapping(n, "network", []field{
		{"apns", func(k, v *yaml.Node) {
			p.seq(v, "network.apns", func(i int, it *yaml.Node) {
				path := fmt.Sprintf("network.apns[%d]", i)
				s, ok := p.text(it, path, "an APN")
				if !ok {
					return
				}
				if !validAPN(s) {
					p.errf(it, "%s: %q is not an APN (labels of letters, digits and '-' separated by dots, 3GPP TS 23.003 §9.1)", path, s)
					return
				}
				nw.APNs = append(nw.APNs, strings.ToLower(s))
			})
		}},
		{"deny_mcc", func(k, v *yaml.Node) {
			p.seq(v, "network.deny_mcc", func(i int, it *yaml.Node) {
				path := fmt.Sprintf("network.deny_mcc[%d]", i)
				s, ok := p.text(it, path, "a 3-digit MCC")
				if !ok {
					return
				}
				if len(s) != 3 || !allDigits(s) {
					p.errf(it, "%s: %q is not a mobile country code (3 digits, ITU-T E.212, like 460)", path, s)
					return
				}
				nw.DenyMCC = append(nw.DenyMCC, s)
			})
		}},
		{"roaming", func(k, v *yaml.Node) {
			if a := p.action(v, "network.roaming"); a != 0 {
				nw.Roaming = a
			}
		}},
	})
}

func (p *parser) moduleStack(n *yaml.Node, ms *ModuleStack) {
	p.mapping(n, "module_stack", []field{
		{"default", func(k, v *yaml.Node) {
			if a := p.action(v, "module_stack.default"); a != 0 {
				ms.Default = a
			}
		}},
		{"allow", func(k, v *yaml.Node) { ms.Allow = p.destinations(v, "module_stack.allow", true) }},
		{"fota", func(k, v *yaml.Node) {
			if a := p.action(v, "module_stack.fota"); a != 0 {
				ms.FOTA = a
			}
		}},
		{"debug", func(k, v *yaml.Node) {
			if a := p.action(v, "module_stack.debug"); a != 0 {
				ms.Debug = a
			}
		}},
	})
}

func (p *parser) egress(n *yaml.Node, e *Egress) {
	var haveIfs bool
	p.mapping(n, "egress", []field{
		{"interfaces", func(k, v *yaml.Node) {
			haveIfs = true
			p.seq(v, "egress.interfaces", func(i int, it *yaml.Node) {
				path := fmt.Sprintf("egress.interfaces[%d]", i)
				s, ok := p.text(it, path, "an interface name or prefix*")
				if !ok {
					return
				}
				if msg := checkIfGlob(s); msg != "" {
					p.errf(it, "%s: %q: %s", path, s, msg)
					return
				}
				e.Interfaces = append(e.Interfaces, s)
			})
			if len(e.Interfaces) == 0 && v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				p.errf(v, "egress.interfaces: empty list; remove the key for the default %v", defaultInterfaces)
			}
		}},
		{"allow", func(k, v *yaml.Node) { e.Allow = p.destinations(v, "egress.allow", false) }},
	})
	if !haveIfs {
		e.Interfaces = DefaultInterfaces()
	}
}

// checkIfGlob validates an interface glob: a Linux interface name (at most
// 15 bytes, no '/', ':' or spaces) optionally ending in '*', which nftables
// matches as a prefix. Other wildcards cannot be expressed in nftables.
func checkIfGlob(s string) string {
	name := strings.TrimSuffix(s, "*")
	if name == "" {
		return "a bare * would match every interface, including lo and the LAN; name the cellular ones"
	}
	if strings.ContainsAny(name, "*?[]") {
		return "only a trailing * is supported (nftables matches interface names exactly or by prefix)"
	}
	if len(name) > 15 {
		return "longer than the 15 bytes a Linux interface name can have"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return "interface names have no spaces, '/', ':' or control characters"
		}
	}
	return ""
}

func (p *parser) destinations(n *yaml.Node, path string, wildcards bool) []Destination {
	var out []Destination
	p.seq(n, path, func(i int, it *yaml.Node) {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		d := Destination{Line: it.Line}
		var haveHost, haveCIDR bool
		p.mapping(it, ipath, []field{
			{"host", func(k, v *yaml.Node) {
				haveHost = true
				s, ok := p.text(v, ipath+".host", "a host name or IP address")
				if !ok {
					return
				}
				if a, err := netip.ParseAddr(s); err == nil {
					if a.Zone() != "" {
						p.errf(v, "%s.host: %q: zoned addresses are not destinations", ipath, s)
						return
					}
					a = a.Unmap()
					d.Prefix = netip.PrefixFrom(a, a.BitLen())
					return
				}
				h := strings.ToLower(strings.TrimSuffix(s, "."))
				if strings.HasPrefix(h, "*.") {
					if !wildcards {
						p.errf(v, "%s.host: %q: wildcards cannot be resolved for the host firewall; list the names", ipath, s)
						return
					}
					if !validHostname(h[2:]) {
						p.errf(v, "%s.host: %q is not a host name or IP address", ipath, s)
						return
					}
				} else if !validHostname(h) {
					p.errf(v, "%s.host: %q is not a host name or IP address", ipath, s)
					return
				}
				d.Host = h
			}},
			{"cidr", func(k, v *yaml.Node) {
				haveCIDR = true
				s, ok := p.text(v, ipath+".cidr", "a CIDR prefix like 203.0.113.0/24")
				if !ok {
					return
				}
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					p.errf(v, "%s.cidr: %q is not a CIDR prefix (like 203.0.113.0/24 or 2001:db8::/32)", ipath, s)
					return
				}
				if pfx.Addr().Zone() != "" {
					p.errf(v, "%s.cidr: %q: zoned addresses are not destinations", ipath, s)
					return
				}
				if m := pfx.Masked(); m != pfx {
					p.errf(v, "%s.cidr: %q has host bits set; did you mean %s?", ipath, s, m)
					return
				}
				if pfx.Addr().Is4In6() {
					pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
				}
				d.Prefix = pfx
			}},
			{"ports", func(k, v *yaml.Node) {
				d.Ports = p.ports(v, ipath+".ports")
			}},
		})
		if it.Kind != yaml.MappingNode {
			return
		}
		switch {
		case haveHost && haveCIDR:
			p.errf(it, "%s: give host or cidr, not both", ipath)
			return
		case !haveHost && !haveCIDR:
			p.errf(it, "%s: missing host or cidr", ipath)
			return
		}
		if d.Host == "" && !d.Prefix.IsValid() {
			return // already reported
		}
		out = append(out, d)
	})
	return out
}

func (p *parser) ports(n *yaml.Node, path string) []uint16 {
	var out []uint16
	one := func(it *yaml.Node, path string) {
		s, ok := p.text(it, path, "a port number 1..65535")
		if !ok {
			return
		}
		v, err := strconv.Atoi(s)
		if err != nil || it.Tag != "!!int" || v < 1 || v > 65535 {
			p.errf(it, "%s: want a port number 1..65535, got %q", path, s)
			return
		}
		out = append(out, uint16(v))
	}
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errf(n, "%s: empty list; remove the key to allow every port", path)
		}
		p.seq(n, path, func(i int, it *yaml.Node) { one(it, fmt.Sprintf("%s[%d]", path, i)) })
		return out
	}
	one(n, path)
	return out
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!bool":
			return fmt.Sprintf("the boolean %s", n.Value)
		case "!!int", "!!float":
			return fmt.Sprintf("the number %s", n.Value)
		case "!!str":
			return fmt.Sprintf("%q", n.Value)
		}
		return fmt.Sprintf("%s %q", n.Tag, n.Value)
	}
	return "nothing"
}

func validRuleID(s string) bool {
	if s == "" || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validName: lower-case letters, digits and '-', starting with a letter or
// digit (vendor ids, list names).
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validHostname: RFC 1123 names; '_' is tolerated because vendor endpoints
// use it. Lower case expected.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validAPN follows the APN network identifier of 3GPP TS 23.003 §9.1:
// dot-separated labels of letters, digits and '-', at most 100 octets.
func validAPN(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// suggest returns the candidate closest to s by edit distance when it is
// close enough to be a plausible typo, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > len(s)/2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
