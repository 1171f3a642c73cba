package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func goldenEnvelope(f *testing.F) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "envelope-v1.hex"))
	if err != nil {
		f.Fatal(err)
	}
	env, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		f.Fatal(err)
	}
	return env
}

// FuzzDecodeEnvelope: no input panics or allocates without bound; whatever
// decodes converts to valid JSON and re-encodes to the same bytes.
func FuzzDecodeEnvelope(f *testing.F) {
	env := goldenEnvelope(f)
	f.Add(env)
	f.Add(env[:len(env)/2])
	f.Add([]byte{0x85, 0xa1, 'v', 0x01})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	k := testKey(3)
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := DecodeEnvelope(msg)
		if err != nil {
			return
		}
		_ = e.Check(k.Public())
		again, err := e.MarshalMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := DecodeEnvelope(again)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoded envelope does not decode the same: %v", err)
		}
		if j, err := EnvelopeJSON(e); err == nil && !json.Valid(j) {
			t.Fatalf("invalid JSON: %s", j)
		}
		_, _ = DecodeReport(e.Body)
	})
}

// FuzzDecodeReport: no panic; a decoded report re-encodes and decodes equal;
// BodyJSON of any input is either an error or valid JSON.
func FuzzDecodeReport(f *testing.F) {
	r := sampleReport()
	r.Seq, r.PrevHash = 1, make(Bytes, 32)
	body, _ := r.MarshalMsg(nil)
	f.Add(body)
	f.Add(body[:40])
	f.Add([]byte{0x81, 0xa7, 'm', 'o', 'd', 'u', 'l', 'e', 's', 0xdd, 0x00, 0x98, 0x96, 0x80})
	f.Add([]byte{0x91, 0x91, 0x91, 0x91, 0xc0})
	f.Fuzz(func(t *testing.T, body []byte) {
		if j, err := BodyJSON(body); err == nil && !json.Valid(j) {
			t.Fatalf("BodyJSON gave invalid JSON: %s", j)
		}
		rep, err := DecodeReport(body)
		if err != nil {
			return
		}
		again, err := rep.MarshalMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		rep2, err := DecodeReport(again)
		if err != nil {
			t.Fatal(err)
		}
		again2, _ := rep2.MarshalMsg(nil)
		if !bytes.Equal(again, again2) {
			t.Fatal("encoding is not stable across a round trip")
		}
	})
}
