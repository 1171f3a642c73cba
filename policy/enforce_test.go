package policy

import "testing"

func TestCheckEnforcement(t *testing.T) {
	for _, tc := range []struct {
		line    string
		state   Enforcement
		refused bool
	}{
		{"AT+CFUN=1", EnforceQuarantined, true},
		{"AT+CFUN=4;+CFUN=1", EnforceQuarantined, true},
		{"AT+CFUN=01", EnforceQuarantined, true},
		{"AT+CFUN=1,1", EnforceQuarantined, true},
		{"at+cfun = 1", EnforceQuarantined, true},
		{"AT+CFUN=4", EnforceQuarantined, false},
		{"AT+CFUN=0", EnforceQuarantined, false},
		{"AT+CFUN?", EnforceQuarantined, false},
		{"AT+QPOWD=1", EnforceQuarantined, true},
		{"AT+CSQ", EnforceQuarantined, false},
		{"AT+CGACT=01,1", EnforceBlockedData, true},
		{"AT+CGACT=1,1", EnforceBlockedData, true},
		{"AT+CGACT=0,1", EnforceBlockedData, false},
		{"AT+QIACT=1", EnforceBlockedData, true},
		{"ATE0D*99#", EnforceBlockedData, true},
		{"ATD*99***1#", EnforceBlockedData, true},
		{`AT+CGDATA="PPP",1`, EnforceBlockedData, true},
		{"AT#SGACT=1,1", EnforceBlockedData, true},
		{"AT+CFUN=1", EnforceBlockedData, false},
		{"AT+CFUN=1", EnforcePending, true},
		{"ATD*99#", EnforcePending, true},
		{"AT+CFUN=1", EnforceNone, false},
		{"AT+CGACT=1,1", EnforceNone, false},
	} {
		got := CheckEnforcement(tc.line, tc.state)
		if (got != "") != tc.refused {
			t.Errorf("CheckEnforcement(%q, %d) = %q, want refused=%v", tc.line, tc.state, got, tc.refused)
		}
	}
}

func TestFramingCommandsRefused(t *testing.T) {
	p, err := Parse("p.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for line, refused := range map[string]bool{"ATQ1": true, "ATQ0": false, "ATQ": false, "ATV0": true, "ATV": true, "ATV1": false, "AT&W": true, "ATE0Q1": true} {
		d := p.CheckATLine(line, 1)
		if d.Refused() != refused {
			t.Errorf("CheckATLine(%q) refused=%v, want %v (%s)", line, d.Refused(), refused, d.Reason)
		}
	}
}

func FuzzCheckEnforcement(f *testing.F) {
	f.Add("AT+CFUN=4;+CFUN=1", uint8(1))
	f.Add(`AT+CGDATA="PPP",1`, uint8(2))
	f.Fuzz(func(t *testing.T, line string, st uint8) {
		CheckEnforcement(line, Enforcement(st%4))
	})
}
