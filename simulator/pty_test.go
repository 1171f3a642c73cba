//go:build linux

package simulator

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"
)

// serialClient talks to the pty exactly as the agent will: through
// go.bug.st/serial, with a read timeout used only by this polling helper.
type serialClient struct {
	t    *testing.T
	port serial.Port
	buf  bytes.Buffer
}

func openSerial(t *testing.T, path string) *serialClient {
	t.Helper()
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("serial.Open(%s): %v", path, err)
	}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return &serialClient{t: t, port: p}
}

// until reads until the received text contains want or the deadline passes.
func (c *serialClient) until(want string, d time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(d)
	b := make([]byte, 256)
	for !strings.Contains(c.buf.String(), want) {
		if time.Now().After(deadline) {
			c.t.Fatalf("timeout waiting for %q; got %q", want, c.buf.String())
		}
		n, err := c.port.Read(b)
		if err != nil {
			c.t.Fatalf("read: %v (got %q)", err, c.buf.String())
		}
		c.buf.Write(b[:n])
	}
	s := c.buf.String()
	c.buf.Reset()
	return s
}

func (c *serialClient) cmd(line, want string) string {
	c.t.Helper()
	if _, err := c.port.Write([]byte(line + "\r")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
	return c.until(want, 5*time.Second)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestPTYGoBugSerial(t *testing.T) {
	m := New(mustProfile(t, "quectel-ec25"), Options{Seed: 1})
	defer m.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	link := filepath.Join(t.TempDir(), "ttyUSB2")
	path, err := m.ServePTY(ctx, PTYOptions{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(link); target != path {
		t.Fatalf("link -> %q, want %q", target, path)
	}
	c := openSerial(t, link)
	if got := c.cmd("AT", "OK\r\n"); got != "AT\r\r\nOK\r\n" {
		t.Errorf("AT: got %q", got)
	}
	c.cmd("ATE0", "OK\r\n")
	if got := c.cmd("AT+CGSN", "OK\r\n"); got != "\r\n"+m.IMEI()+"\r\n\r\nOK\r\n" {
		t.Errorf("AT+CGSN: got %q", got)
	}
	c.cmd("AT+CGMI;+CGMM", "OK\r\n")
	// the client closes and reopens the port: the simulator keeps serving
	c.port.Close()
	c = openSerial(t, link)
	if got := c.cmd("AT+CGMR", "OK\r\n"); !strings.Contains(got, "EC25EFAR06A06M4G") {
		t.Errorf("after reopen: got %q", got)
	}

	// a reboot makes the device vanish and come back under the same link
	m.Reboot()
	waitFor(t, 5*time.Second, "the link to be re-created after reboot", func() bool {
		tgt, err := os.Readlink(link)
		return err == nil && tgt != path
	})
	c.port.Close()
	c = openSerial(t, link)
	if got := c.cmd("AT", "OK\r\n"); !strings.HasSuffix(got, "OK\r\n") {
		t.Errorf("after reboot: got %q", got)
	}
	c.port.Close()
	cancel()
	waitFor(t, 5*time.Second, "the link to be removed", func() bool {
		_, err := os.Lstat(link)
		return os.IsNotExist(err)
	})
	if got := m.Received(); !strings.Contains(strings.Join(got, "|"), "AT+CGSN|AT+CGMI;+CGMM|AT+CGMR") {
		t.Errorf("Received() = %q", got)
	}
}

// A plain Python client (termios raw, as pyserial sets the port) reads
// every profile's identity over the pty.
func TestPTYPythonClient(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	script := `
import os, sys, termios, time, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
def cmd(c):
    os.write(fd, (c + "\r").encode())
    buf = b""
    end = time.time() + 5
    while not (buf.endswith(b"OK\r\n") or buf.endswith(b"ERROR\r\n")) and time.time() < end:
        buf += os.read(fd, 256)
    return buf.decode()
cmd("ATE0")
print(cmd("AT+CGMI") + cmd("AT+CGMM") + cmd("AT+CGSN"), end="")
`
	for _, info := range Profiles() {
		t.Run(info.Name, func(t *testing.T) {
			t.Parallel()
			p := mustProfile(t, info.Name)
			m := New(p, Options{Seed: 7})
			defer m.Close()
			path, err := m.ServePTY(t.Context(), PTYOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, "-c", script, path).CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, out)
			}
			for _, want := range []string{p.Identity.Manufacturer, p.Identity.Model, m.IMEI()} {
				if !strings.Contains(string(out), want) {
					t.Errorf("python client output %q lacks %q", out, want)
				}
			}
		})
	}
}
