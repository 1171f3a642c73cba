package simulator

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// roundTrips sends AT+CSQ and reads to the final OK, b.N times.
func roundTrips(b *testing.B, rw io.ReadWriter) {
	buf := make([]byte, 256)
	var acc []byte
	cmd := []byte("AT+CSQ\r")
	final := []byte("OK\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := rw.Write(cmd); err != nil {
			b.Fatal(err)
		}
		acc = acc[:0]
		for !bytes.HasSuffix(acc, final) {
			n, err := rw.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			acc = append(acc, buf[:n]...)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

func BenchmarkPipe(b *testing.B) {
	m := New(mustProfile(b, "quectel-ec25"), Options{})
	defer m.Close()
	h := m.Pipe()
	defer h.Close()
	h.SetDeadline(time.Now().Add(time.Minute))
	roundTrips(b, h)
}

func BenchmarkPTY(b *testing.B) {
	m := New(mustProfile(b, "quectel-ec25"), Options{})
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path, err := m.ServePTY(ctx, PTYOptions{})
	if err != nil {
		b.Skip(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.SetDeadline(time.Now().Add(time.Minute))
	roundTrips(b, f)
}

func BenchmarkParseCommandLine(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		ParseCommandLine(`+CPIN?;+CSQ;+COPS=3,0;+COPS?;+QCFG="usbcfg";+CREG=2`)
	}
}
