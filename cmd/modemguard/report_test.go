package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modemguard/modemguard/attest"
)

// reportChain issues n reports on a fresh chain and returns the state dir
// and the envelopes.
func reportChain(t *testing.T, n int) (dir string, key *attest.Key, envs [][]byte) {
	t.Helper()
	dir = t.TempDir()
	k, _, err := attest.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.OpenChain(dir, k, attest.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		is, err := c.Issue(attest.Report{GatewayID: "gw-0001", BootID: "b1", Verdict: "allow",
			Modules: []attest.Module{{Vendor: "quectel", IMEI: "86769804123456" + string(rune('0'+i%10))}}})
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, is.Envelope)
	}
	return dir, k, envs
}

func callReport(t *testing.T, fn func(context.Context, []string, io.Writer, io.Writer) error, stdin []byte, args ...string) (err error, stdout, stderr string) {
	t.Helper()
	old := reportStdin
	reportStdin = bytes.NewReader(stdin)
	defer func() { reportStdin = old }()
	var out, errb bytes.Buffer
	err = fn(context.Background(), args, &out, &errb)
	return err, out.String(), errb.String()
}

func writeStream(t *testing.T, envs ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reports.bin")
	if err := os.WriteFile(p, bytes.Join(envs, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonDocs(t *testing.T, s string) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var out []map[string]any
	for dec.More() {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("not a JSON stream: %v\n%s", err, s)
		}
		out = append(out, d)
	}
	return out
}

func TestPubkey(t *testing.T) {
	dir, k, _ := reportChain(t, 0)
	err, out, _ := callReport(t, runPubkey, nil, "--state-dir", dir)
	if err != nil || strings.TrimSpace(out) != attest.EncodePublicKey(k.Public()) {
		t.Fatalf("pubkey: %v %q", err, out)
	}
	empty := t.TempDir()
	if err, _, _ := callReport(t, runPubkey, nil, "--state-dir", empty); err == nil || !strings.Contains(err.Error(), "--create") {
		t.Errorf("no key yet: %v", err)
	}
	err, out, errOut := callReport(t, runPubkey, nil, "--state-dir", empty, "--create")
	if err != nil || len(strings.TrimSpace(out)) != 44 || !strings.Contains(errOut, "generated") {
		t.Errorf("--create: %v %q %q", err, out, errOut)
	}
	if err := os.Chmod(filepath.Join(dir, attest.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err, _, _ := callReport(t, runPubkey, nil, "--state-dir", dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	var ue *usageError
	if err, _, _ := callReport(t, runPubkey, nil); !errors.As(err, &ue) {
		t.Errorf("missing --state-dir: %v, want a usage error", err)
	}
}

func TestVerifyStream(t *testing.T) {
	dir, k, envs := reportChain(t, 3)
	pub := attest.EncodePublicKey(k.Public())
	stream := writeStream(t, envs...)
	err, out, errOut := callReport(t, runVerify, nil, "--pubkey", pub, stream)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	docs := jsonDocs(t, out)
	if len(docs) != 3 || docs[2]["seq"] != float64(3) || docs[0]["gateway_id"] != "gw-0001" {
		t.Fatalf("output: %s", out)
	}
	if len(docs[1]["prev_hash"].(string)) != 64 {
		t.Errorf("prev_hash not hex: %v", docs[1]["prev_hash"])
	}
	if !strings.Contains(errOut, "3 envelopes: signatures and chain OK") {
		t.Errorf("stderr %q", errOut)
	}
	// Key from a file, an enrollment-style line; stdin; flags after the file.
	keyFile := filepath.Join(t.TempDir(), "gw.key")
	os.WriteFile(keyFile, []byte("# enrolled\ngw-0001 "+pub+"\n"), 0o644)
	if err, out, _ := callReport(t, runVerify, bytes.Join(envs, nil), "-", "--pubkey", keyFile); err != nil || len(jsonDocs(t, out)) != 3 {
		t.Errorf("stdin + key file: %v", err)
	}
	// Across files: one chain. Duplicates are noted, not failures.
	a, b := writeStream(t, envs[0], envs[1]), writeStream(t, envs[1], envs[2])
	err, out, errOut = callReport(t, runVerify, nil, "--pubkey", pub, a, b)
	if err != nil || len(jsonDocs(t, out)) != 3 || !strings.Contains(errOut, "duplicate") {
		t.Errorf("two files with an overlap: %v %q", err, errOut)
	}
	_ = dir
}

func TestVerifyFailures(t *testing.T) {
	_, k, envs := reportChain(t, 4)
	pub := attest.EncodePublicKey(k.Public())
	bad := append([]byte(nil), envs[1]...)
	bad[len(bad)-1] ^= 1
	_, other, _ := reportChain(t, 0)
	for name, tc := range map[string]struct {
		stream []byte
		key    string
		want   []string
	}{
		"gap":           {bytes.Join([][]byte{envs[0], envs[2]}, nil), pub, []string{"seq 2", "gap", "1 of 2 envelopes failed: 1 gap"}},
		"bad signature": {bytes.Join([][]byte{envs[0], bad}, nil), pub, []string{"envelope 2", "bad signature"}},
		"wrong key":     {envs[0], attest.EncodePublicKey(other.Public()), []string{"unknown key"}},
		"out of order":  {bytes.Join([][]byte{envs[0], envs[1], envs[3], envs[2]}, nil), pub, []string{"gap", "out of order"}},
		"garbage tail":  {append(append([]byte{}, envs[0]...), 0xc1, 0x00), pub, []string{"malformed"}},
	} {
		t.Run(name, func(t *testing.T) {
			err, _, errOut := callReport(t, runVerify, tc.stream, "--pubkey", tc.key)
			if err == nil {
				t.Fatal("verify succeeded")
			}
			var ue *usageError
			if errors.As(err, &ue) {
				t.Fatalf("a failed verification must exit 1, not 2: %v", err)
			}
			all := err.Error() + "\n" + errOut
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
	var ue *usageError
	if err, _, _ := callReport(t, runVerify, nil); !errors.As(err, &ue) {
		t.Errorf("no --pubkey: %v", err)
	}
	if err, _, _ := callReport(t, runVerify, nil, "--pubkey", "nonsense"); !errors.As(err, &ue) {
		t.Errorf("bad --pubkey: %v", err)
	}
	if err, _, _ := callReport(t, runVerify, nil, "--pubkey", pub); err == nil || !strings.Contains(err.Error(), "no envelopes") {
		t.Errorf("empty input: %v", err)
	}
}

func TestReportDecode(t *testing.T) {
	_, k, envs := reportChain(t, 2)
	err, out, _ := callReport(t, runReportDecode, bytes.Join(envs, nil))
	if err != nil {
		t.Fatal(err)
	}
	docs := jsonDocs(t, out)
	if len(docs) != 2 {
		t.Fatalf("%d documents:\n%s", len(docs), out)
	}
	body := docs[1]["body"].(map[string]any)
	if docs[1]["kid"] != k.ID() || docs[1]["alg"] != "ed25519" || body["seq"] != float64(2) || len(docs[1]["sig"].(string)) != 128 {
		t.Errorf("decoded %v", docs[1])
	}
	if err, _, _ := callReport(t, runReportDecode, []byte("not msgpack")); err == nil {
		t.Error("garbage decoded")
	}
	if err, _, _ := callReport(t, runReportDecode, nil, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
