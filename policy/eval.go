package policy

import (
	"strings"
)

// Facts is what is known about one module and its network, the input of
// Evaluate. It is plain data: package modem fills it from a live module,
// "modemguard policy explain --facts" from a JSON file. An empty field is
// unknown, and a condition on an unknown fact does not hold.
type Facts struct {
	Vendor       string       `json:"vendor"`       // canonical vendor id: "quectel"
	Manufacturer string       `json:"manufacturer"` // as +CGMI answers: "Quectel"
	Model        string       `json:"model"`        // as +CGMM answers: "EC25"
	Firmware     string       `json:"firmware"`     // revision: "EC25EFAR06A06M4G"
	Origin       string       `json:"origin"`       // ISO 3166-1 alpha-2 of the vendor's home: "CN"
	Lists        []string     `json:"lists"`        // memberships: "fcc-covered", "dod-1260h", "house-select-2023"
	Network      NetworkFacts `json:"network"`
}

// NetworkFacts describe the network the module is on.
type NetworkFacts struct {
	MCC     string `json:"mcc"`     // registered PLMN's mobile country code: "460"
	MNC     string `json:"mnc"`     // and network code: "00"
	Roaming bool   `json:"roaming"` // registered, roaming (3GPP TS 27.007 +CEREG stat 5)
	APN     string `json:"apn"`     // APN of the context in use
}

// Verdict is the outcome of Evaluate.
type Verdict struct {
	// Action is the most severe action among the findings.
	Action Action
	// OnDeny is the policy's enforcement for a Deny verdict.
	OnDeny OnDeny
	// Findings: the module decision first (always present), then network
	// findings. Each names the rule that produced it.
	Findings []Finding
	// Trace lists every module rule tried, in order, and why it did or did
	// not match — the "explain" view.
	Trace []RuleTrace
	// PolicyHash is the Hash of the policy that decided.
	PolicyHash string
}

// Finding is one decision with its reason.
type Finding struct {
	// Rule is a modules.rules id ("prc-origin"), or a built-in name:
	// "modules.default", "network.apns", "network.deny_mcc",
	// "network.roaming", "fail-closed". Rule ids cannot contain '.', so
	// the two never collide.
	Rule   string
	Action Action
	// Reason is a sentence for people: "rule prc-origin: origin CN is in [CN]".
	Reason string
}

// RuleTrace says whether one rule matched and why.
type RuleTrace struct {
	Rule    string
	Matched bool
	Why     string // "origin CN is in [CN]" or "vendor telit is not quectel"
}

// Evaluate judges a module against the policy. It is pure: the same facts
// and policy give the same verdict. A FailClosed policy denies.
func (p *Policy) Evaluate(f Facts) Verdict {
	v := Verdict{OnDeny: p.OnDeny, PolicyHash: p.Hash}
	if p.failed != nil {
		v.Findings = append(v.Findings, Finding{
			Rule:   "fail-closed",
			Action: Deny,
			Reason: "fail-closed: the policy did not load (" + p.failed.Error() + ")",
		})
		v.Action = Deny
		return v
	}

	decided := false
	for i := range p.Modules.Rules {
		r := &p.Modules.Rules[i]
		ok, why := r.When.match(&f)
		v.Trace = append(v.Trace, RuleTrace{Rule: r.ID, Matched: ok, Why: why})
		if ok {
			v.Findings = append(v.Findings, Finding{Rule: r.ID, Action: r.Action, Reason: "rule " + r.ID + ": " + why})
			decided = true
			break
		}
	}
	if !decided {
		reason := "modules.default: no rule matched"
		if len(p.Modules.Rules) == 0 {
			reason = "modules.default: the policy has no module rules"
		}
		v.Findings = append(v.Findings, Finding{Rule: "modules.default", Action: p.Modules.Default, Reason: reason})
	}

	nw, nf := &p.Network, &f.Network
	if len(nw.APNs) > 0 && nf.APN != "" && !containsFold(nw.APNs, nf.APN) {
		v.Findings = append(v.Findings, Finding{Rule: "network.apns", Action: Deny,
			Reason: "network.apns: APN " + nf.APN + " is not in " + list(nw.APNs)})
	}
	if nf.MCC != "" && contains(nw.DenyMCC, nf.MCC) {
		v.Findings = append(v.Findings, Finding{Rule: "network.deny_mcc", Action: Deny,
			Reason: "network.deny_mcc: registered on PLMN " + nf.MCC + nf.MNC + ", MCC " + nf.MCC + " is in " + list(nw.DenyMCC)})
	}
	if nf.Roaming && nw.Roaming != Allow {
		v.Findings = append(v.Findings, Finding{Rule: "network.roaming", Action: nw.Roaming,
			Reason: "network.roaming: the module is roaming (roaming: " + nw.Roaming.String() + ")"})
	}

	for _, fd := range v.Findings {
		v.Action = max(v.Action, fd.Action)
	}
	return v
}

