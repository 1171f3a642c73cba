package simulator

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestProfilesValid(t *testing.T) {
	ents, err := os.ReadDir("profiles")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		n++
		file := filepath.Join("profiles", e.Name())
		p, err := LoadProfileFile(file)
		if err != nil {
			t.Errorf("%v", err) // the error names file:line
			continue
		}
		// every profile answers identity over a pipe with a valid IMEI
		synctest.Test(t, func(t *testing.T) {
			m := New(p, Options{Seed: 1})
			h := newHost(m.Pipe())
			defer func() { m.Close(); h.close() }()
			h.do(t, "ATE0")
			got := h.do(t, "AT+CGSN")
			if !strings.Contains(got, m.IMEI()) || !luhnValid(m.IMEI()) || len(m.IMEI()) != 15 {
				t.Errorf("%s: AT+CGSN = %q, IMEI %s", file, got, m.IMEI())
			}
			if got := h.do(t, "AT+CGMI"); !strings.HasSuffix(got, "OK\r\n") {
				t.Errorf("%s: AT+CGMI = %q", file, got)
			}
		})
	}
	if n < 3 {
		t.Fatalf("only %d profiles", n)
	}
	if err := CheckProfiles(); err != nil {
		t.Error(err)
	}
	if len(Profiles()) != n {
		t.Errorf("Profiles() lists %d of %d files", len(Profiles()), n)
	}
}

func TestProfileErrorsNameFileAndLine(t *testing.T) {
	good, err := os.ReadFile("profiles/quectel-ec25.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`imei_tac: "86675804"`, `imei_tac: "8667"`, "identity.imei_tac"},
		{`vid: "2c7c"`, `vid: "zz"`, "usb"},
		{`stack: quectel`, `stack: nokia`, "stack"},
		{`"+QGMR": "{FIRMWARE}"`, `"+QGMR": "{FIRMWARE"`, "unclosed"},
		{`"+QGMR": "{FIRMWARE}"`, `"+QGMR": "{FIRMWAR}"`, "unknown placeholder"},
		{`cmee: 1`, `cmee: 7`, "cmee"},
		{`echo: true`, `ecko: true`, "not found"},
		{`role: nmea}`, `role: gps}`, "role"},
	} {
		bad := strings.Replace(string(good), tc.from, tc.to, 1)
		if bad == string(good) {
			t.Fatalf("replacement %q not applied", tc.from)
		}
		_, err := ParseProfile("x/quectel-ec25.yaml", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "quectel-ec25.yaml:") {
			t.Errorf("%s → %v; want an error naming the file, line and %q", tc.to, err, tc.want)
		}
	}
	if _, err := LoadProfile("nope"); err == nil || !strings.Contains(err.Error(), "quectel-ec25") {
		t.Errorf("LoadProfile error does not list valid names: %v", err)
	}
}

func TestGeneratedIdentity(t *testing.T) {
	p := mustProfile(t, "simcom-sim7600")
	seen := map[string]bool{}
	for seed := range uint64(50) {
		a, b := New(p, Options{Seed: seed}), New(p, Options{Seed: seed})
		if a.IMEI() != b.IMEI() || a.ICCID() != b.ICCID() || a.IMSI() != b.IMSI() {
			t.Fatalf("seed %d not deterministic", seed)
		}
		if !luhnValid(a.IMEI()) || !strings.HasPrefix(a.IMEI(), p.Identity.IMEITAC) {
			t.Errorf("IMEI %s", a.IMEI())
		}
		if !luhnValid(a.ICCID()) || len(a.ICCID()) != p.Identity.ICCIDLength || !strings.HasPrefix(a.ICCID(), p.Identity.ICCIDPrefix) {
			t.Errorf("ICCID %s", a.ICCID())
		}
		if len(a.IMSI()) != 15 || !strings.HasPrefix(a.IMSI(), "26201") {
			t.Errorf("IMSI %s", a.IMSI())
		}
		seen[a.IMEI()] = true
		a.Close()
		b.Close()
	}
	if len(seen) < 45 {
		t.Errorf("only %d distinct IMEIs over 50 seeds", len(seen))
	}
	if luhnDigit("49015420323751") != '8' { // IMEI example of 3GPP TS 23.003 Annex B
		t.Errorf("Luhn digit wrong")
	}
}

