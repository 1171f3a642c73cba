package atcmd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
	"github.com/modemguard/modemguard/simulator"
)

// client is a raw AT client on a pipe, as a chat script on a pty is.
type client struct {
	t    *testing.T
	conn net.Conn
	buf  []byte
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// until reads until the output holds want and returns everything up to
// and including it.
func (c *client) until(want string) string {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tmp := make([]byte, 256)
	for !bytes.Contains(c.buf, []byte(want)) {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			c.t.Fatal(err)
		}
		n, err := c.conn.Read(tmp)
		c.buf = append(c.buf, tmp[:n]...)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v; got %q", want, err, c.buf)
		}
	}
	i := bytes.Index(c.buf, []byte(want)) + len(want)
	out := string(c.buf[:i])
	c.buf = c.buf[i:]
	return out
}

type muxRig struct {
	sim    *simulator.Modem
	mux    *atcmd.Mux
	client *client
	agent  *atcmd.Conn
	mu     sync.Mutex
	urcs   []string // agent's unsolicited lines
	denied []string
}

func newMuxRig(t *testing.T) *muxRig {
	t.Helper()
	p, err := simulator.LoadProfile("quectel-ec25")
	if err != nil {
		t.Fatal(err)
	}
	r := &muxRig{sim: simulator.New(p, simulator.Options{Seed: 4})}
	r.mux = atcmd.NewMux(r.sim.Pipe(), atcmd.MuxConfig{
		Filter: func(host, line string, cmee int) atcmd.Verdict {
			if strings.Contains(strings.ToUpper(line), "+QIOPEN") && strings.Contains(line, "evil.example") {
				r.mu.Lock()
				r.denied = append(r.denied, line)
				r.mu.Unlock()
				return atcmd.Verdict{Reason: "destination not allowed"}
			}
			return atcmd.Verdict{Allow: true}
		},
	})
	cHost, cMux := net.Pipe()
	r.mux.Attach(cMux, atcmd.MuxHost{Name: "client", Filtered: true, Unsolicited: true})
	r.client = &client{t: t, conn: cHost}
	aHost, aMux := net.Pipe()
	r.mux.Attach(aMux, atcmd.MuxHost{Name: "agent", Unsolicited: true})
	r.agent = atcmd.New(aHost, atcmd.Config{Unsolicited: func(u atcmd.URC) {
		r.mu.Lock()
		r.urcs = append(r.urcs, u.Line)
		r.mu.Unlock()
	}})
	t.Cleanup(func() {
		r.agent.Close()
		cHost.Close()
		r.mux.Close()
		r.sim.Close()
	})
	return r
}

func TestMuxFirewall(t *testing.T) {
	r := newMuxRig(t)
	c := r.client
	c.send("AT+CSQ\r")
	if out := c.until("OK\r\n"); !strings.Contains(out, "+CSQ: ") {
		t.Fatalf("AT+CSQ answer %q", out)
	}
	c.send("AT+QIOPEN=1,0,\"TCP\",\"evil.example\",443,0,1\r")
	if out := c.until("\r\n"); out != "\r\n" {
		t.Fatalf("unexpected %q", out)
	}
	if out := c.until("\r\n"); out != "+CME ERROR: 3\r\n" {
		t.Fatalf("refusal %q, want +CME ERROR: 3", out)
	}
	c.send("A/\r") // V.250 repeat: the last line the module received, not the refused one
	if out := c.until("OK\r\n"); !strings.Contains(out, "+CSQ: ") {
		t.Fatalf("A/ answered %q, want the AT+CSQ answer again", out)
	}
	c.send("AT+CMEE=0\r")
	c.until("OK\r\n")
	c.send("AT+QIOPEN=1,0,\"TCP\",\"evil.example\",443,0,1\r")
	if out := c.until("ERROR\r\n"); strings.Contains(out, "CME") {
		t.Fatalf("with CMEE=0 the refusal must be plain ERROR: %q", out)
	}
	c.send("AT+QIOPEN=1,0,\"TCP\",\"broker.example.com\",8883,0,1\r")
	c.until("OK\r\n")
	for _, l := range r.sim.Received() {
		if strings.Contains(l, "evil.example") {
			t.Fatalf("a refused command reached the module: %q", l)
		}
	}
	if !slices.ContainsFunc(r.sim.Received(), func(l string) bool { return strings.Contains(l, "broker.example.com") }) {
		t.Error("the allowed AT+QIOPEN did not reach the module")
	}
	if len(r.denied) != 2 {
		t.Errorf("filter refused %d lines, want 2", len(r.denied))
	}
}

