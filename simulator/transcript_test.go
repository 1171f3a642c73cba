package simulator

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

// The shared AT transcripts live in atcmd/atcmdtest/testdata/transcripts;
// atcmdtest parses them (format in its package documentation).

var update = flag.Bool("update", false, "rewrite the simulator's own transcripts (<profile>-*.txtar) from the simulator")

const transcriptDir = "../atcmd/atcmdtest/testdata/transcripts"

type tstep struct {
	send    string
	hasSend bool
	data    []byte
	recv    []byte
}

// escape is atcmdtest's notation, ending in a newline as a txtar section does.
func escape(b []byte) string {
	s := atcmdtest.Escape(b)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// replay runs steps against a fresh modem in a synctest bubble and returns
// what the modem sent at each step. want, when set, bounds how many bytes to
// wait for per step (fake time advances up to 10 minutes per step).
func replay(t *testing.T, profile string, seed uint64, steps []tstep) [][]byte {
	t.Helper()
	var got [][]byte
	synctest.Test(t, func(t *testing.T) {
		boot := len(steps) > 0 && !steps[0].hasSend
		m := New(mustProfile(t, profile), Options{Seed: seed, Boot: boot})
		h := newHost(m.Pipe())
		defer func() {
			m.Close()
			h.close()
		}()
		for _, s := range steps {
			if !s.hasSend {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
				if err := m.WaitReady(ctx); err != nil {
					t.Errorf("boot: %v", err)
				}
				cancel()
				synctest.Wait()
				got = append(got, []byte(h.take()))
				continue
			}
			if _, err := h.conn.Write([]byte(s.send + "\r")); err != nil {
				t.Fatal(err)
			}
			if s.data != nil {
				synctest.Wait()
				if _, err := h.conn.Write(append(append([]byte{}, s.data...), 0x1a)); err != nil {
					t.Fatal(err)
				}
			}
			var b []byte
			for waited := time.Duration(0); ; waited += time.Second {
				synctest.Wait()
				b = append(b, h.take()...)
				if (s.recv != nil && len(b) >= len(s.recv)) || waited > 10*time.Minute {
					break
				}
				if s.recv == nil && waited > 2*time.Minute {
					break
				}
				time.Sleep(time.Second)
			}
			got = append(got, b)
		}
	})
	return got
}

func TestTranscripts(t *testing.T) {
	if *update {
		writeTranscripts(t)
	}
	all, err := atcmdtest.Transcripts()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tr := range all {
		if tr.Profile == "" {
			continue
		}
		if _, err := LoadProfile(tr.Profile); err != nil {
			t.Errorf("%s: %v", tr.Name, err)
			continue
		}
		steps := make([]tstep, len(tr.Steps))
		for i, st := range tr.Steps {
			steps[i] = tstep{send: st.Send, hasSend: st.Send != "", data: st.Data, recv: st.Recv}
		}
		n++
		t.Run(tr.Name, func(t *testing.T) {
			got := replay(t, tr.Profile, uint64(tr.Seed), steps)
			for i, s := range steps {
				if i >= len(got) {
					break
				}
				if !bytes.Equal(got[i], s.recv) {
					t.Errorf("%s step %d (send %q):\n got: %s\nwant: %s", tr.Name, i+1, s.send, vis(string(got[i])), vis(string(s.recv)))
				}
			}
		})
	}
	if n == 0 {
		t.Fatalf("no transcripts with a profile: key in %s", transcriptDir)
	}
}

// ownTranscripts are the transcripts this package writes with -update.
var ownTranscripts = []struct {
	profile, kind string
	boot          bool
	sends         []string
	data          map[int]string // step index → payload
}{
	{"quectel-ec25", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+QGMR", "AT+CGSN", "AT+CIMI", "AT+QCCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"simcom-sim7600", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+SIMCOMATI", "AT+CGSN", "AT+CIMI", "AT+CICCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"huawei-me909s", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT^VERSION?", "AT+CGSN", "AT+CIMI", "AT^ICCID?", "AT+CREG?", "AT+CSQ", "AT+COPS?", "AT+FOO"}, nil},
	{"quectel-bg96", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+QGMR", "AT+CGSN", "AT+CIMI", "AT+QCCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"quectel-rm500q", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+QGMR", "AT+CGSN", "AT+CIMI", "AT+QCCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"fibocom-l850-gl", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+GTPKGVER?", "AT+CGSN", "AT+CIMI", "AT+CCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"fibocom-fm150", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+GTPKGVER?", "AT+CGSN", "AT+CIMI", "AT+ICCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"zte-me3630", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN", "AT+CIMI", "AT+ZGETICCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"meig-slm750", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN", "AT+CIMI", "AT+ICCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"sierra-em7455", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN", "AT+CIMI", "AT+CCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"telit-le910c1", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT#SWPKGV", "AT+CGSN", "AT#CGSN", "AT#CIMI", "AT#CCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"ublox-sara-r410m", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "ATI9", "AT+CGSN", "AT+CIMI", "AT+CCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"nordic-nrf9160", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT%SHORTSWVER", "AT%HWVERSION", "AT+CGSN=1", "AT+CIMI", "AT%XICCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"thales-ehs6", "identity", true, []string{"AT", "ATE0", "AT+CMEE=1", "ATI", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN", "AT+CIMI", "AT^SCID", "AT+CREG?", "AT+CSQ", "AT+COPS?"}, nil},
	{"quectel-ec25", "network", false, []string{"ATE0", "AT+CMEE=2", "AT+CREG=2;+CEREG=2", "AT+CREG?;+CEREG?", "AT+COPS=3,2;+COPS?", "AT+COPS=?", "AT+CGDCONT=1,\"IP\",\"iot.example\"", "AT+CGDCONT?", "AT+CGACT=1,1", "AT+CGPADDR", "AT+CFUN=4", "AT+CFUN?", "AT+CGACT=1,1", "AT+CFUN=1", "AT+CPIN=\"1234\"", "AT+CMGF=1", "AT+CMGS=\"+15551234567\"", "AT+CSQ", "A/"}, map[int]string{16: "hello"}},
	{"quectel-ec25", "stack", false, []string{"ATE0", "AT+QIOPEN=1,0,\"TCP\",\"203.0.113.5\",8883,0,1", "AT+QISEND=0,5", "AT+QGDCNT?", "AT+QMTOPEN=0,\"broker.example.com\",1883", "AT+QFOTADL=\"https://fw.example.com/ec25.bin\"", "AT+QIOTREG=2", "AT+QIOTREG?"}, map[int]string{2: "hello"}},
	{"simcom-sim7600", "stack", false, []string{"ATE0", "AT+NETOPEN", "AT+CIPOPEN=0,\"TCP\",\"203.0.113.9\",443", "AT+CMQTTCONNECT=0,\"tcp://mqtt.example.com:1883\",60,1", "AT+CUSBADB=1,1", "AT+CUSBADB?"}, nil},
	{"huawei-me909s", "stack", false, []string{"ATE0", "AT^IPINIT=\"3gnet\"", "AT^IPOPEN=1,\"TCP\",\"198.51.100.7\",5000", "AT^IPSEND=1,\"ping\"", "AT^DSFLOWQRY", "AT+CMEE=2", "AT+CIMI;+NOPE"}, nil},
}

func writeTranscripts(t *testing.T) {
	for _, o := range ownTranscripts {
		var steps []tstep
		if o.boot {
			steps = append(steps, tstep{})
		}
		for i, s := range o.sends {
			st := tstep{send: s, hasSend: true}
			if d, ok := o.data[i]; ok {
				st.data = []byte(d)
			}
			steps = append(steps, st)
		}
		got := replay(t, o.profile, 1, steps)
		a := &txtar.Archive{Comment: []byte(fmt.Sprintf("Written by the simulator (go test ./simulator -run TestTranscripts -update).\nThe formats and their public sources are in simulator/profiles/%s.yaml\n(values marked unconfirmed there are unconfirmed here too).\nprofile: %s\nseed: 1\n", o.profile, o.profile))}
		for i, s := range steps {
			if s.hasSend {
				a.Files = append(a.Files, txtar.File{Name: "send", Data: []byte(s.send + "\n")})
			}
			if s.data != nil {
				a.Files = append(a.Files, txtar.File{Name: "data", Data: []byte(escape(s.data))})
			}
			a.Files = append(a.Files, txtar.File{Name: "recv", Data: []byte(escape(got[i]))})
		}
		file := filepath.Join(transcriptDir, o.profile+"-"+o.kind+".txtar")
		if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
