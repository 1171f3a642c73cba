package atcmd_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/pty"
)

// The AT round trip over a real pty, three ways against the same
// responder: the engine, the raw floor (write the command, read until the
// answer's last byte, no parsing) and a pyserial script (bench/). The
// ratios between them, from one run, are in docs/benchmarks.md
// (make bench).

// ptyResponder answers every command line (up to CR) written to a raw
// pty's slave with imeiAnswer, as fast as the kernel lets it, and returns
// the slave's path. Closing the master at cleanup ends its goroutine.
func ptyResponder(b *testing.B) string {
	b.Helper()
	p, err := pty.Open()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := p.Read(buf)
			if err != nil {
				return
			}
			for range bytes.Count(buf[:n], []byte{'\r'}) {
				if _, err := p.Write(imeiAnswer); err != nil {
					return
				}
			}
		}
	}()
	b.Cleanup(func() {
		p.Close()
		<-done
	})
	return p.Path()
}

// openPTYPort opens the slave the way the agent opens a modem port.
func openPTYPort(b *testing.B, path string) serial.Port {
	b.Helper()
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		b.Fatal(err)
	}
	return port
}

// BenchmarkPTYRoundTripEngine is one AT+CGSN exchange through the engine
// over a pty opened with go.bug.st/serial.
func BenchmarkPTYRoundTripEngine(b *testing.B) {
	port := openPTYPort(b, ptyResponder(b))
	c := atcmd.New(port, atcmd.Config{})
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Command(ctx, "AT+CGSN")
		if err != nil || len(resp.Lines) != 1 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkPTYRoundTripRaw is the floor: the same exchange on the same
// kind of port with no parsing.
func BenchmarkPTYRoundTripRaw(b *testing.B) {
	port := openPTYPort(b, ptyResponder(b))
	defer port.Close()
	cmd := []byte("AT+CGSN\r")
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := port.Write(cmd); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(imeiAnswer); {
			n, err := port.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}

// BenchmarkPTYRoundTripPyserial runs bench/pyserial_roundtrip.py for b.N
// exchanges and reports the time per exchange it measured itself, so the
// interpreter's start-up is not counted. The interpreter is
// $MODEMGUARD_PYTHON, else Debian's /usr/bin/python3 (where
// python3-serial installs), else python3 on PATH.
func BenchmarkPTYRoundTripPyserial(b *testing.B) {
	py := os.Getenv("MODEMGUARD_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
		if _, err := os.Stat(py); err != nil {
			py = "python3"
		}
	}
	if err := exec.Command(py, "-c", "import serial").Run(); err != nil {
		b.Skipf("%s cannot import serial (%v): apt-get install python3-serial, or set MODEMGUARD_PYTHON", py, err)
	}
	path := ptyResponder(b)
	script := filepath.Join("..", "bench", "pyserial_roundtrip.py")
	out, err := exec.Command(py, script, path, strconv.Itoa(b.N)).CombinedOutput()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", py, script, err, out)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "ns/op ")
	ns, perr := strconv.ParseFloat(v, 64)
	if !ok || perr != nil {
		b.Fatalf("%s printed %q, want \"ns/op N\"", script, out)
	}
	b.ReportMetric(ns, "ns/op")
}
