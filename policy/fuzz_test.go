package policy

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, returns exactly one of a policy or an
// ErrorList with positioned entries, and a policy it accepts evaluates and
// answers AT lines.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/issue5.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(fwPolicy))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("version: 1\nmodules: {rules: [{id: a, when: {origin: cn}, action: deny}]}\n"))
	f.Add([]byte("version: 1\nnetwork: &a {apns: [x]}\nmodule_stack: *a\n"))
	f.Add([]byte("version: 1\n---\n- [a, {b: c}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned policy %v and error %v", p, err)
		}
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("bad entry %+v", e)
				}
			}
			return
		}
		if p.Version != 1 || p.Modules.Default == 0 || p.ModuleStack.Default == 0 || p.OnDeny == 0 {
			t.Fatalf("accepted policy has unset fields: %+v", p)
		}
		v := p.Evaluate(Facts{Vendor: "quectel", Model: "EC25", Firmware: "EC25EFAR06A06M4G", Origin: "CN",
			Lists: []string{"dod-1260h"}, Network: NetworkFacts{MCC: "460", APN: "x", Roaming: true}})
		if v.Action == 0 || len(v.Findings) == 0 {
			t.Fatalf("verdict %+v", v)
		}
		p.CheckATLine(`AT+QIOPEN=1,0,"TCP","broker.example.com",8883`, 1)
	})
}

// FuzzCheckATLine: the line parser and the decisions never panic; a refusal
// always carries a rule, a reason and a reply; an allowed line is forwarded
// unchanged; and a line refused alone stays refused when chained after a
// harmless command.
func FuzzCheckATLine(f *testing.F) {
	for _, s := range []string{
		"AT+CSQ", "ATE0V1", "A/", "AT+CGMI;+CGMM", `AT+QIOPEN=1,0,"TCP","broker.example.com",8883,0,1`,
		`AT+CMQTTCONNECT=0,"tcp://[2001:db8::7]:443",60,1`, `AT#SD=1,0,8883,"broker.example.com"`,
		`AT+QCFG="usbcfg",0x2C7C,0x125,1,1,1,1,1,1,0`, `AT+COPS=1,2,"46000"`, `ATD*99#;+QFOTADL="x"`,
		`AT^SISS=0,"address","socktcp://[::1]:80;x"`, "AT+Q IOPEN=1", "ATS3=13", `AT+CMEE=1+QIOPEN`, "at&f0z",
		`AT#XMQTTCON=1,"","","h",1`, "AT+HTTPPARA=\"URL\",\"http://a@b:c@d:1/\"",
	} {
		f.Add(s)
	}
	p, err := Parse("fw.yaml", []byte(fwPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		d := p.CheckATLine(line, 2)
		switch d.Action {
		case Deny:
			if d.Rule == "" || d.Reason == "" || d.Reply != "+CME ERROR: operation not allowed" || d.Forward != "" {
				t.Fatalf("refusal without rule, reason or reply: %+v", d)
			}
			if strings.HasPrefix(line, "AT") || strings.HasPrefix(line, "at") {
				chained := "AT+CSQ;" + line[2:]
				if c := p.CheckATLine(chained, 2); c.Action != Deny {
					t.Fatalf("%q refused but %q allowed: %+v", line, chained, c)
				}
			}
		case Allow, Alert:
			if d.Forward != line || d.Reply != "" {
				t.Fatalf("allowed line changed: %+v", d)
			}
		default:
			t.Fatalf("no action: %+v", d)
		}
		fl := NewATFilter(p, 0)
		fl.Check(line)
		fl.Done(true)
		fl.Check("A/")
	})
}

// FuzzCompareRevision: never panics and is antisymmetric where both
// directions are comparable.
func FuzzCompareRevision(f *testing.F) {
	f.Add("EC25EFAR06A08M4G", "EC25EFAR06A06M4G")
	f.Add("25.30.226", "25.30.216")
	f.Add("EC25EFAR06A08M4G_01.002", "EC25EFAR06A08M4G")
	f.Fuzz(func(t *testing.T, a, b string) {
		c1, ok1, _ := compareRevision(a, b)
		c2, ok2, _ := compareRevision(b, a)
		if ok1 && ok2 && c1 != -c2 && len(tokenizeRevision(a)) == len(tokenizeRevision(b)) {
			t.Fatalf("compare(%q,%q)=%d but compare(%q,%q)=%d", a, b, c1, b, a, c2)
		}
	})
}
