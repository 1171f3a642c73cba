package atcmd_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

var imeiAnswer = []byte("\r\n351234567890125\r\n\r\nOK\r\n")

func answerCGSN(line []byte) []byte {
	if string(line) == "AT+CGSN" {
		return imeiAnswer
	}
	return []byte("\r\nERROR\r\n")
}

// BenchmarkRoundTrip is one AT+CGSN exchange (a single-line answer)
// through the engine over net.Pipe against a scripted responder.
func BenchmarkRoundTrip(b *testing.B) {
	host := atcmdtest.Pipe(answerCGSN)
	c := atcmd.New(host, atcmd.Config{})
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

// BenchmarkRawPipeRoundTrip is the floor for BenchmarkRoundTrip: the same
// exchange over the same pipe with no parsing — write the command, read
// until the answer's last byte.
func BenchmarkRawPipeRoundTrip(b *testing.B) {
	host := atcmdtest.Pipe(answerCGSN)
	defer host.Close()
	cmd := []byte("AT+CGSN\r")
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := host.Write(cmd); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < len(imeiAnswer) {
			n, err := host.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}

func BenchmarkClassifyFinal(b *testing.B) {
	lines := [][]byte{[]byte("351234567890125"), []byte("OK"), []byte("+CME ERROR: 10"), []byte("+CREG: 1,\"1A2B\",\"01C3D4E5\",7")}
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			atcmd.ClassifyFinal(l, atcmd.DefaultVendorFinals)
		}
	}
}

// BenchmarkIdleURCs measures the reader on a stream of unsolicited lines.
func BenchmarkIdleURCs(b *testing.B) {
	chunk := bytes.Repeat([]byte("\r\n+CREG: 1,\"1A2B\",\"01C3D4E5\",7\r\n"), 64)
	m := atcmdtest.NewModem(atcmdtest.ScriptFunc(func(string) []byte { return nil }), atcmdtest.ModemOptions{})
	done := make(chan struct{}, 1)
	n := 0
	c := atcmd.New(m, atcmd.Config{})
	defer c.Close()
	if _, err := c.Handle("+CREG:", 0, func(atcmd.URC) {
		if n++; n%64 == 0 {
			done <- struct{}{}
		}
	}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		m.Emit(chunk)
		<-done
	}
}
