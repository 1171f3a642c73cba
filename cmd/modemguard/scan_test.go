package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/simulator"
)

// servePTY serves a simulated module on a real pty, as modemsim does, and
// returns the stable link to it.
func servePTY(t *testing.T, profile string, opts simulator.Options) (string, *simulator.Modem) {
	t.Helper()
	p, err := simulator.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(p, opts)
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(t.TempDir(), "ttyUSB2")
	if _, err := sim.ServePTY(ctx, simulator.PTYOptions{Link: link}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		sim.Close()
	})
	return link, sim
}

// TestScanJSONOverPTY scans a simulated module through a real pty and
// go.bug.st/serial, exactly as on a gateway.
func TestScanJSONOverPTY(t *testing.T) {
	link, sim := servePTY(t, "quectel-ec25", simulator.Options{Seed: 11})
	code, stdout, stderr := runCLI(t, "scan", "--port", link, "--json", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m modem.Module
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, stdout)
	}
	if m.IMEI != sim.IMEI() || m.Vendor != "quectel" || m.OriginCountry != "CN" || m.Port != link {
		t.Errorf("scan = %+v", m)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"manufacturer", "model", "firmware", "firmware_detail", "imei", "imsi", "iccid",
		"vendor", "origin_country", "lists", "usb", "network", "findings"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	for _, k := range []string{"operator", "rat", "registered", "roaming", "apn", "signal"} {
		if _, ok := raw["network"].(map[string]any)[k]; !ok {
			t.Errorf("JSON network lacks %q", k)
		}
	}
}

func TestScanHumanOutput(t *testing.T) {
	link, _ := servePTY(t, "huawei-me909s", simulator.Options{Seed: 2})
	code, stdout, stderr := runCLI(t, "scan", "--port", link)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Huawei Technologies Co., Ltd. (huawei)", "origin", "CN", "fcc-covered", "ME909s-120"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestScanErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"scan", "--port", filepath.Join(dir, "nope")}, 1, "no such port"},
		{[]string{"scan", "--port", "/dev/null", "--timeout", "2s"}, 1, "/dev/null"},
		{[]string{"scan", "--baud", "0"}, 2, "--baud 0"},
		{[]string{"scan", "--vendors", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestScanPolicyVerdict(t *testing.T) {
	link, _ := servePTY(t, "huawei-me909s", simulator.Options{Seed: 2})
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(`version: 1
modules:
  default: allow
  rules:
    - id: covered-list
      when: {lists: [fcc-covered]}
      action: deny
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "scan", "--port", link, "--json", "--policy", pol)
	if code != 3 {
		t.Fatalf("exit %d, want 3 (denied): %s", code, stderr)
	}
	var m modem.Module
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.Verdict != "deny" {
		t.Errorf("verdict %q, want deny", m.Verdict)
	}
	found := false
	for _, f := range m.Findings {
		found = found || (f.ID == "policy:covered-list" && f.Severity == modem.SeverityHigh)
	}
	if !found {
		t.Errorf("findings %+v lack the deciding rule", m.Findings)
	}
}
