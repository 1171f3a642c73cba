package simulator

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// host is the test's end of a pipe: a goroutine collects everything the
// modem writes; take returns and clears it.
type host struct {
	conn net.Conn
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func newHost(c net.Conn) *host {
	h := &host{conn: c, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		b := make([]byte, 1024)
		for {
			n, err := c.Read(b)
			h.mu.Lock()
			h.buf.Write(b[:n])
			h.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return h
}

func (h *host) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.buf.String()
	h.buf.Reset()
	return s
}

// do sends one command line with CR and returns everything the modem sent
// once the bubble is idle. Only for use inside synctest.
func (h *host) do(t *testing.T, line string) string {
	t.Helper()
	if _, err := h.conn.Write([]byte(line + "\r")); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	synctest.Wait()
	return h.take()
}

func (h *host) close() {
	h.conn.Close()
	<-h.done
}

func mustProfile(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := LoadProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withModem runs f in a synctest bubble with a modem on a pipe.
func withModem(t *testing.T, profile string, opts Options, f func(t *testing.T, m *Modem, h *host)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		m := New(mustProfile(t, profile), opts)
		h := newHost(m.Pipe())
		defer func() {
			m.Close()
			h.close()
		}()
		f(t, m, h)
	})
}

func vis(s string) string {
	r := strings.NewReplacer("\r", `\r`, "\n", `\n`)
	return r.Replace(s)
}

func TestSmoke(t *testing.T) {
	withModem(t, "quectel-ec25", Options{Seed: 1}, func(t *testing.T, m *Modem, h *host) {
		for _, c := range []string{"AT", "ATE0", "AT+CMEE=2", "ATI", "AT+CGSN", "AT+QCCID", "AT+CSQ;+CREG?", "AT+FOO", "AT+COPS=?", "AT+QGDCNT?"} {
			t.Logf("%-14s → %s", c, vis(h.do(t, c)))
		}
	})
}
