package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestIssueRoundTrip(t *testing.T) {
	k := testKey(1)
	c := newChain(t, k)
	is := issueN(t, c, 2)
	env, err := DecodeEnvelope(is[1].Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Check(k.Public()); err != nil {
		t.Fatal(err)
	}
	if env.Kid != k.ID() || len(env.Kid) != 16 {
		t.Errorf("kid %q, want %q (16 hex digits)", env.Kid, k.ID())
	}
	r, err := DecodeReport(env.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, is[1].Report) {
		t.Errorf("decoded report differs:\n got %+v\nwant %+v", *r, is[1].Report)
	}
	if r.Seq != 2 || !bytes.Equal(r.PrevHash, is[0].Hash[:]) {
		t.Errorf("seq %d prev %x, want 2 and %x", r.Seq, r.PrevHash, is[0].Hash)
	}
	if is[0].Report.Seq != 1 || !bytes.Equal(is[0].Report.PrevHash, make([]byte, 32)) {
		t.Errorf("first report: seq %d prev %x, want 1 and zeros", is[0].Report.Seq, is[0].Report.PrevHash)
	}
	if sha256.Sum256(env.Body) != is[1].Hash {
		t.Error("Issued.Hash is not the SHA-256 of the body")
	}
}

func TestIssueStampsTime(t *testing.T) {
	c, err := OpenChain(t.TempDir(), testKey(1), ChainConfig{Clock: Clock{Now: func() time.Time { return time.UnixMilli(42) }}})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleReport()
	r.TimeMS, r.ClockSynced = 0, true
	is, err := c.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	if is.Report.TimeMS != 42 || is.Report.ClockSynced {
		t.Errorf("time_ms %d clock_synced %v, want 42 and false (1970 is not a sane clock)", is.Report.TimeMS, is.Report.ClockSynced)
	}
}

// TestGolden freezes the wire format: a change to report.go that changes
// the bytes of a v1 report fails here. Run with -update only for additions
// that docs/wire-format.md describes.
func TestGolden(t *testing.T) {
	k := testKey(7)
	r := sampleReport()
	r.Seq = 1
	r.PrevHash = make(Bytes, 32)
	r.Nonce = Bytes("0123456789abcdef")
	body, err := r.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(nil, k, body)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "envelope-v1.hex")
	if *update {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(env)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "envelope-v1.pubkey"), []byte(EncodePublicKey(k.Public())+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(env); got != strings.TrimSpace(string(want)) {
		t.Fatalf("envelope bytes changed: the v1 wire format must stay stable (add fields only; see docs/wire-format.md)\n got %s\nwant %s", got, want)
	}
}

func TestForwardCompatibleUnknownKeys(t *testing.T) {
	r := sampleReport()
	r.Seq, r.PrevHash = 5, make(Bytes, 32)
	body, err := r.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if body[0] != 0x80|11 { // fixmap, 11 keys (nonce omitted)
		t.Fatalf("report header %#x, want fixmap of 11", body[0])
	}
	// A newer writer added a key: bump the map size and append it.
	newer := append([]byte{0x80 | 12}, body[1:]...)
	newer = append(newer, 0xa5, 'f', 'u', 't', 'u', 'r')
	newer = append(newer, 0x93, 1, 2, 3)
	got, err := DecodeReport(newer)
	if err != nil {
		t.Fatalf("an older reader must skip unknown keys: %v", err)
	}
	if got.Seq != 5 || got.GatewayID != r.GatewayID || len(got.Modules) != 1 {
		t.Errorf("decoded %+v", got)
	}
	j, err := BodyJSON(newer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"futur":[1,2,3]`) {
		t.Errorf("BodyJSON lost the unknown key: %s", j)
	}
}

func TestBodyJSONMatchesStructJSON(t *testing.T) {
	r := sampleReport()
	r.Seq, r.PrevHash, r.Nonce = 3, make(Bytes, 32), Bytes{1, 2, 3, 4, 5, 6, 7, 8}
	body, _ := r.MarshalMsg(nil)
	generic, err := BodyJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	typed, _ := json.Marshal(r)
	var a, b any
	if err := json.Unmarshal(generic, &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(typed, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("BodyJSON and encoding/json disagree:\n%s\n%s", generic, typed)
	}
	var back Report
	if err := json.Unmarshal(typed, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("JSON round trip: %v\n%+v", err, back)
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	k := testKey(1)
	good, _ := Seal(nil, k, []byte{0x80})
	for name, msg := range map[string][]byte{
		"empty":            nil,
		"trailing":         append(append([]byte{}, good...), 0xc0),
		"truncated":        good[:len(good)-3],
		"not a map":        {0x93, 1, 2, 3},
		"huge array claim": {0xdd, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := DecodeEnvelope(msg); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	for name, env := range map[string]Envelope{
		"version 2": {V: 2, Alg: AlgEd25519, Kid: k.ID(), Body: []byte{0x80}, Sig: make([]byte, 64)},
		"alg":       {V: 1, Alg: "rsa", Kid: k.ID(), Body: []byte{0x80}, Sig: make([]byte, 64)},
		"short sig": {V: 1, Alg: AlgEd25519, Kid: k.ID(), Body: []byte{0x80}, Sig: make([]byte, 63)},
		"no body":   {V: 1, Alg: AlgEd25519, Kid: k.ID(), Sig: make([]byte, 64)},
	} {
		b, _ := env.MarshalMsg(nil)
		if _, err := DecodeEnvelope(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestReportDecodeLimits(t *testing.T) {
	// modules claims 10 million elements in a few bytes: refused before allocating.
	msg := []byte{0x81, 0xa7, 'm', 'o', 'd', 'u', 'l', 'e', 's', 0xdd, 0x00, 0x98, 0x96, 0x80}
	if _, err := DecodeReport(msg); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
}

func TestSplitStream(t *testing.T) {
	c := newChain(t, testKey(1))
	is := issueN(t, c, 3)
	var stream []byte
	for _, x := range is {
		stream = append(stream, x.Envelope...)
	}
	parts, err := SplitStream(stream)
	if err != nil || len(parts) != 3 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	for i, p := range parts {
		if !bytes.Equal(p, is[i].Envelope) {
			t.Errorf("part %d differs", i)
		}
	}
	_, err = SplitStream(append(stream, 0x01))
	if err == nil || !strings.Contains(err.Error(), "envelope 4") {
		t.Errorf("trailing garbage: %v, want an error naming envelope 4", err)
	}
}
