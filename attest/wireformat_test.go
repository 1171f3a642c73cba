package attest

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonExample extracts the Python block of docs/wire-format.md.
func pythonExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "wire-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "```python\n")
	if !ok {
		t.Fatal("docs/wire-format.md has no ```python block")
	}
	code, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("unterminated python block")
	}
	return code
}

// TestPythonExample runs the documented Python decoder on two golden
// envelopes back to back, with signature verification when
// python3-cryptography is there too. Debian's /usr/bin/python3 is used:
// python3-msgpack installs for it, not for other pythons on PATH.
func TestPythonExample(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import msgpack").Run(); err != nil {
		t.Skipf("skipping: %s cannot import msgpack (%v); apt-get install python3-msgpack to run the docs/wire-format.md example", py, err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "decode.py")
	if err := os.WriteFile(script, []byte(pythonExample(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "envelope-v1.hex"))
	env, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	stream := filepath.Join(dir, "reports.bin")
	if err := os.WriteFile(stream, append(append([]byte{}, env...), env...), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{script, stream}
	if exec.Command(py, "-c", "import cryptography.hazmat.primitives.asymmetric.ed25519").Run() == nil {
		pub, _ := os.ReadFile(filepath.Join("testdata", "envelope-v1.pubkey"))
		args = append(args, strings.TrimSpace(string(pub)))
	} else {
		t.Log("python3-cryptography missing: checking decoding only")
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("python example failed: %v\n%s", err, out)
	}
	// Two JSON documents, one per envelope.
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var docs []map[string]any
	for dec.More() {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		docs = append(docs, d)
	}
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2:\n%s", len(docs), out)
	}
	parsed, _ := DecodeEnvelope(env)
	want, _ := DecodeReport(parsed.Body)
	r := docs[0]["report"].(map[string]any)
	if r["gateway_id"] != want.GatewayID || r["seq"] != float64(want.Seq) || r["nonce"] != hex.EncodeToString(want.Nonce) {
		t.Errorf("python decoded %v", r)
	}
	mods := r["modules"].([]any)
	if m := mods[0].(map[string]any); m["imei"] != want.Modules[0].IMEI || m["usb"].(map[string]any)["vid"] != "2c7c" {
		t.Errorf("module %v", m)
	}
	if docs[0]["kid"] != parsed.Kid {
		t.Errorf("kid %v", docs[0]["kid"])
	}
	t.Logf("python3 decoded the golden envelope (verified: %v)", docs[0]["verified"])
}
