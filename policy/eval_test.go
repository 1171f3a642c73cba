package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareRevision(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		cmp  int
		ok   bool
	}{
		{"EC25EFAR06A08M4G", "EC25EFAR06A06M4G", 1, true},
		{"EC25EFAR06A06M4G", "EC25EFAR06A08M4G", -1, true},
		{"EC25EFAR06A08M4G", "EC25EFAR06A08M4G", 0, true},
		{"ec25efar06a08m4g", "EC25EFAR06A08M4G", 0, true},
		{"EC25EFAR05A09M4G", "EC25EFAR06A08M4G", -1, true}, // release before version
		{"EC25EFAR06A8M4G", "EC25EFAR06A08M4G", 0, true},   // 8 == 08
		{"EC25EFAR06A10M4G", "EC25EFAR06A09M4G", 1, true},  // by value, not by text
		{"25.30.226", "25.30.216", 1, true},
		{"25.30.1000", "25.30.999", 1, true},
		{"SWI9X30C_02.33.03.00", "SWI9X30C_02.24.05.06", 1, true},
		{"99999999999999999999999", "99999999999999999999998", 1, true}, // no overflow
		{"EC25EFAR06A08M4G_01.002.01.002", "EC25EFAR06A08M4G", 0, true}, // a build of the threshold is not below it
		{"EC25EFAR06A06M4G_01.002.01.002", "EC25EFAR06A08M4G", -1, true},
		{"EC25EFAR06A08M4G", "EC25EFAR06A08M4G_01.003", 0, false}, // cannot tell which build
		{"EG25GGBR07A08M2G", "EC25EFAR06A08M4G", 0, false},        // another model
		{"EC25EFAR06A08M4G", "EC25EFAR06A08M4X", 0, false},        // differing letters after the deciding number
		{"EC25EFAR06A08", "EC25EFAR06A08M4G", 0, false},
		{"25.30.226", "EC25EFAR06A08M4G", 0, false},
		{"", "1", 0, false},
	} {
		cmp, ok, why := compareRevision(tc.a, tc.b)
		if cmp != tc.cmp || ok != tc.ok {
			t.Errorf("compareRevision(%q, %q) = %d, %v (%s); want %d, %v", tc.a, tc.b, cmp, ok, why, tc.cmp, tc.ok)
		}
		if !ok && why == "" {
			t.Errorf("compareRevision(%q, %q): no reason given", tc.a, tc.b)
		}
	}
}

