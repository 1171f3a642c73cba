package policy

import (
	"strings"
)

// Decision is the AT firewall's answer for one command line from a client.
type Decision struct {
	// Action is Allow (forward), Alert (forward and report) or Deny
	// (answer Reply to the client; never forward).
	Action Action
	// Rule names what decided: "module_stack.allow[0]",
	// "module_stack.default", "module_stack.fota", "module_stack.debug",
	// "network.apns", "network.deny_mcc", "at-syntax", "fail-closed";
	// "" for a line with nothing the policy governs.
	Rule string
	// Reason is a sentence for the log and the report; "" when Rule is "".
	Reason string
	// Command is the command that decided, upper case without "AT"
	// ("+QIOPEN"); "" when Rule is "".
	Command string
	// Reply is the final result code to send the client for a Deny:
	// "ERROR" (+CMEE=0), "+CME ERROR: 3" (+CMEE=1) or
	// "+CME ERROR: operation not allowed" (+CMEE=2), after 3GPP TS 27.007
	// §9.1–9.2 (code 3, "operation not allowed"). "" otherwise.
	Reply string
	// Forward is the line to send to the module when Action is not Deny:
	// the line itself, or for "A/" (ATFilter only) the line it repeats.
	Forward string
}

// Refused reports whether the line must not reach the module.
func (d *Decision) Refused() bool { return d.Action == Deny }

// verdict is one command's outcome; action 0 means "not governed: pass".
type verdict struct {
	action  Action
	rule    string
	reason  string
	command string
}

func cmeReply(cmee int) string {
	switch cmee {
	case 1:
		return "+CME ERROR: 3"
	case 2:
		return "+CME ERROR: operation not allowed"
	}
	return "ERROR"
}

// CheckATLine decides one command line sent by a client (host software) to
// the module, with the client's current +CMEE setting for the reply. It
// never allocates for lines the policy does not govern (AT+CSQ, ATE0).
//
// A line is refused whole when any of its commands is refused (the module
// would run the ones before it). Read (AT+X?) and test (AT+X=?) forms always
// pass. Lines that do not parse as V.250 command lines, or that carry
// control characters, are refused: the module might parse them
// differently. Under a FailClosed policy every governed command is refused
// (Rule "fail-closed") and other commands pass. "A/" (repeat the last line) is refused here, because this
// function does not know the last line; ATFilter resolves it.
//
// CheckATLine is safe for concurrent use.
func (p *Policy) CheckATLine(line string, clientCMEE int) Decision {
	d, _ := p.checkLine(line)
	return d.finish(line, clientCMEE)
}

func (d Decision) finish(forward string, cmee int) Decision {
	if d.Action == Deny {
		d.Reply = cmeReply(cmee)
		return d
	}
	if d.Action == 0 {
		d.Action = Allow
	}
	d.Forward = forward
	return d
}

// lineInfo carries what ATFilter needs to track from an allowed line.
type lineInfo struct {
	repeat bool // the line is "A/"
	cmee   int  // +CMEE=n on the line: n; -1 none
	reset  bool // ATZ or AT&F on the line
}

func syntaxDeny(why string) Decision {
	return Decision{Action: Deny, Rule: "at-syntax", Reason: "not a well-formed AT command line: " + why}
}

func (p *Policy) checkLine(line string) (Decision, lineInfo) {
	info := lineInfo{cmee: -1}
	// Trailing terminators are the proxy's framing, not content.
	for len(line) > 0 && (line[len(line)-1] == '\r' || line[len(line)-1] == '\n') {
		line = line[:len(line)-1]
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c == 0x7f {
			return syntaxDeny("control character " + quoteByte(c) + " in the line (modules apply backspace editing; refused)"), info
		}
	}
	body := trimSpaces(line)
	if body == "" {
		return Decision{}, info // an empty line: modules ignore it
	}
	if len(body) == 2 && (body[0] == 'A' || body[0] == 'a') && body[1] == '/' {
		info.repeat = true
		return Decision{Action: Deny, Rule: "at-syntax", Command: "A/",
			Reason: "A/ repeats a line this check has not seen"}, info
	}
	if len(body) < 2 || lower(body[0]) != 'a' || lower(body[1]) != 't' {
		return syntaxDeny("the line does not start with AT"), info
	}

	var (
		sc    = lineScanner{s: body[2:]}
		c     atCmd
		worst verdict
	)
	for sc.next(&c) {
		// Track state-changing basics for ATFilter (V.250 §6.1.1 Z, §6.1.2 &F).
		if c.nlen == 1 && c.name[0] == 'Z' || c.nlen == 2 && c.name[0] == '&' && c.name[1] == 'F' {
			info.reset = true
		}
		if c.op == opSet && string(c.nameBytes()) == "+CMEE" { // 3GPP TS 27.007 §9.1
			if n, ok := atoiArg(c.args); ok && n <= 2 {
				info.cmee = n
			}
		}
		v := p.checkCommand(&c)
		if v.action == 0 {
			continue
		}
		if v.action > worst.action {
			worst = v
		}
		if v.action == Deny {
			break // the first refusal decides; the line is refused whole
		}
	}
	if sc.err != "" {
		return syntaxDeny(sc.err), info
	}
	if worst.action == 0 {
		return Decision{}, info
	}
	if p.failed != nil {
		worst.rule = "fail-closed"
		worst.reason = "fail-closed (the policy did not load): " + worst.reason
	}
	return Decision{Action: worst.action, Rule: worst.rule, Reason: worst.reason, Command: worst.command}, info
}

