package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--list"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least 3 profiles, got %q", out.String())
	}
	for _, l := range lines {
		name, desc, _ := strings.Cut(l, " ")
		if !strings.Contains(name, "-") || strings.TrimSpace(desc) == "" {
			t.Errorf("line %q: want NAME DESCRIPTION", l)
		}
	}
	if !strings.Contains(out.String(), "quectel-ec25 ") {
		t.Errorf("quectel-ec25 missing: %q", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "nokia-3310", "--link", "/tmp/x"}, "valid profiles: "},
		{[]string{"--link", "/tmp/x"}, "--profile is required"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"--profile", "quectel-ec25"}, "--link PATH is required"},
		{[]string{"--profile", "quectel-ec25", "--link", "/tmp/x", "--faults", "drop=2"}, "probability"},
		{[]string{"--profile", "quectel-ec25", "--link", "/tmp/x", "--sim", "gone"}, "valid states"},
	} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), tc.args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), tc.want)
		}
	}
	var out, errb bytes.Buffer
	run(t.Context(), []string{"--profile", "x", "--link", "/tmp/x"}, &out, &errb)
	if !strings.Contains(errb.String(), "quectel-ec25") {
		t.Errorf("unknown profile error does not list the valid ones: %q", errb.String())
	}
}

func TestServeUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB2")
	scen := filepath.Join(dir, "s.txt")
	if err := os.WriteFile(scen, []byte("0s signal 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := filepath.Join(dir, "transcript.log")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--profile", "simcom-sim7600", "--link", link, "--seed", "3", "--scenario", scen, "--transcript", tr, "--faults", "split=3"}, &bytes.Buffer{}, &errb)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Readlink(link); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("link not created")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	p, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	p.SetReadTimeout(50 * time.Millisecond)
	p.Write([]byte("AT+CGMR\r"))
	var got bytes.Buffer
	b := make([]byte, 128)
	for !strings.Contains(got.String(), "OK\r\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %q", got.String())
		}
		n, _ := p.Read(b)
		got.Write(b[:n])
	}
	p.Close()
	if !strings.Contains(got.String(), "+CGMR: LE20B04SIM7600G22") {
		t.Errorf("got %q", got.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link not removed: %v", err)
	}
	if data, _ := os.ReadFile(tr); !strings.Contains(string(data), "port0 < AT+CGMR") {
		t.Errorf("transcript file: %q", data)
	}
}
