package policy

import (
	"net/netip"
	"strings"
)

// Action is what a rule or a section decides. The zero value is not a valid
// action; a parsed Policy never holds it. Actions are ordered by severity:
// Allow < Alert < Deny.
type Action uint8

const (
	Allow Action = iota + 1 // let it be; no finding
	Alert                   // let it be, but report it
	Deny                    // refuse it (the module, the command, the traffic)
)

// String returns the policy-file spelling: "allow", "alert" or "deny".
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Alert:
		return "alert"
	case Deny:
		return "deny"
	}
	return "unset"
}

func parseAction(s string) (Action, bool) {
	switch s {
	case "allow":
		return Allow, true
	case "alert":
		return Alert, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// OnDeny is the enforcement applied to a module whose verdict is Deny.
type OnDeny uint8

const (
	Quarantine OnDeny = iota + 1 // radio off (AT+CFUN=4), kept off across module reboots
	BlockData                    // PDP contexts down (AT+CGACT=0) and host traffic over cellular dropped
	AlertOnly                    // report only
)

// String returns the policy-file spelling.
func (o OnDeny) String() string {
	switch o {
	case Quarantine:
		return "quarantine"
	case BlockData:
		return "block-data"
	case AlertOnly:
		return "alert-only"
	}
	return "unset"
}

func parseOnDeny(s string) (OnDeny, bool) {
	switch s {
	case "quarantine":
		return Quarantine, true
	case "block-data":
		return BlockData, true
	case "alert-only":
		return AlertOnly, true
	}
	return 0, false
}

// DefaultInterfaces are the cellular interface globs used when the egress
// section names none: kernel WWAN and systemd "ww" names, PPP, and Qualcomm
// rmnet (see docs/policy.md).
var defaultInterfaces = []string{"wwan*", "ww*", "ppp*", "rmnet*"}

// DefaultInterfaces returns a copy of the interface globs an egress section
// without "interfaces" applies to.
func DefaultInterfaces() []string { return append([]string(nil), defaultInterfaces...) }

// Policy is a parsed and validated policy file. It is immutable after Parse
// and safe for concurrent use by several goroutines.
type Policy struct {
	// Name is the file name given to Parse, used in messages.
	Name string
	// Hash is "sha256:" followed by the hex SHA-256 of the exact file bytes
	// (so `sha256sum FILE` reproduces it). Empty for a FailClosed policy.
	Hash string
	// Version is the format version; always 1.
	Version int

	Modules     Modules
	Network     Network
	ModuleStack ModuleStack
	// Egress is nil when the file has no egress section: host traffic is
	// then not filtered by modemguard.
	Egress *Egress
	// OnDeny is what happens to a module whose verdict is Deny.
	// Default BlockData.
	OnDeny OnDeny
	// Remediate switches off risky persistent module settings the audit
	// finds (cloud auto-registration, ADB, remote AT over SMS/TCP) instead
	// of only reporting them. Default false.
	Remediate bool

	failed error // the load error of a FailClosed policy
}

// Modules says which modules may be in service.
type Modules struct {
	// Default applies when no rule matches. Default Allow.
	Default Action
	// Rules are tried in order; the first whose conditions all hold decides.
	Rules []Rule
}

// Rule is one entry of modules.rules.
type Rule struct {
	ID     string
	When   Conditions
	Action Action
	Line   int // line of the rule in the file, for messages
}

// Conditions are the tests of a rule's "when"; all non-empty ones must hold
// (AND). A list-valued condition holds when the fact matches any element.
type Conditions struct {
	Vendor        []string // canonical vendor ids, exact: "quectel"
	Manufacturer  []string // globs on +CGMI, case-insensitive: "Quectel*"
	Model         []string // globs on +CGMM, case-insensitive: "EC25*"
	Firmware      []string // globs on the firmware revision, case-insensitive
	FirmwareBelow string   // holds when the revision compares below this one
	Origin        []string // ISO 3166-1 alpha-2, upper case: "CN"
	Lists         []string // list memberships: "fcc-covered", "dod-1260h"
}

func (c *Conditions) empty() bool {
	return len(c.Vendor) == 0 && len(c.Manufacturer) == 0 && len(c.Model) == 0 &&
		len(c.Firmware) == 0 && c.FirmwareBelow == "" && len(c.Origin) == 0 && len(c.Lists) == 0
}

// Network constrains the cellular network the module uses.
type Network struct {
	// APNs are the allowed access point names, lower case. Empty: any.
	APNs []string
	// DenyMCC are mobile country codes (3 digits) never to register on.
	DenyMCC []string
	// Roaming is the action when the module is roaming. Default Allow.
	Roaming Action
}

// ModuleStack governs the module's own IP stack: sockets, MQTT, HTTP, FTP,
// firmware download and vendor cloud agents driven by AT commands, and the
// debug back doors reachable from the AT port.
type ModuleStack struct {
	// Default applies to destinations no Allow entry matches, and to
	// commands whose destination is not on the command line. Default Deny.
	Default Action
	// Allow lists the destinations the module may reach by itself.
	Allow []Destination
	// FOTA applies to firmware-download commands. Default Deny.
	FOTA Action
	// Debug applies to commands that open debug back doors (ADB, fastboot,
	// shell, remote AT over SMS/TCP) or hide later commands from the AT
	// firewall (CMUX, S3/S4/S5). Default Deny.
	Debug Action
}

// Destination is one allowed destination: a host name (or IP address) or
// a CIDR prefix, with optional ports (none: every port).
type Destination struct {
	// Host is a lower-case DNS name without trailing dot, "*.example.com"
	// (module_stack only: any name below example.com), or "" when Prefix
	// is set. An IP literal in the file is stored in Prefix as a /32 or /128.
	Host   string
	Prefix netip.Prefix
	Ports  []uint16
	Line   int
}

// String formats the destination as in the policy file.
func (d Destination) String() string {
	var b strings.Builder
	if d.Host != "" {
		b.WriteString(d.Host)
	} else {
		if d.Prefix.IsSingleIP() {
			b.WriteString(d.Prefix.Addr().String())
		} else {
			b.WriteString(d.Prefix.String())
		}
	}
	if len(d.Ports) > 0 {
		b.WriteString(" ports ")
		for i, p := range d.Ports {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(itoa(int(p)))
		}
	}
	return b.String()
}

// allowsPort reports whether port is among d.Ports; every port when the
// list is empty. port 0 means "no port involved" (ping, DNS lookup) and is
// allowed only by an entry without ports.
func (d *Destination) allowsPort(port int) bool {
	if len(d.Ports) == 0 {
		return true
	}
	for _, p := range d.Ports {
		if int(p) == port {
			return true
		}
	}
	return false
}

// matchesHost reports whether host (a name or an IP literal as typed in a
// command) is this destination. Names compare case-insensitively; a
// "*.example.com" entry matches names below example.com, not example.com
// itself. A name never matches a prefix entry: the firewall does not resolve.
func (d *Destination) matchesHost(host string) bool {
	if d.Host == "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return false
		}
		return d.Prefix.Contains(a.Unmap())
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if strings.HasPrefix(d.Host, "*.") {
		suffix := d.Host[1:] // ".example.com"
		return len(host) > len(suffix) && strings.EqualFold(host[len(host)-len(suffix):], suffix)
	}
	return strings.EqualFold(host, d.Host)
}

// Egress is the host-side firewall over the cellular interfaces.
type Egress struct {
	// Interfaces are interface names or prefixes ending in "*".
	// Default DefaultInterfaces().
	Interfaces []string
	// Allow lists the destinations host software may reach over those
	// interfaces; everything else (except DNS to the configured resolvers)
	// is dropped.
	Allow []Destination
}

// Err returns the load error of a policy made by FailClosed, nil otherwise.
func (p *Policy) Err() error { return p.failed }

// FailClosed returns the policy to enforce when the real one could not be
// loaded (err is the load error): every module is denied, the module's own
// stack, FOTA and debug commands are refused, and host egress over the
// default cellular interfaces is dropped except DNS. Enforcement is never
// left open because a file was missing or malformed.
func FailClosed(err error) *Policy {
	return &Policy{
		Name:    "fail-closed",
		Version: 1,
		Modules: Modules{Default: Deny},
		Network: Network{Roaming: Deny},
		ModuleStack: ModuleStack{
			Default: Deny,
			FOTA:    Deny,
			Debug:   Deny,
		},
		Egress: &Egress{Interfaces: DefaultInterfaces()},
		OnDeny: BlockData,
		failed: err,
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