// checkCommand decides one command.
func (p *Policy) checkCommand(c *atCmd) verdict {
	if c.op == opRead || c.op == opTest {
		return verdict{}
	}
	name := c.nameBytes()
	// Result-code framing: Q1 silences result codes and V0 makes them
	// numeric (V.250 §6.2.5, §6.2.6); &W stores such settings so they
	// survive a reboot (§6.1.4). Without result codes nobody — the agent
	// included — can tell when a command ended.
	if len(name) == 1 && name[0] == 'Q' && c.args != "" && c.args != "0" {
		return p.debugVerdict("Q"+c.args, "silences the result codes the AT firewall and the agent rely on")
	}
	if len(name) == 1 && name[0] == 'V' && (c.args == "" || c.args == "0") {
		return p.debugVerdict("V0", "switches result codes to numeric form")
	}
	if len(name) == 2 && name[0] == '&' && name[1] == 'W' {
		return p.debugVerdict("&W", "stores the current settings as the power-up profile")
	}
	// Basic S-registers: S3 (CR), S4 (LF) and S5 (BS) define the framing
	// the firewall and the proxy rely on (V.250 §6.2.1–6.2.3).
	if c.op == opSet && len(name) == 2 && name[0] == 'S' && (name[1] == '3' || name[1] == '4' || name[1] == '5') {
		return p.debugVerdict("S"+string(name[1]), "changes the command-line framing characters the AT firewall relies on")
	}
	s, ok := atSpecs[string(name)]
	if !ok {
		return verdict{}
	}
	// By value: a pointer passed through a func value would escape and make
	// every line allocate.
	return s.check(p, s.name, *c)
}

// debugVerdict applies module_stack.debug.
func (p *Policy) debugVerdict(cmd, what string) verdict {
	a := p.ModuleStack.Debug
	return verdict{action: a, rule: "module_stack.debug", command: cmd,
		reason: cmd + " " + what + "; module_stack.debug is " + a.String()}
}

// fotaVerdict applies module_stack.fota.
func (p *Policy) fotaVerdict(cmd, what string) verdict {
	a := p.ModuleStack.FOTA
	return verdict{action: a, rule: "module_stack.fota", command: cmd,
		reason: cmd + " " + what + "; module_stack.fota is " + a.String()}
}

// defaultVerdict applies module_stack.default to a command whose
// destination is not on the line (stored in the module, or a listener).
func (p *Policy) defaultVerdict(cmd, what string) verdict {
	a := p.ModuleStack.Default
	return verdict{action: a, rule: "module_stack.default", command: cmd,
		reason: cmd + " " + what + "; module_stack.default is " + a.String()}
}

// portIgnored marks a command that sets a host without its port (the port
// is set by another command): only the host is checked.
const portIgnored = -1

// destVerdict checks a destination against module_stack.allow, then
// module_stack.default. port 0 means "no port involved" (ping, DNS) and is
// matched only by entries without ports.
func (p *Policy) destVerdict(cmd, what, host string, port int) verdict {
	hp := host
	if port > 0 {
		hp = joinHostPort(host, port)
	}
	if host == "" {
		return p.defaultVerdict(cmd, what+" without a destination on the line")
	}
	for i := range p.ModuleStack.Allow {
		d := &p.ModuleStack.Allow[i]
		if d.matchesHost(host) && (port == portIgnored || d.allowsPort(port)) {
			rule := "module_stack.allow[" + itoa(i) + "]"
			return verdict{action: Allow, rule: rule, command: cmd,
				reason: cmd + " " + what + " " + hp + ": allowed by " + rule + " (" + d.String() + ")"}
		}
	}
	a := p.ModuleStack.Default
	return verdict{action: a, rule: "module_stack.default", command: cmd,
		reason: cmd + " " + what + " " + hp + ": no module_stack.allow entry matches; module_stack.default is " + a.String()}
}

