package policy

import "testing"

// Target: a pass-through line costs at most 2 µs and allocates nothing.
func BenchmarkCheckATLinePassThrough(b *testing.B) {
	p := mustParse(b, fwPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.CheckATLine("AT+CSQ\r", 1); d.Action != Allow {
			b.Fatal(d)
		}
	}
}

func BenchmarkCheckATLineChainPassThrough(b *testing.B) {
	p := mustParse(b, fwPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.CheckATLine(`AT+CGMI;+CGMM;+CGMR;+CSQ;+CREG?;+CGDCONT?;+QCFG="nwscanmode",3`, 1); d.Action != Allow {
			b.Fatal(d)
		}
	}
}

func BenchmarkCheckATLineDestination(b *testing.B) {
	p := mustParse(b, fwPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.CheckATLine(`AT+QIOPEN=1,0,"TCP","broker.example.com",8883,0,1`, 1); d.Action != Allow {
			b.Fatal(d)
		}
	}
}

func BenchmarkCheckATLineRefused(b *testing.B) {
	p := mustParse(b, fwPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.CheckATLine(`AT+QIOPEN=1,0,"TCP","203.0.113.5",80,0,1`, 1); d.Action != Deny {
			b.Fatal(d)
		}
	}
}

func BenchmarkATFilterPassThrough(b *testing.B) {
	f := NewATFilter(mustParse(b, fwPolicy), 1)
	b.ReportAllocs()
	for b.Loop() {
		f.Check("AT+CSQ\r")
		f.Done(true)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	p, err := Load("testdata/issue5.yaml")
	if err != nil {
		b.Fatal(err)
	}
	facts := Facts{Vendor: "quectel", Model: "EC25", Firmware: "EC25EFAR06A06M4G", Origin: "US",
		Network: NetworkFacts{MCC: "262", MNC: "01", APN: "iot.example"}}
	b.ReportAllocs()
	for b.Loop() {
		if v := p.Evaluate(facts); v.Action != Deny {
			b.Fatal(v)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data := []byte(fwPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("p.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
