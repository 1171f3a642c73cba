// Package policy reads modemguard's egress policy, judges a cellular module
// against it and decides what the enforcement layers let through.
//
// The file format is documented in docs/policy.md. This package owns three
// things and keeps them apart, in the manner of CoreDNS's acl plugin
// (parse once, evaluate many times, fail closed):
//
// # Parse and validate (pure)
//
// [Parse] and [Load] turn a YAML file into an immutable [Policy]. The YAML
// is walked as a node tree, so every problem is reported as
// "file:line:col: message" naming what was expected, several at once, in an
// [ErrorList]. Unknown keys, wrong types, empty lists and values out of range
// are errors: a typo never becomes a silent default. [Policy.Hash] is the
// SHA-256 of the exact file bytes, for reports ("sha256sum FILE" gives the
// same digest).
//
// A policy that cannot be loaded must still be enforced: [FailClosed]
// returns the policy to use instead, which denies every module, refuses
// every governed AT command and drops host egress except DNS.
//
// # Evaluate (pure, explainable)
//
// [Policy.Evaluate] takes [Facts] — plain data about a module (vendor,
// model, firmware, origin, list memberships) and its network (PLMN,
// roaming, APN) — and returns a [Verdict]. The modules.rules are tried in
// order and the first whose conditions all hold decides; modules.default
// applies otherwise. Network checks add findings. Every finding names its
// rule and says why ("rule prc-origin: origin CN is in [CN]"), and
// [Verdict.Trace] explains every rule that was tried. Firmware revisions
// are compared by their numbers, not as text (see compareRevision in
// firmware.go for the rule and when revisions cannot be compared).
//
// # The AT firewall (pure decisions)
//
// Modules run their own TCP/IP, TLS, MQTT, HTTP, FTP, firmware-download and
// cloud-agent clients, driven by AT commands; their traffic never crosses
// the host's network interfaces. [Policy.CheckATLine] parses one command
// line as a V.250 module would and decides it: destination-bearing commands
// of each vendor against module_stack, firmware downloads against
// module_stack.fota, APN changes against network.apns, manual network
// selection against network.deny_mcc, and debug back doors (ADB, fastboot,
// module shell, remote AT over SMS or TCP, CMUX) against module_stack.debug.
// A chained line with any refused part is refused whole, with the reply the
// client expects for its +CMEE setting. [ATFilter] wraps it for one client
// connection: it resolves "A/" (repeat last line) and tracks +CMEE.
// Pass-through lines such as AT+CSQ cost well under a microsecond and do not
// allocate.
//
// # Host egress (nftables, Linux)
//
// [Policy.PlanEgress] resolves the egress section with an injected
// [Resolver] into an [EgressPlan] (pure data); [ApplyEgress] installs it as
// one table, inet [EgressTable], in a single atomic netlink batch that
// replaces any previous version, so re-applying is idempotent;
// [ClearEgress] removes exactly that table. Only traffic through the
// cellular interfaces is judged: allowed destinations, DNS to the given
// resolvers, DHCP and IPv6 neighbour discovery pass, the rest is counted
// and dropped. Other platforms return an error naming GOOS.
//
// The package never prints, opens serial ports or publishes anything: the
// proxy and the agent (cmd/, agent/) call it and log its decisions.
// [Policy] is safe for concurrent use; an [ATFilter] belongs to the
// goroutine serving its client.
package policy