// TestMuxInterleaves runs the agent's commands and the client's at once:
// each gets its own answers, and a URC reaches both.
func TestMuxInterleaves(t *testing.T) {
	r := newMuxRig(t)
	ctx := context.Background()
	if err := r.agent.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	imei := r.sim.IMEI()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 30 {
			resp, err := r.agent.Command(ctx, "AT+CGSN")
			if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != imei {
				t.Errorf("agent AT+CGSN #%d = %q, %v", i, resp.Lines, err)
				return
			}
		}
	})
	for i := range 30 {
		r.client.send("AT+CGMI\r")
		if out := r.client.until("OK\r\n"); !strings.Contains(out, "Quectel") || strings.Contains(out, imei) {
			t.Fatalf("client AT+CGMI #%d = %q", i, out)
		}
	}
	wg.Wait()
	r.sim.InjectURC(`+CMTI: "SM",7`)
	r.client.until(`+CMTI: "SM",7`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := slices.Contains(r.urcs, `+CMTI: "SM",7`)
		r.mu.Unlock()
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not get the URC")
		}
		time.Sleep(5 * time.Millisecond) // polling another goroutine's slice with a deadline
	}
}

func TestMuxPromptAndConnectData(t *testing.T) {
	r := newMuxRig(t)
	c := r.client
	c.send("AT+CMGF=1\r")
	c.until("OK\r\n")
	c.send("AT+CMGS=\"+491701234567\"\r")
	c.until("> ")
	c.send("hello from the gateway\x1a")
	if out := c.until("OK\r\n"); !strings.Contains(out, "+CMGS:") {
		t.Fatalf("AT+CMGS answer %q", out)
	}
	if sms := r.sim.SentSMS(); len(sms) != 1 || sms[0].Body != "hello from the gateway" {
		t.Fatalf("module sent %+v", sms)
	}
	url := "http://example.com/a"
	c.send(fmt.Sprintf("AT+QHTTPURL=%d,80\r", len(url)))
	c.until("CONNECT\r\n")
	c.send(url)
	c.until("OK\r\n")
	c.send("AT+CGMI\r")
	c.until("Quectel")
}

// FuzzMuxModemOutput feeds arbitrary module output, in two chunks, to a
// Mux with a command in flight: it must never panic or wedge, and a later
// command still gets through once the module answers.
func FuzzMuxModemOutput(f *testing.F) {
	f.Add([]byte("\r\nOK\r\n"), []byte("\r\n+CMTI: \"SM\",1\r\n"))
	f.Add([]byte("\r\nCONNECT\r\n~\x7e\x01"), []byte("\r\nNO CARRIER\r\n"))
	f.Add([]byte("\r\n> "), []byte("\x1a\r\nOK\r\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		modemHost, modemDev := net.Pipe()
		m := atcmd.NewMux(modemHost, atcmd.MuxConfig{Timeout: func(string) time.Duration { return 50 * time.Millisecond }})
		defer m.Close()
		defer modemDev.Close()
		cHost, cMux := net.Pipe()
		defer cHost.Close()
		m.Attach(cMux, atcmd.MuxHost{Name: "c", Unsolicited: true})
		go func() { _, _ = io.Copy(io.Discard, cHost) }()
		go func() { _, _ = cHost.Write([]byte("AT+CSQ\r")) }()
		line := make([]byte, 64)
		_ = modemDev.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := modemDev.Read(line); err != nil {
			t.Fatal(err)
		}
		_, _ = modemDev.Write(a)
		_, _ = modemDev.Write(b)
	})
}

