package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/simulator"
)

// runPolicyCLI runs "modemguard policy ARGS" and maps the error to the exit
// status the way run does (0, 1, or 2 for a usage error).
func runPolicyCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runPolicy(context.Background(), args, &out, &errb)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		code = 0
	case errors.As(err, &ue):
		code = 2
	default:
		code = 1
	}
	if err != nil && code != 0 {
		errb.WriteString("modemguard policy: " + err.Error() + "\n")
	}
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheck(t *testing.T) {
	code, out, errs := runPolicyCLI(t, "check", "../../policy/testdata/issue5.yaml")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	want := "../../policy/testdata/issue5.yaml: ok: version 1; modules: 3 rules, default allow; network: 1 APN, 2 denied MCCs, roaming alert; " +
		"module stack: 1 allowed destination, default deny, fota deny, debug deny; egress: 2 allowed destinations over wwan*,ww*,ppp*,rmnet*; on_deny quarantine; sha256:"
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, want) {
		t.Errorf("summary\n%q\nwant prefix\n%q", out, want)
	}

	bad := writeFile(t, "bad.yaml", "version: 1\nmodules:\n  default: alow\nnetwork:\n  deny_mcc: [46]\nextra: 1\n")
	code, out, errs = runPolicyCLI(t, "check", bad)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != 1 || out != "" || len(lines) != 4 {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errs)
	}
	for i, w := range []string{
		bad + `:3:12: modules.default: want allow, alert or deny, got "alow" (did you mean "allow"?)`,
		bad + `:5:14: network.deny_mcc[0]: "46" is not a mobile country code`,
		bad + `:6:1: policy: unknown key "extra"`,
		"modemguard policy: " + bad + ": 3 problems",
	} {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q\nwant prefix %q", i, lines[i], w)
		}
	}

	code, _, errs = runPolicyCLI(t, "check", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
}

func TestPolicyUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inOutput string
	}{
		{nil, 2, "missing subcommand"},
		{[]string{"frob"}, 2, `unknown subcommand "frob"`},
		{[]string{"check"}, 2, "missing policy FILE"},
		{[]string{"check", "--bogus", "x"}, 2, "flag provided but not defined"},
		{[]string{"explain", "--policy", "x"}, 2, "--policy and one of --port or --facts are required"},
		{[]string{"explain", "--policy", "x", "--facts", "y", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--help"}, 0, "modemguard policy explain --policy FILE (--port PATH|auto | --facts FACTS.json)"},
		{[]string{"check", "--help"}, 0, "Usage: modemguard policy check FILE..."},
		{[]string{"explain", "--help"}, 0, "-facts FILE"},
	} {
		code, out, errs := runPolicyCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.inOutput) {
			t.Errorf("policy %q: exit %d, output %q; want exit %d and %q", tc.args, code, out+errs, tc.code, tc.inOutput)
		}
	}
}

func TestPolicyExplain(t *testing.T) {
	facts := writeFile(t, "facts.json", `{"vendor": "quectel", "manufacturer": "Quectel", "model": "EC25",
		"firmware": "EC25EFAR06A06M4G", "network": {"mcc": "460", "mnc": "00", "apn": "iot.example"}}`)
	code, out, errs := runPolicyCLI(t, "explain", "--policy", "../../policy/testdata/issue5.yaml", "--facts", facts)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, w := range []string{
		"verdict:    deny (on_deny: quarantine)",
		"decided by: rule old-ec25-firmware: vendor quectel is in [quectel], model EC25 matches EC25, firmware EC25EFAR06A06M4G is below EC25EFAR06A08M4G",
		"prc-origin         no match  origin unknown",
		"  deny  network.deny_mcc: registered on PLMN 46000, MCC 460 is in [460 461]",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("explain output lacks %q:\n%s", w, out)
		}
	}

	code, out, _ = runPolicyCLI(t, "explain", "--json", "--policy", "../../policy/testdata/issue5.yaml", "--facts", facts)
	var v struct {
		Verdict   string
		DecidedBy string `json:"decided_by"`
		Findings  []struct{ Rule string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.DecidedBy != "old-ec25-firmware" || len(v.Findings) != 2 {
		t.Errorf("--json: exit %d, %v, %+v\n%s", code, err, v, out)
	}

	// A broken policy: problems on stderr, the fail-closed verdict, exit 1.
	bad := writeFile(t, "bad.yaml", "version: 1\nmodules: {default: maybe}\n")
	code, out, errs = runPolicyCLI(t, "explain", "--policy", bad, "--facts", facts)
	if code != 1 || !strings.Contains(errs, bad+":2:20: modules.default") || !strings.Contains(out, "verdict:    deny") ||
		!strings.Contains(out, "fail-closed") || !strings.Contains(errs, "fail-closed") {
		t.Errorf("broken policy: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}

	// Facts with a typo are refused.
	typo := writeFile(t, "typo.json", `{"vendr": "quectel"}`)
	code, _, errs = runPolicyCLI(t, "explain", "--policy", "../../policy/testdata/issue5.yaml", "--facts", typo)
	if code != 1 || !strings.Contains(errs, `unknown field "vendr"`) {
		t.Errorf("facts typo: exit %d, %q", code, errs)
	}
}

func TestPolicyExplainLivePort(t *testing.T) {
	link, _ := servePTY(t, "huawei-me909s", simulator.Options{Seed: 2})
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nmodules:\n  rules:\n    - id: covered-list\n      when: {lists: [fcc-covered]}\n      action: deny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "policy", "explain", "--policy", pol, "--port", link)
	if code != 0 || !strings.Contains(stdout, "covered-list") || !strings.Contains(stdout, "deny") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}
