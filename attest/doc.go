// Package attest makes and checks modemguard's attestation reports: the
// report model, its MessagePack encoding, Ed25519 signing, the seq/prev_hash
// hash chain and verification. It does no network I/O; uplink/ carries the
// envelopes and collector/ verifies them with the Verifier here.
//
// # Wire format
//
// A Report is encoded by code that tinylib/msgp generates from report.go
// (go generate ./attest): a MessagePack map with string keys, the same names
// as `modemguard scan --json`, so older readers skip keys added later. The
// published message is an Envelope map
//
//	{v: 1, alg: "ed25519", kid: <key id>, body: <bin: the report>, sig: <bin: Ed25519 over exactly body>}
//
// Verifiers check sig over the body bytes as received and never re-encode.
// The report holds no Go maps, so one report always encodes to the same
// bytes. docs/wire-format.md is the reference, with a Python decoder.
//
// # Keys and the chain
//
// LoadOrCreateKey keeps the Ed25519 key in the state directory (signing.key,
// PKCS#8 PEM, mode 0600; a key readable by group or others is refused).
// KeyID is the first 8 bytes of SHA-256 of the raw public key, in hex.
//
// A Chain owns the head of the gateway's report chain: Issue gives each
// report seq = head+1 and prev_hash = SHA-256 of the previous body, signs it
// and records the new head in chain.json (temporary file, fsync, rename,
// fsync of the directory) before returning, so a seq is never issued twice
// across crashes and reboots. The caller (agent/) then commits the envelope
// to uplink's outbox.
//
// Report times come from a Clock: boards without a real-time clock boot at
// 1970, so the agent calls Clock.Wait with a timeout before its first
// report and reports clock_synced: false if the clock never became sane.
//
// # Verification
//
// A Verifier checks signatures (through a KeyFunc: one key for the CLI, an
// enrollment store for the collector) and the chain per gateway, and tells
// apart ErrBadSignature, ErrUnknownKey, ErrGap, ErrReplay, ErrFork,
// ErrOutOfOrder and ErrBrokenChain through a *VerifyError.
package attest