func TestV250(t *testing.T) {
	withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
		steps := []struct{ send, want string }{
			{"AT", "AT\r\r\nOK\r\n"},
			{"ATE0", "ATE0\r\r\nOK\r\n"},
			{"AT", "\r\nOK\r\n"},
			{"ATZ", "\r\nOK\r\n"},
			{"AT", "AT\r\r\nOK\r\n"}, // ATZ restored the factory echo
			{"ate0v0", "ate0v0\r0\r"},
			{"AT+CSQ", "+CSQ: 22,99\r\n0\r"},
			{"ATV1", "\r\nOK\r\n"},
			{"AT+CSQ;+CGMM", "\r\n+CSQ: 22,99\r\n\r\nEC25\r\n\r\nOK\r\n"},
			{"A/", "\r\n+CSQ: 22,99\r\n\r\nEC25\r\n\r\nOK\r\n"},
			{"junkAT", "\r\nOK\r\n"},
			{"AT+CGMM;+NOPE;+CGMI", "\r\nEC25\r\n\r\nERROR\r\n"},
			{"AT+C\"", "\r\nERROR\r\n"},
			{"AT+CMEE=2;+CPIN=\"0000\"", "\r\n+CME ERROR: operation not allowed\r\n"},
			{"hello", ""},
		}
		for _, s := range steps {
			if got := h.do(t, s.send); got != s.want {
				t.Errorf("%q: got %q want %q", s.send, got, s.want)
			}
		}
		// backspace editing
		if got := h.do(t, "AT+CGMX\bI"); got != "\r\nQuectel\r\n\r\nOK\r\n" {
			t.Errorf("backspace: %q", got)
		}
		rec := m.Received()
		if rec[0] != "AT" || rec[len(rec)-1] != "AT+CGMI" || strings.Contains(strings.Join(rec, "|"), "hello") {
			t.Errorf("Received() = %q", rec)
		}
	})
}

func TestCMEEAndSIM(t *testing.T) {
	withModem(t, "quectel-ec25", Options{SIM: SIMAbsent}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "ATE0")
		for _, s := range []struct{ send, want string }{
			{"AT+CMEE=0;+CIMI", "\r\nERROR\r\n"},
			{"AT+CMEE=1;+CIMI", "\r\n+CME ERROR: 10\r\n"},
			{"AT+CMEE=2;+QCCID", "\r\n+CME ERROR: SIM not inserted\r\n"},
			{"AT+CREG?", "\r\n+CREG: 0,0\r\n\r\nOK\r\n"},
			{"AT+COPS?", "\r\n+COPS: 0\r\n\r\nOK\r\n"},
			{"AT+CSQ", "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"},
		} {
			if got := h.do(t, s.send); got != s.want {
				t.Errorf("%q: got %q want %q", s.send, got, s.want)
			}
		}
		m.SetSIM(SIMLocked)
		if got := h.do(t, "AT+CPIN?"); got != "\r\n+CPIN: SIM PIN\r\n\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n" && got != "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n" {
			t.Errorf("locked: %q", got)
		}
		h.take()
		if got := h.do(t, `AT+CPIN="9999"`); got != "\r\n+CME ERROR: incorrect password\r\n" {
			t.Errorf("wrong pin: %q", got)
		}
		if got := h.do(t, `AT+CPIN="1234"`); got != "\r\nOK\r\n\r\n+CPIN: READY\r\n" {
			t.Errorf("pin: %q", got)
		}
		if got := h.do(t, "AT+CIMI"); got != "\r\n"+m.IMSI()+"\r\n\r\nOK\r\n" {
			t.Errorf("CIMI after PIN: %q", got)
		}
	})
}

