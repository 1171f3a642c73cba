package attest

//go:generate go tool msgp -tests=false

// Decoding limits: a body (a bin) of at most 1 MiB, at most 16 keys.
//msgp:limit arrays:1048576 maps:16

// Envelope is the published message: the report body and its signature.
// Sig is Ed25519 over exactly Body; Body is decoded only as a Report.
type Envelope struct {
	V    uint64 `msg:"v" json:"v"`     // envelope version, 1
	Alg  string `msg:"alg" json:"alg"` // "ed25519"
	Kid  string `msg:"kid" json:"kid"` // key id, see KeyID
	Body []byte `msg:"body" json:"body"`
	Sig  []byte `msg:"sig" json:"sig"`
}
