package attest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
)

// Verification outcomes, wrapped in a *VerifyError (or, for ErrMalformed,
// ErrUnknownKey and ErrBadSignature, in a plain error when no report could be
// attributed). Callers branch with errors.Is.
var (
	ErrUnknownKey   = errors.New("unknown key")
	ErrBadSignature = errors.New("bad signature")
	// ErrGap: seq jumped past head+1; the reports in between are missing.
	ErrGap = errors.New("gap")
	// ErrReplay: this exact report (same seq, same body) was seen before.
	ErrReplay = errors.New("replay")
	// ErrFork: a different report with the same seq was seen before.
	ErrFork = errors.New("fork")
	// ErrOutOfOrder: an older seq arrived after a newer one.
	ErrOutOfOrder = errors.New("out of order")
	// ErrBrokenChain: prev_hash does not name the previous report's body.
	ErrBrokenChain = errors.New("broken chain")
)

// VerifyError says what is wrong with one report.
type VerifyError struct {
	GatewayID string
	Seq       uint64
	Err       error // one of the sentinels above
	Detail    string
}

func (e *VerifyError) Error() string {
	s := fmt.Sprintf("attest: gateway %q seq %d: %v", e.GatewayID, e.Seq, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Err }

// KeyFunc returns the public key a gateway signs with. kid is the envelope's
// key id, for stores that hold several keys per gateway.
type KeyFunc func(gatewayID, kid string) (ed25519.PublicKey, error)

// StaticKey is a KeyFunc that trusts one key for every gateway.
func StaticKey(pub ed25519.PublicKey) KeyFunc {
	return func(string, string) (ed25519.PublicKey, error) { return pub, nil }
}

// VerifierConfig configures a Verifier. Keys is required.
type VerifierConfig struct {
	Keys KeyFunc
	// History is how many recent reports per gateway are remembered to tell
	// replays and forks from late arrivals, and how many missing seqs are
	// remembered. Default 1024.
	History int
}

// Verifier checks envelopes: shape, signature, and per gateway the seq and
// prev_hash chain. It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig

	mu  sync.Mutex        // guards gws
	gws map[string]*track // by gateway id
}

// track is the chain state of one gateway.
type track struct {
	head     uint64
	headHash [32]byte
	seen     map[uint64]link // recent reports, evicted oldest-first
	order    []uint64        // insertion order of seen
	missing  map[uint64]bool // seqs skipped by a gap, not yet arrived
	missOrd  []uint64
}

type link struct{ hash, prev [32]byte }

// Verified is a report whose signature checked out.
type Verified struct {
	Envelope *Envelope
	Report   *Report
	Hash     [32]byte // SHA-256 of the body
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.History <= 0 {
		cfg.History = 1024
	}
	return &Verifier{cfg: cfg, gws: make(map[string]*track)}
}

// SetHead tells the verifier the last accepted report of a gateway, e.g.
// from a database after a restart; the next report must follow it.
func (v *Verifier) SetHead(gatewayID string, seq uint64, hash [32]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.newTrack()
	t.head, t.headHash = seq, hash
	v.gws[gatewayID] = t
}

// Head returns the highest seq accepted for a gateway and its body hash.
func (v *Verifier) Head(gatewayID string) (seq uint64, hash [32]byte, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.gws[gatewayID]
	if t == nil {
		return 0, hash, false
	}
	return t.head, t.headHash, true
}

func (v *Verifier) newTrack() *track {
	return &track{seen: make(map[uint64]link), missing: make(map[uint64]bool)}
}