func TestRegistrationURCsAndScenario(t *testing.T) {
	sc, err := ParseScenario("roam.txt", []byte(`
# roam to Vodafone, lose the SIM, swap it, reboot, new firmware
10s register searching
20s roam 26202 "Vodafone.de" VF
30s signal 9
40s sim absent
50s sim swap 26203
60s firmware EC25EFAR06A07M4G EC25EFAR06A07M4G_01.002.01.002
70s reboot
80s traffic 1000 10
`))
	if err != nil {
		t.Fatal(err)
	}
	withModem(t, "quectel-ec25", Options{Seed: 2}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "ATE0")
		h.do(t, "AT+CREG=2;+CEREG=1")
		imsi := m.IMSI()
		done := make(chan error, 1)
		go func() { done <- m.Play(t.Context(), sc) }()
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if got := h.take(); got != "\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n" {
			t.Errorf("searching: %q", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := h.take(); got != "\r\n+CREG: 5,\"1A2B\",\"01A2B302\",7\r\n\r\n+CEREG: 5\r\n" {
			t.Errorf("roaming: %q", got)
		}
		if got := h.do(t, "AT+COPS?;+CSQ"); got != "\r\n+COPS: 0,0,\"Vodafone.de\",7\r\n\r\n+CSQ: 22,99\r\n\r\nOK\r\n" {
			t.Errorf("COPS? roaming: %q", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := h.do(t, "AT+CSQ"); got != "\r\n+CSQ: 9,99\r\n\r\nOK\r\n" {
			t.Errorf("signal: %q", got)
		}
		time.Sleep(10 * time.Second) // sim absent
		synctest.Wait()
		if got := h.take(); !strings.Contains(got, "+CPIN: NOT READY") || !strings.Contains(got, "+CREG: 0") {
			t.Errorf("sim absent: %q", got)
		}
		time.Sleep(10 * time.Second) // swap
		synctest.Wait()
		h.take()
		if m.IMSI() == imsi || !strings.HasPrefix(m.IMSI(), "26203") {
			t.Errorf("swap: IMSI %s (was %s)", m.IMSI(), imsi)
		}
		time.Sleep(30 * time.Second) // firmware, reboot, traffic
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := h.take(); !strings.Contains(got, "RDY") {
			t.Errorf("reboot chatter: %q", got)
		}
		if got := h.do(t, "AT+QGMR"); !strings.Contains(got, "EC25EFAR06A07M4G_01.002.01.002") {
			t.Errorf("firmware after reboot: %q", got)
		}
		if tr := m.Traffic(); tr.Sent != 1000 || tr.Received != 10 {
			t.Errorf("traffic %+v", tr)
		}
	})
}

func TestSlowCommandsAndBoot(t *testing.T) {
	withModem(t, "quectel-ec25", Options{Boot: true}, func(t *testing.T, m *Modem, h *host) {
		// deaf after power-up: the command is neither echoed nor recorded
		h.do(t, "AT")
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.take(); got != "" || len(m.Received()) != 0 {
			t.Errorf("deaf period: got %q, received %q", got, m.Received())
		}
		if err := m.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := h.take(); !strings.HasPrefix(got, "\r\nRDY\r\n") || !strings.HasSuffix(got, "+QIND: PB DONE\r\n") {
			t.Errorf("chatter %q", got)
		}
		h.do(t, "ATE0")
		start := time.Now()
		if got := h.do(t, "AT+COPS=?"); got != "" {
			t.Errorf("COPS=? answered at once: %q", got)
		}
		time.Sleep(44 * time.Second)
		synctest.Wait()
		if got := h.take(); got != "" {
			t.Errorf("COPS=? answered early: %q", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.take(); !strings.HasPrefix(got, "\r\n+COPS: (2,") || time.Since(start) != 45*time.Second {
			t.Errorf("COPS=? after %v: %q", time.Since(start), got)
		}
	})
}

func TestFaults(t *testing.T) {
	t.Run("latency", func(t *testing.T) {
		withModem(t, "quectel-ec25", Options{Faults: Faults{Latency: 300 * time.Millisecond}}, func(t *testing.T, m *Modem, h *host) {
			start := time.Now()
			if got := h.do(t, "AT"); got != "AT\r" { // echo is not delayed
				t.Errorf("before latency: %q", got)
			}
			time.Sleep(300 * time.Millisecond)
			synctest.Wait()
			if got := h.take(); got != "\r\nOK\r\n" || time.Since(start) != 300*time.Millisecond {
				t.Errorf("after %v: %q", time.Since(start), got)
			}
		})
	})
	t.Run("split", func(t *testing.T) {
		withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
			h.do(t, "ATE0")
			m.SetFaults(Faults{Split: 1, SplitDelay: time.Millisecond})
			if _, err := h.conn.Write([]byte("ATI\r")); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if got := h.take(); len(got) != 1 {
				t.Errorf("first read %q, want one byte", got)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if got := h.take(); !strings.HasSuffix(got, "Revision: EC25EFAR06A06M4G\r\n\r\nOK\r\n") {
				t.Errorf("rest %q", got)
			}
		})
	})
	t.Run("drop-garbage-urc", func(t *testing.T) {
		withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
			h.do(t, "ATE0")
			m.SetFaults(Faults{Drop: 1})
			if got := h.do(t, "AT+CGMM"); got != "" {
				t.Errorf("dropped answer: %q", got)
			}
			m.SetFaults(Faults{Garbage: 1})
			if got := h.do(t, "AT+CGMM"); !strings.HasSuffix(got, "\r\nEC25\r\n\r\nOK\r\n") || len(got) < len("\r\nEC25\r\n\r\nOK\r\n")+8 {
				t.Errorf("garbage: %q", got)
			}
			m.SetFaults(Faults{URCMid: 1})
			if got := h.do(t, "AT+CGMM"); got != "\r\nEC25\r\n\r\n+CMTI: \"SM\",1\r\n\r\nOK\r\n" {
				t.Errorf("urc mid-answer: %q", got)
			}
			m.SetFaults(Faults{})
			m.InjectBytes([]byte{0x7e, 0x00, 0xff})
			synctest.Wait()
			if got := h.take(); got != "\x7e\x00\xff" {
				t.Errorf("InjectBytes: %q", got)
			}
		})
	})
	t.Run("reboot-mid-command", func(t *testing.T) {
		withModem(t, "quectel-ec25", Options{Faults: Faults{RebootOn: "AT+QGMR"}}, func(t *testing.T, m *Modem, h *host) {
			h.do(t, "ATE0")
			h.do(t, "AT+CMEE=2")
			got := h.do(t, "AT+QGMR")
			if strings.Contains(got, "OK") || !strings.Contains(got, "RDY") {
				t.Errorf("reboot mid-command: %q", got)
			}
			if got := h.do(t, "AT+CMEE?"); got != "AT+CMEE?\r\r\n+CMEE: 1\r\n\r\nOK\r\n" {
				t.Errorf("after reboot (echo and CMEE back to defaults): %q", got)
			}
		})
	})
	t.Run("lie", func(t *testing.T) {
		withModem(t, "quectel-ec25", Options{Faults: Faults{LieAs: "huawei-me909s"}}, func(t *testing.T, m *Modem, h *host) {
			h.do(t, "ATE0")
			if got := h.do(t, "AT+CGMI"); got != "\r\nHuawei Technologies Co., Ltd.\r\n\r\nOK\r\n" {
				t.Errorf("lying CGMI: %q", got)
			}
			if !strings.HasPrefix(m.IMEI(), "86417204") || m.Profile().USB.VID != "2c7c" {
				t.Errorf("lie: IMEI %s USB %s", m.IMEI(), m.Profile().USB.VID)
			}
		})
	})
}

func TestPersistentSettingsAndStack(t *testing.T) {
	withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "ATE0")
		h.do(t, "AT+QIOTREG=2")
		h.do(t, `AT+QCFG="usbcfg",0x2C7C,0x125,1,1,1,1,1,1,0`)
		h.do(t, "AT+CFUN=1,1")
		synctest.Wait()
		h.take()
		if got := h.do(t, "AT+QIOTREG?"); got != "AT+QIOTREG?\r\r\n+QIOTREG: 2\r\n\r\nOK\r\n" {
			t.Errorf("after reboot: %q", got)
		}
		if v, _ := m.Setting("usbcfg"); v != "0x2C7C,0x125,1,1,1,1,1,1,0" {
			t.Errorf("usbcfg = %q", v)
		}
		conns := m.Connections()
		if len(conns) != 1 || conns[0].Origin != "module" || conns[0].Host != "iot-south.quectel.com" || conns[0].Port != 1883 {
			t.Errorf("boot connection: %+v", conns)
		}
	})
}

