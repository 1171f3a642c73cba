package attest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the signing key in the state directory.
const KeyFile = "signing.key"

// Key is the gateway's Ed25519 signing key.
type Key struct {
	priv ed25519.PrivateKey
	id   string
}

// NewKey wraps an Ed25519 private key (for tests and tools that hold a key
// in memory).
func NewKey(priv ed25519.PrivateKey) *Key {
	return &Key{priv: priv, id: KeyID(priv.Public().(ed25519.PublicKey))}
}

// Public returns the public half.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// ID returns the key id carried in every envelope (see KeyID).
func (k *Key) ID() string { return k.id }

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// KeyID derives the key id from a public key: the first 8 bytes of the
// SHA-256 of its raw 32 bytes, as 16 lowercase hex digits.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// EncodePublicKey returns the standard base64 of the raw 32-byte key, the
// form `modemguard pubkey` prints and enrollment files hold.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the base64 of a raw 32-byte Ed25519 public key
// (standard or URL alphabet, padded or not).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("attest: public key is not base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("attest: public key has %d bytes, want %d (base64 of the raw Ed25519 key, as `modemguard pubkey` prints it)", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// LoadKey reads the signing key from stateDir. It refuses a key file that
// its group or others can read. It does not create a key; see LoadOrCreateKey.
func LoadKey(stateDir string) (*Key, error) {
	path := filepath.Join(stateDir, KeyFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attest: signing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("attest: signing key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("attest: signing key %s can be read by group or others (mode %#o); run: chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("attest: signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("attest: signing key %s: no PEM \"PRIVATE KEY\" block; move the file away to generate a new key (the collector must then enroll the new public key)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("attest: signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("attest: signing key %s holds a %T, want an Ed25519 key", path, k)
	}
	return NewKey(priv), nil
}

// LoadOrCreateKey loads the signing key from stateDir, generating one (mode
// 0600, written durably) on first start. created reports a new key. The
// state directory is created with mode 0700 when missing.
func LoadOrCreateKey(stateDir string) (k *Key, created bool, err error) {
	k, err = LoadKey(stateDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("attest: state dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("attest: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("attest: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	path := filepath.Join(stateDir, KeyFile)
	// Link, not rename: never replace a key another process created meanwhile.
	if err := writeFileDurable(path, data, 0o600, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err = LoadKey(stateDir)
			return k, false, err
		}
		return nil, false, err
	}
	return NewKey(priv), true, nil
}