// Verify checks one envelope. When the signature is good it returns the
// report even if the chain check fails, so callers can record what arrived;
// the error is then a *VerifyError. The first report of an unknown gateway
// starts its chain wherever it is (seq 1 must carry a zero prev_hash).
func (v *Verifier) Verify(msg []byte) (*Verified, error) {
	env, err := DecodeEnvelope(msg)
	if err != nil {
		return nil, err
	}
	r, err := DecodeReport(env.Body)
	if err != nil {
		return nil, err
	}
	if r.GatewayID == "" || len(r.PrevHash) != 32 || r.Seq == 0 {
		return nil, &VerifyError{GatewayID: r.GatewayID, Seq: r.Seq, Err: ErrMalformed,
			Detail: fmt.Sprintf("want a gateway_id, seq >= 1 and a 32-byte prev_hash (got %d bytes)", len(r.PrevHash))}
	}
	if v.cfg.Keys == nil {
		return nil, errors.New("attest: verifier: no Keys configured")
	}
	pub, err := v.cfg.Keys(r.GatewayID, env.Kid)
	if err != nil {
		return nil, &VerifyError{GatewayID: r.GatewayID, Seq: r.Seq, Err: ErrUnknownKey, Detail: err.Error()}
	}
	if err := env.Check(pub); err != nil {
		kind := ErrBadSignature
		if errors.Is(err, ErrUnknownKey) {
			kind = ErrUnknownKey
		}
		return nil, &VerifyError{GatewayID: r.GatewayID, Seq: r.Seq, Err: kind, Detail: err.Error()}
	}
	out := &Verified{Envelope: env, Report: r, Hash: sha256.Sum256(env.Body)}
	var prev [32]byte
	copy(prev[:], r.PrevHash)

	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.gws[r.GatewayID]
	if t == nil {
		t = v.newTrack()
		v.gws[r.GatewayID] = t
		t.head, t.headHash = r.Seq, out.Hash
		v.remember(t, r.Seq, link{out.Hash, prev})
		if r.Seq == 1 && prev != ([32]byte{}) {
			return out, verr(r, ErrBrokenChain, "seq 1 must carry a zero prev_hash")
		}
		return out, nil
	}
	if l, ok := t.seen[r.Seq]; ok {
		if l.hash == out.Hash {
			return out, verr(r, ErrReplay, "this report was already received")
		}
		return out, verr(r, ErrFork, fmt.Sprintf("another report with this seq was received (body sha256 %x…, now %x…)", l.hash[:6], out.Hash[:6]))
	}
	switch {
	case r.Seq == t.head+1:
		want := t.headHash
		t.head, t.headHash = r.Seq, out.Hash
		v.remember(t, r.Seq, link{out.Hash, prev})
		if prev != want {
			return out, verr(r, ErrBrokenChain, fmt.Sprintf("prev_hash %x… does not name report %d (body sha256 %x…)", prev[:6], r.Seq-1, want[:6]))
		}
		return out, nil
	case r.Seq > t.head+1:
		from := t.head + 1
		lo := from
		if r.Seq-from > uint64(v.cfg.History) {
			lo = r.Seq - uint64(v.cfg.History)
		}
		for s := lo; s < r.Seq; s++ {
			v.markMissing(t, s)
		}
		t.head, t.headHash = r.Seq, out.Hash
		v.remember(t, r.Seq, link{out.Hash, prev})
		n := r.Seq - from
		return out, verr(r, ErrGap, fmt.Sprintf("%d report(s) missing: seq %d..%d", n, from, r.Seq-1))
	}
	// r.Seq < t.head, not seen recently.
	if !t.missing[r.Seq] {
		return out, verr(r, ErrOutOfOrder, fmt.Sprintf("seq %d arrived after seq %d and is older than this verifier remembers (a late duplicate or a replay)", r.Seq, t.head))
	}
	delete(t.missing, r.Seq)
	v.remember(t, r.Seq, link{out.Hash, prev})
	if l, ok := t.seen[r.Seq-1]; ok && l.hash != prev {
		return out, verr(r, ErrBrokenChain, fmt.Sprintf("late report: prev_hash does not name report %d", r.Seq-1))
	}
	if l, ok := t.seen[r.Seq+1]; ok && l.prev != out.Hash {
		return out, verr(r, ErrBrokenChain, fmt.Sprintf("late report: report %d does not name it as its predecessor", r.Seq+1))
	}
	return out, verr(r, ErrOutOfOrder, fmt.Sprintf("seq %d arrived after seq %d; it fills a gap", r.Seq, t.head))
}

func verr(r *Report, kind error, detail string) *VerifyError {
	return &VerifyError{GatewayID: r.GatewayID, Seq: r.Seq, Err: kind, Detail: detail}
}

func (v *Verifier) remember(t *track, seq uint64, l link) {
	t.seen[seq] = l
	t.order = append(t.order, seq)
	for len(t.order) > v.cfg.History {
		delete(t.seen, t.order[0])
		t.order = t.order[1:]
	}
}

func (v *Verifier) markMissing(t *track, seq uint64) {
	t.missing[seq] = true
	t.missOrd = append(t.missOrd, seq)
	for len(t.missOrd) > v.cfg.History {
		delete(t.missing, t.missOrd[0])
		t.missOrd = t.missOrd[1:]
	}
}