// TestMuxCountedPayload: bytes after a counted payload are command lines
// again and pass the filter (review finding: "helloAT+CFUN=1" in one write).
func TestMuxCountedPayload(t *testing.T) {
	r := newMuxRig(t)
	c := r.client
	c.send(`AT+QIOPEN=1,0,"TCP","broker.example.com",8883,0,1` + "\r")
	c.until("OK\r\n")
	c.send("AT+QISEND=0,5\r")
	c.until("> ")
	c.send(`helloAT+QIOPEN=1,1,"TCP","evil.example",443,0,1` + "\r")
	c.until("+CME ERROR: 3\r\n")
	for _, l := range r.sim.Received() {
		if strings.Contains(l, "evil.example") {
			t.Fatalf("a line hidden after a counted payload reached the module: %q", r.sim.Received())
		}
	}
}

// TestMuxHostLeavesAtPrompt: a host that leaves the module in text entry
// does not lock the agent out (review finding 3).
func TestMuxHostLeavesAtPrompt(t *testing.T) {
	r := newMuxRig(t)
	c := r.client
	c.send("AT+CMGF=1\r")
	c.until("OK\r\n")
	c.send(`AT+CMGS="+15550100"` + "\r")
	c.until("> ")
	c.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.agent.Sync(ctx); err != nil {
		t.Fatalf("the agent cannot sync after a host left at the prompt: %v", err)
	}
	resp, err := r.agent.Command(ctx, "AT+CGMI")
	if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "Quectel" {
		t.Fatalf("AT+CGMI = %q, %v; module received %q", resp.Lines, err, r.sim.Received())
	}
	if sms := r.sim.SentSMS(); len(sms) != 0 {
		t.Errorf("the agent's probes became a message: %+v", sms)
	}
}

func TestPayloadLength(t *testing.T) {
	for line, want := range map[string]int{
		"AT+QISEND=0,5": 5, "AT+QISEND=0": -1, `AT+QHTTPURL=20,80`: 20, "AT+CIPSEND=1,12": 12, "AT+CIPSEND=7": 7,
		`AT+CMGS="+1555"`: -1, `AT+QMTPUBEX=0,1,1,0,"t/x",42`: 42, "AT+CSQ": -1, "AT+QISEND=0,x": -1,
	} {
		if got := atcmd.PayloadLengthForTest(line); got != want {
			t.Errorf("payloadLength(%q) = %d, want %d", line, got, want)
		}
	}
}

// TestMuxLateAnswerAfterGiveUp: the mux gives up on a slow command; its
// late answer must not complete the next host's command (review finding 5).
func TestMuxLateAnswerAfterGiveUp(t *testing.T) {
	var m *atcmdtest.Modem
	m = atcmdtest.NewModem(atcmdtest.ScriptFunc(func(line string) []byte {
		switch line {
		case "AT+SLOW":
			return nil
		case "AT":
			// The abandoned command's answer arrives just as the probe goes out.
			return []byte("\r\nSLOW-ANSWER\r\n\r\nOK\r\n\r\nOK\r\n")
		case "AT+CGSN":
			return []byte("\r\n353465070085319\r\n\r\nOK\r\n")
		}
		return []byte("\r\nERROR\r\n")
	}), atcmdtest.ModemOptions{})
	mux := atcmd.NewMux(m, atcmd.MuxConfig{Timeout: func(line string) time.Duration {
		if line == "AT+SLOW" {
			return 200 * time.Millisecond
		}
		return 5 * time.Second
	}})
	defer mux.Close()
	cHost, cMux := net.Pipe()
	defer cHost.Close()
	mux.Attach(cMux, atcmd.MuxHost{Name: "client", Unsolicited: true})
	aHost, aMux := net.Pipe()
	mux.Attach(aMux, atcmd.MuxHost{Name: "agent", Unsolicited: true})
	agent := atcmd.New(aHost, atcmd.Config{})
	defer agent.Close()
	c := &client{t: t, conn: cHost}
	c.send("AT+SLOW\r")
	c.until("ERROR\r\n") // the mux tells the host it gave up
	resp, err := agent.Command(context.Background(), "AT+CGSN")
	if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "353465070085319" {
		t.Fatalf("agent AT+CGSN = %q, %v: a late answer leaked", resp.Lines, err)
	}
}