// dialectProfile is the EC25 profile speaking another stack dialect.
func dialectProfile(t *testing.T, stack string) *Profile {
	p := *mustProfile(t, "quectel-ec25")
	p.Stack = stack
	return &p
}

func TestStackDialects(t *testing.T) {
	for _, tc := range []struct {
		stack string
		cmds  []string
		kind  string
		host  string
		port  int
	}{
		{"quectel", []string{`AT+QIOPEN=1,0,"UDP SERVICE","127.0.0.1",0,3030,0`}, "udp-service", "127.0.0.1", 0},
		{"quectel", []string{`AT+QSSLOPEN=1,1,4,"a.example",8883,0`}, "tls", "a.example", 8883},
		{"quectel", []string{`AT+QFTPOPEN="ftp.example",2121`}, "ftp", "ftp.example", 2121},
		{"quectel", []string{`AT+QIOTCFG="server",0,"mqtt://iot-south.quectel.com:1883"`}, "cloud", "iot-south.quectel.com", 1883},
		{"simcom", []string{`AT+CIPSTART="TCP","b.example",80`}, "tcp", "b.example", 80},
		{"simcom", []string{`AT+HTTPPARA="URL","https://c.example/x"`}, "http", "c.example", 443},
		{"telit", []string{`AT#SGACT=1,1`, `AT#SD=1,0,443,"d.example",0,0,1`}, "tcp", "d.example", 443},
		{"telit", []string{`AT#FTPOPEN="e.example:21","u","p",0`}, "ftp", "e.example", 21},
		{"ublox", []string{`AT+USOCR=17`, `AT+USOCO=0,"f.example",5683`}, "udp", "f.example", 5683},
		{"ublox", []string{`AT+UMQTT=2,"g.example",1883`}, "mqtt", "g.example", 1883},
		{"fibocom", []string{`AT+MIPCALL=1`, `AT+MIPOPEN=1,0,"h.example",9000,0`}, "tcp", "h.example", 9000},
		{"huawei", []string{`AT^IPOPEN=1,"UDP","i.example",53`}, "udp", "i.example", 53},
		{"nordic", []string{`AT#XSOCKET=1,1,0`, `AT#XCONNECT="j.example",443`}, "tcp", "j.example", 443},
		{"nordic", []string{`AT#XFOTA=1,"https://k.example/app.bin"`}, "fota", "k.example", 443},
		{"cinterion", []string{`AT^SISS=0,"srvType","Socket"`, `AT^SISS=0,"address","socktcp://l.example:7000"`, `AT^SISO=0`}, "tcp", "l.example", 7000},
	} {
		t.Run(tc.stack+"/"+tc.kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := New(dialectProfile(t, tc.stack), Options{})
				h := newHost(m.Pipe())
				defer func() { m.Close(); h.close() }()
				h.do(t, "ATE0")
				for _, c := range tc.cmds {
					if got := h.do(t, c); strings.Contains(got, "ERROR") {
						t.Errorf("%s: %q", c, got)
					}
				}
				conns := m.Connections()
				if len(conns) != 1 || conns[0].Kind != tc.kind || conns[0].Host != tc.host || conns[0].Port != tc.port || conns[0].Dialect != tc.stack {
					t.Errorf("connections %+v", conns)
				}
				if m.Traffic().Sent == 0 {
					t.Errorf("byte counters did not grow")
				}
			})
		})
	}
}

