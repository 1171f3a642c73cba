package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"go.bug.st/serial"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/simulator"
)

// BenchmarkIdentifyProfile is a full identity read (modem.Identify after
// Sync) of each simulated module through a real pty opened with
// go.bug.st/serial, as modem.BenchmarkIdentifyPTY does for the EC25 alone.
// The simulator answers at once, so this is the agent's own cost plus the
// pty's; a real UART at 115200 baud adds the bytes' transfer time.
func BenchmarkIdentifyProfile(b *testing.B) {
	for _, info := range simulator.Profiles() {
		b.Run(info.Name, func(b *testing.B) {
			p, err := simulator.LoadProfile(info.Name)
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
			conn := atcmd.New(port, atcmd.Config{})
			defer conn.Close()
			if err := conn.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			before := conn.Stats().Commands
			b.ReportAllocs()
			for b.Loop() {
				if _, err := modem.Identify(ctx, conn, modem.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(conn.Stats().Commands-before)/float64(b.N), "cmds/op")
		})
	}
}

// goldenReport is the report in attest's golden envelope
// (attest/testdata/envelope-v1.hex): a real agent report with one module,
// findings and AT firewall events.
func goldenReport(tb testing.TB) (body []byte, r *attest.Report) {
	tb.Helper()
	h, err := os.ReadFile(filepath.Join("..", "..", "attest", "testdata", "envelope-v1.hex"))
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(string(h)), ""))
	if err != nil {
		tb.Fatal(err)
	}
	env, err := attest.DecodeEnvelope(raw)
	if err != nil {
		tb.Fatal(err)
	}
	if r, err = attest.DecodeReport(env.Body); err != nil {
		tb.Fatal(err)
	}
	return env.Body, r
}

// BenchmarkReportSize reports the bytes of one report as MessagePack (the
// signed body, as sent), JSON (encoding/json of the same struct, digests
// as hex as the CLI prints them) and CBOR (fxamacker/cbor with the same
// key names, digests as byte strings), and time to encode each.
func BenchmarkReportSize(b *testing.B) {
	body, r := goldenReport(b)
	js, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	cb, err := cbor.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("msgpack", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if buf, err = r.MarshalMsg(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(body)), "bytes")
		b.ReportMetric(float64(len(body))/float64(len(js))*100, "%-of-json")
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes")
		b.ReportMetric(100, "%-of-json")
	})
	b.Run("cbor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cbor.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cb)), "bytes")
		b.ReportMetric(float64(len(cb))/float64(len(js))*100, "%-of-json")
	})
}