func joinHostPort(host string, port int) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + itoa(port)
	}
	return host + ":" + itoa(port)
}

// apnVerdict checks an APN a command sets against network.apns.
func (p *Policy) apnVerdict(cmd, apn string) verdict {
	apns := p.Network.APNs
	if len(apns) == 0 {
		return verdict{}
	}
	if apn == "" {
		return verdict{action: Deny, rule: "network.apns", command: cmd,
			reason: cmd + " sets an empty APN (the network would choose one); network.apns allows only " + list(apns)}
	}
	if containsFold(apns, apn) {
		return verdict{action: Allow, rule: "network.apns", command: cmd,
			reason: cmd + " sets APN " + apn + ", which is in network.apns"}
	}
	return verdict{action: Deny, rule: "network.apns", command: cmd,
		reason: cmd + " sets APN " + apn + ", which is not in network.apns " + list(apns)}
}

// plmnVerdict checks a numeric operator (MCC+MNC) against network.deny_mcc.
func (p *Policy) plmnVerdict(cmd, format, oper string) verdict {
	deny := p.Network.DenyMCC
	if len(deny) == 0 || oper == "" {
		return verdict{}
	}
	if format != "2" {
		return verdict{action: Deny, rule: "network.deny_mcc", command: cmd,
			reason: cmd + " names the operator " + quote(oper) + " by name; its MCC cannot be checked against network.deny_mcc (use the numeric format 2)"}
	}
	if len(oper) < 5 || !allDigits(oper) {
		return verdict{action: Deny, rule: "network.deny_mcc", command: cmd,
			reason: cmd + " names " + quote(oper) + ", not a numeric PLMN (MCC+MNC)"}
	}
	if contains(deny, oper[:3]) {
		return verdict{action: Deny, rule: "network.deny_mcc", command: cmd,
			reason: cmd + " selects PLMN " + oper + ", MCC " + oper[:3] + " is in network.deny_mcc " + list(deny)}
	}
	return verdict{action: Allow, rule: "network.deny_mcc", command: cmd,
		reason: cmd + " selects PLMN " + oper + ", MCC " + oper[:3] + " is not denied"}
}

// urlHostPort splits "scheme://[user@]host[:port]/path" (or "host:port",
// "host/path") into host and port, the port defaulting from the scheme, or
// to def. It does not allocate.
func urlHostPort(u string, def int) (host string, port int) {
	rest := u
	port = def
	if i := strings.Index(u, "://"); i >= 0 {
		if p, ok := schemePorts(u[:i]); ok {
			port = p
		}
		rest = u[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#;"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			host = rest[1:i]
			if tail := rest[i+1:]; strings.HasPrefix(tail, ":") {
				if n, ok := atoiArg(tail[1:]); ok {
					port = n
				} else {
					port = -2
				}
			}
			return host, port
		}
		return rest, -2
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && strings.IndexByte(rest, ':') == i {
		if n, ok := atoiArg(rest[i+1:]); ok {
			port = n
		} else {
			port = -2
		}
		return rest[:i], port
	}
	return rest, port
}

func schemePorts(scheme string) (int, bool) {
	switch {
	case equalFoldASCII(scheme, "http"):
		return 80, true
	case equalFoldASCII(scheme, "https"):
		return 443, true
	case equalFoldASCII(scheme, "ftp"):
		return 21, true
	case equalFoldASCII(scheme, "ftps"):
		return 990, true
	case equalFoldASCII(scheme, "mqtt"), equalFoldASCII(scheme, "tcp"):
		return 1883, true
	case equalFoldASCII(scheme, "mqtts"), equalFoldASCII(scheme, "ssl"), equalFoldASCII(scheme, "tls"):
		return 8883, true
	case equalFoldASCII(scheme, "coap"):
		return 5683, true
	case equalFoldASCII(scheme, "coaps"):
		return 5684, true
	}
	return 0, false
}
