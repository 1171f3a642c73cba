package modem_test

import (
	"context"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/simulator"
)

// countingPort counts the bytes crossing the port in both directions.
type countingPort struct {
	io.ReadWriteCloser
	n atomic.Int64
}

func (c *countingPort) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingPort) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// BenchmarkIdentifyPTY is a full identity read (Identify after Sync) of a
// simulated Quectel EC25 through a real pty opened with go.bug.st/serial.
// It reports the bytes on the wire per read and the time those bytes take
// at 115200 baud (8N1: 10 bits a byte), the floor a real UART imposes.
func BenchmarkIdentifyPTY(b *testing.B) {
	p, err := simulator.LoadProfile("quectel-ec25")
	if err != nil {
		b.Fatal(err)
	}
	sim := simulator.New(p, simulator.Options{Seed: 1})
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	link := filepath.Join(b.TempDir(), "ttyUSB2")
	if _, err := sim.ServePTY(ctx, simulator.PTYOptions{Link: link}); err != nil {
		b.Fatal(err)
	}
	port, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		b.Fatal(err)
	}
	cp := &countingPort{ReadWriteCloser: port}
	conn := atcmd.New(cp, atcmd.Config{})
	defer conn.Close()
	if err := conn.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	cp.n.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := modem.Identify(ctx, conn, modem.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	bytes := float64(cp.n.Load()) / float64(b.N)
	b.ReportMetric(bytes, "wire-B/op")
	b.ReportMetric(bytes*10/115200*1000, "ms-at-115200/op")
}