// Decision returns the finding that set the verdict's action (the first one
// with that action), for one-line summaries.
func (v *Verdict) Decision() Finding {
	for _, f := range v.Findings {
		if f.Action == v.Action {
			return f
		}
	}
	return Finding{}
}

// match reports whether all conditions hold and explains: on a match, every
// condition that held; otherwise the first that did not.
func (c *Conditions) match(f *Facts) (bool, string) {
	var held []string
	check := func(ok bool, why string) bool {
		if ok {
			held = append(held, why)
		} else {
			held = append(held[:0], why)
		}
		return ok
	}
	if len(c.Vendor) > 0 && !check(matchList("vendor", f.Vendor, c.Vendor, nil)) {
		return false, held[0]
	}
	if len(c.Manufacturer) > 0 && !check(matchList("manufacturer", f.Manufacturer, c.Manufacturer, globFold)) {
		return false, held[0]
	}
	if len(c.Model) > 0 && !check(matchList("model", f.Model, c.Model, globFold)) {
		return false, held[0]
	}
	if len(c.Firmware) > 0 && !check(matchList("firmware", f.Firmware, c.Firmware, globFold)) {
		return false, held[0]
	}
	if c.FirmwareBelow != "" && !check(firmwareBelow(f.Firmware, c.FirmwareBelow)) {
		return false, held[0]
	}
	if len(c.Origin) > 0 && !check(matchList("origin", f.Origin, c.Origin, nil)) {
		return false, held[0]
	}
	if len(c.Lists) > 0 {
		ok, why := false, ""
		for _, l := range f.Lists {
			if contains(c.Lists, l) {
				ok, why = true, "lists: "+l+" is in "+list(c.Lists)
				break
			}
		}
		if !ok {
			if len(f.Lists) == 0 {
				why = "lists: the module is on no list, not in " + list(c.Lists)
			} else {
				why = "lists: none of " + list(f.Lists) + " is in " + list(c.Lists)
			}
		}
		if !check(ok, why) {
			return false, held[0]
		}
	}
	return true, strings.Join(held, ", ")
}

func matchList(what, fact string, want []string, eq func(pattern, s string) bool) (bool, string) {
	if fact == "" {
		return false, what + " unknown"
	}
	glob := eq != nil
	for _, w := range want {
		if glob && globFold(w, fact) || !glob && strings.EqualFold(w, fact) {
			if glob {
				return true, what + " " + fact + " matches " + w
			}
			return true, what + " " + fact + " is in " + list(want)
		}
	}
	if glob && len(want) == 1 {
		return false, what + " " + fact + " does not match " + want[0]
	}
	if glob {
		return false, what + " " + fact + " matches none of " + list(want)
	}
	return false, what + " " + fact + " is not in " + list(want)
}

func firmwareBelow(fact, threshold string) (bool, string) {
	if fact == "" {
		return false, "firmware unknown, cannot compare with " + threshold
	}
	cmp, ok, why := compareRevision(fact, threshold)
	switch {
	case !ok:
		return false, "firmware " + fact + " cannot be compared with " + threshold + ": " + why
	case cmp < 0:
		return true, "firmware " + fact + " is below " + threshold
	case cmp == 0:
		return false, "firmware " + fact + " is not below " + threshold + " (same revision)"
	}
	return false, "firmware " + fact + " is not below " + threshold
}

// globFold matches s against pattern case-insensitively; '*' matches any
// run of characters, '?' one character; nothing else is special.
func globFold(pattern, s string) bool {
	// Iterative matcher with single-star backtracking: linear in practice,
	// never exponential.
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; {
			case c == '*':
				starP, starS = px, sx
				px++
				continue
			case c == '?' || lower(c) == lower(s[sx]):
				px++
				sx++
				continue
			}
		}
		if starP >= 0 {
			px = starP + 1
			starS++
			sx = starS
			continue
		}
		return false
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func containsFold(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func list(l []string) string { return "[" + strings.Join(l, " ") + "]" }
