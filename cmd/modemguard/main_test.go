package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{nil, 2, "Commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"version", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"version", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"demo", "--interval", "10ms"}, 2, "--interval 10ms"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
			t.Errorf("modemguard %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.inStderr)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, stdout, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(stdout, c.name) {
			t.Errorf("help lacks %s", c.name)
		}
		if code, _, _ := runCLI(t, c.name, "--help"); code != 0 {
			t.Errorf("%s --help: exit %d", c.name, code)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "modemguard dev (go") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

// TestDemo runs the whole demo for a few seconds: reports must arrive,
// verify, and show the three outcomes.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "demo", "--duration", "5s")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"report #1 from demo-gw-01", "signature ok, chain ok", "ALLOW (modules.default)",
		"ALERT (prc-origin)", "DENY (covered-list)", "quarantined", "AT firewall deny AT+QIOPEN", "+CME ERROR: 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "REJECTED") {
		t.Errorf("a report did not verify:\n%s", stdout)
	}
}
