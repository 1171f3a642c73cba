package simulator

import (
	"os"
	"strings"
	"testing"
	"testing/synctest"
)

func FuzzParseCommandLine(f *testing.F) {
	for _, s := range []string{"", "E0", "+CSQ;+CREG?", `+CMGS="+1555"`, "I9", "S3?", "S0=2", "D*99#", `+QCFG="usbcfg",0x2C7C`, "^ICCID?", "#SD=1,0,80,\"x\"", "&F;E1V1", `+X="a;b";+Y=?`, "+", "&", "\"", "S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmds, err := ParseCommandLine(s)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if c.Name == "" {
				t.Fatalf("%q: empty command name", s)
			}
			_ = c.Key()
			splitArgs(c.Args)
			// a key parses back to itself
			if k := c.Key(); c.Name != "D" {
				again, err := ParseCommandLine(k)
				if err != nil || len(again) != 1 || again[0].Key() != k {
					t.Fatalf("%q: key %q does not round-trip: %v %v", s, k, again, err)
				}
			}
		}
	})
}

func FuzzParseProfile(f *testing.F) {
	ents, _ := os.ReadDir("profiles")
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".yaml") {
			b, _ := os.ReadFile("profiles/" + e.Name())
			f.Add(b)
		}
	}
	f.Add([]byte("name: a-b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProfile("fuzz.yaml", b)
		if err == nil && (p.Name == "" || len(p.USB.ATPorts()) == 0) {
			t.Fatalf("accepted an incomplete profile")
		}
	})
}

func FuzzParseScenario(f *testing.F) {
	f.Add([]byte("0s register home\n5s roam 26202 \"Voda fone\" V\n10s urc +X: 1\n"))
	f.Add([]byte("1s sim swap 26203\n2s traffic 10 20\n3s firmware A B\n4s cfun 4\n5s reboot\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario("fuzz", b)
		if err != nil {
			return
		}
		for _, ev := range sc.Events {
			if err := checkEvent(ev); err != nil {
				t.Fatalf("parsed event fails its own check: %v", err)
			}
		}
	})
}

func FuzzParseFaults(f *testing.F) {
	f.Add("latency=50ms,jitter=1ms,split=1,drop=0.5,garbage=0.1,urc-mid=1,reboot-on=AT+X,urc-line=+A: 1,2")
	f.Add("lie=quectel-ec25")
	f.Fuzz(func(t *testing.T, s string) {
		ParseFaults(s)
	})
}

// FuzzModemInput feeds arbitrary bytes to a modem: it must never panic nor
// stop answering.
func FuzzModemInput(f *testing.F) {
	f.Add([]byte("AT+CMGS=\"1\"\rhi\x1aAT\r"))
	f.Add([]byte("ATE0V0Q1\rA/AT+CFUN=1,1\r"))
	f.Add([]byte("AT+QHTTPURL=3\rabcAT+QISEND=0,2\r\x1b\x00\xffAT\r"))
	p, err := LoadProfile("quectel-ec25")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		synctest.Test(t, func(t *testing.T) {
			m := New(p, Options{})
			h := newHost(m.Pipe())
			defer func() { m.Close(); h.close() }()
			h.conn.Write(b)
			synctest.Wait()
			// leave any prompt or data phase, reset the channel, and check
			// the modem still answers
			h.conn.Write([]byte("\r\x1b" + strings.Repeat("x", maxLine+10) + "\r\x1bATZ\rAT\r"))
			synctest.Wait()
			if got := h.take(); !strings.Contains(got, "OK") && !strings.Contains(got, "0\r") {
				t.Fatalf("no answer after %q: %q", b, got)
			}
		})
	})
}
