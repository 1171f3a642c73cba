package attest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
)

func TestVerifierChain(t *testing.T) {
	k := testKey(1)
	c := newChain(t, k)
	is := issueN(t, c, 8)
	// A fork: the same key, a second chain, a different report at seq 1..2.
	other := newChain(t, k)
	r := sampleReport()
	r.Verdict = "deny"
	fork1, _ := other.Issue(r)

	type step struct {
		env  []byte
		want error // nil: accepted cleanly
	}
	steps := []step{
		{is[0].Envelope, nil},
		{is[1].Envelope, nil},
		{is[1].Envelope, ErrReplay},
		{fork1.Envelope, ErrFork},       // seq 1 again, other body
		{is[3].Envelope, ErrGap},        // 3 missing
		{is[2].Envelope, ErrOutOfOrder}, // fills the gap, links check out
		{is[4].Envelope, nil},
		{is[6].Envelope, ErrGap},
		{is[7].Envelope, nil},
		{is[6].Envelope, ErrReplay},
	}
	v := NewVerifier(VerifierConfig{Keys: StaticKey(k.Public())})
	for i, s := range steps {
		got, err := v.Verify(s.env)
		if got == nil {
			t.Fatalf("step %d: no report returned (err %v)", i, err)
		}
		if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
			t.Errorf("step %d (seq %d): err %v, want %v", i, got.Report.Seq, err, s.want)
		}
		var ve *VerifyError
		if err != nil && (!errors.As(err, &ve) || ve.GatewayID != "gw-0001" || ve.Seq != got.Report.Seq) {
			t.Errorf("step %d: error %v is not a *VerifyError naming gateway and seq", i, err)
		}
	}
	if seq, hash, _ := v.Head("gw-0001"); seq != 8 || hash != is[7].Hash {
		t.Errorf("head %d", seq)
	}
}

func TestVerifierBrokenChain(t *testing.T) {
	k := testKey(1)
	a := issueN(t, newChain(t, k), 2)
	bc := newChain(t, k) // a different history under the same key
	var b []*Issued
	for range 3 {
		r := sampleReport()
		r.BootID = "another-boot"
		x, err := bc.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, x)
	}
	v := NewVerifier(VerifierConfig{Keys: StaticKey(k.Public())})
	if _, err := v.Verify(a[1].Envelope); err != nil { // start mid-stream: fine
		t.Fatal(err)
	}
	if _, err := v.Verify(b[2].Envelope); !errors.Is(err, ErrBrokenChain) {
		t.Fatalf("err %v, want ErrBrokenChain", err)
	}
	// seq 1 with a non-zero prev_hash.
	r := sampleReport()
	r.Seq, r.PrevHash = 1, make(Bytes, 32)
	r.PrevHash[0] = 1
	body, _ := r.MarshalMsg(nil)
	env, _ := Seal(nil, k, body)
	if _, err := NewVerifier(VerifierConfig{Keys: StaticKey(k.Public())}).Verify(env); !errors.Is(err, ErrBrokenChain) {
		t.Fatalf("seq 1, prev_hash not zero: %v", err)
	}
}

func TestVerifierSetHead(t *testing.T) {
	k := testKey(1)
	is := issueN(t, newChain(t, k), 3)
	v := NewVerifier(VerifierConfig{Keys: StaticKey(k.Public())})
	v.SetHead("gw-0001", 1, is[0].Hash)
	if _, err := v.Verify(is[1].Envelope); err != nil {
		t.Fatal(err)
	}
	v.SetHead("gw-0001", 2, [32]byte{9})
	if _, err := v.Verify(is[2].Envelope); !errors.Is(err, ErrBrokenChain) {
		t.Fatalf("err %v, want ErrBrokenChain", err)
	}
}

func TestVerifierSignatures(t *testing.T) {
	k := testKey(1)
	is := issueN(t, newChain(t, k), 1)[0]
	bad := append([]byte(nil), is.Envelope...)
	bad[len(bad)-1] ^= 1 // last byte of sig
	v := NewVerifier(VerifierConfig{Keys: StaticKey(k.Public())})
	if got, err := v.Verify(bad); !errors.Is(err, ErrBadSignature) || got != nil {
		t.Fatalf("flipped sig bit: %v", err)
	}
	// The body changed after signing (same length): bad signature.
	tampered := append([]byte(nil), is.Envelope...)
	i := indexOf(tampered, []byte("alert"))
	copy(tampered[i:], "allow")
	if _, err := v.Verify(tampered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	other := testKey(2)
	v2 := NewVerifier(VerifierConfig{Keys: StaticKey(other.Public())})
	if _, err := v2.Verify(is.Envelope); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("other key: %v", err)
	}
	v3 := NewVerifier(VerifierConfig{Keys: func(gw, kid string) (ed25519.PublicKey, error) {
		return nil, fmt.Errorf("gateway %s is not enrolled", gw)
	}})
	if _, err := v3.Verify(is.Envelope); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unenrolled: %v", err)
	}
	if _, err := v.Verify(is.Envelope); err != nil {
		t.Fatalf("bad attempts must not disturb the chain: %v", err)
	}
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	panic("not found")
}