func TestGlobFold(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"EC25", "EC25", true}, {"ec25", "EC25", true}, {"EC25*", "EC25-E", true}, {"EC2?", "EC25", true},
		{"EC2?", "EC255", false}, {"*", "", true}, {"", "", true}, {"", "x", false}, {"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false}, {"*25*", "EC25E", true}, {"[a]", "a", false}, {"[a]", "[A]", true},
	} {
		if got := globFold(tc.p, tc.s); got != tc.want {
			t.Errorf("globFold(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestEvaluateIssueExample(t *testing.T) {
	p, err := Load("testdata/issue5.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		facts    Facts
		action   Action
		rule     string
		reason   string
		findings int
	}{
		{"covered module", Facts{Vendor: "huawei", Origin: "CN", Lists: []string{"fcc-covered"}}, Deny, "covered-list",
			"rule covered-list: lists: fcc-covered is in [fcc-covered]", 1},
		{"quectel hits prc-origin first", Facts{Vendor: "quectel", Model: "EC25", Firmware: "EC25EFAR06A06M4G", Origin: "CN", Lists: []string{"dod-1260h"}}, Alert, "prc-origin",
			"rule prc-origin: origin CN is in [CN]", 1},
		{"old firmware elsewhere", Facts{Vendor: "quectel", Model: "EC25", Firmware: "EC25EFAR06A06M4G"}, Deny, "old-ec25-firmware",
			"rule old-ec25-firmware: vendor quectel is in [quectel], model EC25 matches EC25, firmware EC25EFAR06A06M4G is below EC25EFAR06A08M4G", 1},
		{"new firmware", Facts{Vendor: "quectel", Model: "EC25", Firmware: "EC25EFAR06A09M4G"}, Allow, "modules.default",
			"modules.default: no rule matched", 1},
		{"telit", Facts{Vendor: "telit", Model: "LE910C1", Origin: "IT", Network: NetworkFacts{MCC: "262", MNC: "01", APN: "iot.example"}}, Allow, "modules.default", "", 1},
		{"china network", Facts{Vendor: "telit", Origin: "IT", Network: NetworkFacts{MCC: "460", MNC: "00", APN: "IOT.EXAMPLE"}}, Deny, "network.deny_mcc",
			"network.deny_mcc: registered on PLMN 46000, MCC 460 is in [460 461]", 2},
		{"wrong apn", Facts{Vendor: "telit", Network: NetworkFacts{MCC: "262", APN: "internet"}}, Deny, "network.apns",
			"network.apns: APN internet is not in [iot.example]", 2},
		{"roaming", Facts{Vendor: "telit", Network: NetworkFacts{MCC: "208", Roaming: true}}, Alert, "network.roaming",
			"network.roaming: the module is roaming (roaming: alert)", 2},
		{"nothing known", Facts{}, Allow, "modules.default", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := p.Evaluate(tc.facts)
			d := v.Decision()
			if v.Action != tc.action || d.Rule != tc.rule || len(v.Findings) != tc.findings {
				t.Fatalf("Evaluate = %v by %q (%d findings: %+v); want %v by %q (%d)", v.Action, d.Rule, len(v.Findings), v.Findings, tc.action, tc.rule, tc.findings)
			}
			if tc.reason != "" && d.Reason != tc.reason {
				t.Errorf("reason %q\nwant   %q", d.Reason, tc.reason)
			}
			if v.OnDeny != Quarantine || v.PolicyHash != p.Hash {
				t.Errorf("verdict carries on_deny %v, hash %q", v.OnDeny, v.PolicyHash)
			}
		})
	}
}

func TestEvaluateTrace(t *testing.T) {
	p, _ := Load("testdata/issue5.yaml")
	v := p.Evaluate(Facts{Vendor: "quectel", Model: "EC21", Firmware: "EC21EFAR06A06M4G"})
	want := []RuleTrace{
		{"covered-list", false, "lists: the module is on no list, not in [fcc-covered]"},
		{"prc-origin", false, "origin unknown"},
		{"old-ec25-firmware", false, "model EC21 does not match EC25"},
	}
	if len(v.Trace) != len(want) {
		t.Fatalf("trace %+v", v.Trace)
	}
	for i := range want {
		if v.Trace[i] != want[i] {
			t.Errorf("trace[%d] = %+v, want %+v", i, v.Trace[i], want[i])
		}
	}
}

func TestEvaluateFirmwareNotComparable(t *testing.T) {
	p := mustParse(t, "version: 1\nmodules:\n  rules:\n    - {id: old, when: {firmware_below: EC25EFAR06A08M4G}, action: deny}\n")
	v := p.Evaluate(Facts{Firmware: "EG25GGBR07A08M2G"})
	if v.Action != Allow || !strings.Contains(v.Trace[0].Why, "cannot be compared with EC25EFAR06A08M4G") {
		t.Errorf("verdict %v, trace %+v", v.Action, v.Trace)
	}
	v = p.Evaluate(Facts{})
	if v.Action != Allow || v.Trace[0].Why != "firmware unknown, cannot compare with EC25EFAR06A08M4G" {
		t.Errorf("unknown firmware: %v %+v", v.Action, v.Trace)
	}
}

func TestEvaluateListsAny(t *testing.T) {
	p := mustParse(t, "version: 1\nmodules:\n  default: deny\n  rules:\n    - {id: ok, when: {lists: [a, b], vendor: [x, y]}, action: allow}\n")
	if v := p.Evaluate(Facts{Vendor: "y", Lists: []string{"c", "b"}}); v.Action != Allow {
		t.Errorf("any-element match: %+v", v)
	}
	if v := p.Evaluate(Facts{Vendor: "z", Lists: []string{"b"}}); v.Action != Deny || v.Trace[0].Why != "vendor z is not in [x y]" {
		t.Errorf("AND of conditions: %+v", v)
	}
}

func TestFailClosed(t *testing.T) {
	_, err := Load("testdata/missing.yaml")
	p := FailClosed(err)
	if !errors.Is(p.Err(), err) {
		t.Fatalf("Err = %v", p.Err())
	}
	v := p.Evaluate(Facts{Vendor: "telit", Origin: "IT"})
	if v.Action != Deny || v.Findings[0].Rule != "fail-closed" || !strings.Contains(v.Findings[0].Reason, "missing.yaml") {
		t.Errorf("fail-closed verdict %+v", v)
	}
	for _, line := range []string{"AT+QIOPEN=1,0,\"TCP\",\"broker.example.com\",8883", "AT+QFOTADL=\"x\"", "AT+CUSBADB=1"} {
		if d := p.CheckATLine(line, 1); d.Action != Deny || d.Rule != "fail-closed" || d.Reply != "+CME ERROR: 3" {
			t.Errorf("fail-closed %s: %+v", line, d)
		}
	}
	if d := p.CheckATLine("AT+CSQ", 1); d.Action != Allow {
		t.Errorf("fail-closed AT+CSQ: %+v", d)
	}
	if p.Egress == nil || len(p.Egress.Allow) != 0 || len(p.Egress.Interfaces) == 0 || p.OnDeny != BlockData {
		t.Errorf("fail-closed enforcement: %+v", p)
	}
	if ok := mustParse(t, "version: 1\n"); ok.Err() != nil {
		t.Errorf("a loaded policy has Err %v", ok.Err())
	}
}
