package attest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// Envelope constants (docs/wire-format.md).
const (
	EnvelopeVersion = 1
	AlgEd25519      = "ed25519"
	// MaxBody is the largest report body a decoder accepts.
	MaxBody = 1 << 20
)

// ErrMalformed is returned (wrapped) for bytes that are not a well-formed
// envelope or report.
var ErrMalformed = errors.New("malformed")

// Seal signs body with k and returns the encoded envelope, appended to dst.
func Seal(dst []byte, k *Key, body []byte) ([]byte, error) {
	env := Envelope{V: EnvelopeVersion, Alg: AlgEd25519, Kid: k.ID(), Body: body, Sig: k.Sign(body)}
	return env.MarshalMsg(dst)
}

// DecodeEnvelope decodes one envelope that must fill msg exactly and checks
// its shape (version, algorithm, sizes). It does not check the signature.
// Body and Sig alias msg.
func DecodeEnvelope(msg []byte) (*Envelope, error) {
	env, rest, err := decodeEnvelope(msg)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("attest: envelope: %w: %d bytes after the envelope", ErrMalformed, len(rest))
	}
	return env, nil
}

// decodeEnvelope decodes the envelope at the start of msg and returns the
// bytes after it.
func decodeEnvelope(msg []byte) (*Envelope, []byte, error) {
	var env Envelope
	rest, err := env.UnmarshalMsg(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("attest: envelope: %w: %v", ErrMalformed, err)
	}
	switch {
	case env.V != EnvelopeVersion:
		return nil, nil, fmt.Errorf("attest: envelope: %w: version %d, this reader knows %d (upgrade modemguard)", ErrMalformed, env.V, EnvelopeVersion)
	case env.Alg != AlgEd25519:
		return nil, nil, fmt.Errorf("attest: envelope: %w: alg %q, want %q", ErrMalformed, env.Alg, AlgEd25519)
	case len(env.Sig) != ed25519.SignatureSize:
		return nil, nil, fmt.Errorf("attest: envelope: %w: sig has %d bytes, want %d", ErrMalformed, len(env.Sig), ed25519.SignatureSize)
	case len(env.Body) == 0:
		return nil, nil, fmt.Errorf("attest: envelope: %w: empty body", ErrMalformed)
	}
	return &env, rest, nil
}

// Check verifies the envelope's signature with pub and that its kid names
// pub. It returns an error wrapping ErrBadSignature or ErrUnknownKey.
func (e *Envelope) Check(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("attest: %w: public key has %d bytes", ErrUnknownKey, len(pub))
	}
	if kid := KeyID(pub); e.Kid != kid {
		return fmt.Errorf("attest: %w: envelope kid %q, the key's id is %q", ErrUnknownKey, e.Kid, kid)
	}
	if !ed25519.Verify(pub, e.Body, e.Sig) {
		return fmt.Errorf("attest: %w (kid %s)", ErrBadSignature, e.Kid)
	}
	return nil
}

// DecodeReport decodes a report body that must fill body exactly. Byte
// fields are copies; the report does not alias body.
func DecodeReport(body []byte) (*Report, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("attest: report: %w: body of %d bytes exceeds %d", ErrMalformed, len(body), MaxBody)
	}
	var r Report
	rest, err := r.UnmarshalMsg(body)
	if err != nil {
		return nil, fmt.Errorf("attest: report: %w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("attest: report: %w: %d bytes after the report", ErrMalformed, len(rest))
	}
	return &r, nil
}

// SplitStream splits a stream of envelopes written back to back (the framing
// of `modemguard verify` files and of `mosquitto_sub -N` output) into the
// raw bytes of each envelope. Each envelope's shape is checked.
func SplitStream(data []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(data); {
		_, rest, err := decodeEnvelope(data[off:])
		if err != nil {
			return out, fmt.Errorf("%w (envelope %d, at byte offset %d)", err, len(out)+1, off)
		}
		n := len(data) - off - len(rest)
		out = append(out, data[off:off+n:off+n])
		off += n
	}
	return out, nil
}