func TestPromptsAndPorts(t *testing.T) {
	withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "AT+CMGF=1")
		h.take()
		got := h.do(t, `AT+CMGS="+15550001"`)
		if got != "AT+CMGS=\"+15550001\"\r\r\n> " {
			t.Errorf("prompt: %q", got)
		}
		h.conn.Write([]byte("draft\x1b"))
		synctest.Wait()
		if got := h.take(); got != "draft\r\nOK\r\n" || len(m.SentSMS()) != 0 {
			t.Errorf("ESC cancel: %q %v", got, m.SentSMS())
		}
		h.do(t, `AT+CMGS="+15550001"`)
		h.conn.Write([]byte("hi\x1a"))
		synctest.Wait()
		if got := h.take(); got != "hi\x1a\r\n+CMGS: 1\r\n\r\nOK\r\n" {
			t.Errorf("send: %q", got)
		}
		if s := m.SentSMS(); len(s) != 1 || s[0].To != "+15550001" || s[0].Body != "hi" {
			t.Errorf("SentSMS %+v", s)
		}
		// second AT port: commands work, URCs go to the URC port only
		h2 := newHost(m.PipePort(1))
		defer h2.close()
		if got := h2.do(t, "AT+CGMM"); got != "AT+CGMM\r\r\nEC25\r\n\r\nOK\r\n" {
			t.Errorf("port 1: %q", got)
		}
		m.InjectURC("+QIND: \"csq\",20,99")
		synctest.Wait()
		if got := h.take(); got != "\r\n+QIND: \"csq\",20,99\r\n" {
			t.Errorf("URC port: %q", got)
		}
		if got := h2.take(); got != "" {
			t.Errorf("port 1 got the URC: %q", got)
		}
	})
}

