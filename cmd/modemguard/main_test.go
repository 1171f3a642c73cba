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
		{[]string{"demo", "--modems", "nokia-3310"}, 2, "quectel-ec25"}, // the error lists the valid profiles
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

// TestDemo runs the demo against every default profile without the boot
// delays and checks each module was identified.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "demo", "--boot=false")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, name := range demoProfiles {
		if !strings.Contains(stdout, name+"     synced") && !strings.Contains(stdout, name) {
			t.Errorf("demo output lacks %s", name)
		}
	}
	for _, want := range []string{"Quectel", "SIMCOM", "Telit", "MANUFACTURER"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}
