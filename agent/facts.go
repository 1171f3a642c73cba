package agent

import (
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
)

// FactsOf turns what modem learned about a module into the policy's
// input. Unknown values stay empty, and a policy condition on an unknown
// fact does not hold.
func FactsOf(m *modem.Module) policy.Facts {
	f := policy.Facts{
		Vendor:       m.Vendor,
		Manufacturer: m.Manufacturer,
		Model:        m.Model,
		Firmware:     m.Firmware,
		Origin:       m.OriginCountry,
		Lists:        m.Lists,
		Network: policy.NetworkFacts{
			Roaming: m.Network.Roaming,
			APN:     m.Network.APN,
		},
	}
	if f.Vendor == "unknown" {
		f.Vendor = ""
	}
	if p := m.Network.PLMN; len(p) >= 5 {
		f.Network.MCC, f.Network.MNC = p[:3], p[3:]
	}
	return f
}

// Judge evaluates the module and adds the policy's findings to it (rule
// id, a severity from the action, and the reason). It returns the verdict.
func Judge(p *policy.Policy, m *modem.Module) policy.Verdict {
	v := p.Evaluate(FactsOf(m))
	for _, f := range v.Findings {
		sev := modem.SeverityInfo
		switch f.Action {
		case policy.Deny:
			sev = modem.SeverityHigh
		case policy.Alert:
			sev = modem.SeverityMedium
		}
		m.Findings = append(m.Findings, modem.Finding{ID: "policy:" + f.Rule, Severity: sev, Detail: f.Reason})
	}
	return v
}