func TestTranscriptWriter(t *testing.T) {
	var buf bytes.Buffer
	withModem(t, "huawei-me909s", Options{Transcript: &buf}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "AT^ICCID?")
	})
	if buf.String() != "port0 < AT^ICCID?\n" {
		t.Errorf("transcript %q", buf.String())
	}
}

func TestParseFaults(t *testing.T) {
	f, err := ParseFaults("latency=50ms,jitter=10ms,split=1,drop=0.1,garbage=0.2,urc-mid=0.5,reboot-on=AT+CGMR,lie=huawei-me909s,urc-line=+CMTI: \"ME\",3")
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Split: 1, Drop: 0.1, Garbage: 0.2, URCMid: 0.5, RebootOn: "AT+CGMR", LieAs: "huawei-me909s", URCLine: `+CMTI: "ME",3`}
	if f != want {
		t.Errorf("got %+v", f)
	}
	for _, bad := range []string{"latency", "drop=1.5", "split=-1", "lie=nokia-3310", "frobnicate=1", "latency=fast"} {
		if _, err := ParseFaults(bad); err == nil || !strings.HasPrefix(err.Error(), "simulator: ") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"5s register home\n2s reboot\n", "s.txt:2: offset"},
		{"1s fly away\n", "s.txt:1: unknown event"},
		{"x reboot\n", "s.txt:1:"},
		{"1s roam 12\n", "PLMN"},
		{"1s signal 40\n", "0..31"},
		{"1s sim lost\n", "sim"},
		{"1s roam 26202 \"Voda\n", "quote"},
	} {
		_, err := ParseScenario("s.txt", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.in, err, tc.want)
		}
	}
}

func TestPlayCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New(mustProfile(t, "quectel-ec25"), Options{})
		defer m.Close()
		sc, _ := ParseScenario("s", []byte("1h reboot\n"))
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := m.Play(ctx, sc); err != context.DeadlineExceeded {
			t.Errorf("Play = %v", err)
		}
	})
}

// AT+QHTTPURL carries the URL in a CONNECT data phase, not on the command
// line (the shared transcripts leave it out: the parser has no data mode).
func TestQuectelHTTPURL(t *testing.T) {
	withModem(t, "quectel-ec25", Options{}, func(t *testing.T, m *Modem, h *host) {
		h.do(t, "ATE0")
		if got := h.do(t, "AT+QHTTPGET=80"); got != "\r\n+CME ERROR: 3\r\n" {
			t.Errorf("GET without URL: %q", got)
		}
		if got := h.do(t, "AT+QHTTPURL=26,80"); got != "\r\nCONNECT\r\n" {
			t.Errorf("QHTTPURL: %q", got)
		}
		h.conn.Write([]byte("http://example.com/upd.bin"))
		synctest.Wait()
		if got := h.take(); got != "\r\nOK\r\n" {
			t.Errorf("after URL: %q", got)
		}
		if got := h.do(t, "AT+QHTTPGET=80"); got != "\r\nOK\r\n\r\n+QHTTPGET: 0,200,512\r\n" {
			t.Errorf("GET: %q", got)
		}
		c := m.Connections()
		if len(c) != 1 || c[0].Kind != "http" || c[0].URL != "http://example.com/upd.bin" || c[0].Port != 80 {
			t.Errorf("connections %+v", c)
		}
	})
}
