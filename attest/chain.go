package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// ChainFile is the name of the chain state in the state directory.
const ChainFile = "chain.json"

// ChainConfig configures a Chain. The zero value works.
type ChainConfig struct {
	// Clock stamps reports whose TimeMS is zero. Zero value: the system clock.
	Clock Clock
	// Logger receives a warning when the chain restarts. Default: discard.
	Logger *slog.Logger
}

// Chain issues signed reports with strictly increasing seq numbers, each
// naming the SHA-256 of the previous report's body, and keeps its head in
// the state directory so the chain continues across restarts and reboots.
// It is safe for concurrent use.
type Chain struct {
	key  *Key
	path string
	cfg  ChainConfig
	log  *slog.Logger

	mu   sync.Mutex // guards seq and hash: the head, as persisted in path
	seq  uint64
	hash [32]byte
}

// chainState is the file format of ChainFile.
type chainState struct {
	V        int    `json:"v"`
	Seq      uint64 `json:"seq"`
	BodyHash string `json:"body_hash"` // hex SHA-256 of the body of report Seq
	KeyID    string `json:"kid"`
}

// Issued is a report as signed.
type Issued struct {
	Report   Report   // as encoded: Seq, PrevHash and time filled in
	Body     []byte   // the msgpack report, as signed
	Envelope []byte   // the message to publish
	Hash     [32]byte // SHA-256 of Body: the next report's prev_hash
}

// OpenChain opens the chain kept in stateDir for key. A missing state file
// starts a new chain at seq 1 (logged as a warning when the key is older
// than the chain would be: the collector will see the restart). A state
// file that cannot be read is an error naming the file.
func OpenChain(stateDir string, key *Key, cfg ChainConfig) (*Chain, error) {
	c := &Chain{key: key, path: filepath.Join(stateDir, ChainFile), cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	b, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.log.Info("attest: starting a new report chain at seq 1", "file", c.path, "kid", key.ID())
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("attest: chain state: %w", err)
	}
	var st chainState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("attest: chain state %s is corrupt (%v); move it away to start a new chain at seq 1 (the collector will flag the restart)", c.path, err)
	}
	h, err := hex.DecodeString(st.BodyHash)
	if st.V != 1 || err != nil || len(h) != 32 {
		return nil, fmt.Errorf("attest: chain state %s: want v 1 and a 64-hex-digit body_hash; move it away to start a new chain at seq 1", c.path)
	}
	if st.KeyID != key.ID() {
		c.log.Warn("attest: the signing key changed since the last report; the chain continues under the new key", "file", c.path, "old_kid", st.KeyID, "kid", key.ID())
	}
	c.seq = st.Seq
	copy(c.hash[:], h)
	return c, nil
}

// Head returns the seq and body hash of the last report issued (0 and zeros
// before the first).
func (c *Chain) Head() (seq uint64, hash [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq, c.hash
}

// Issue fills in r's Seq and PrevHash (and TimeMS and ClockSynced when
// TimeMS is zero), encodes and signs it, and durably records the new head
// before returning. The caller then commits Envelope to its outbox. A crash
// between the two loses that one report, which verifiers see as a gap —
// never as a replay or a fork, since a seq is never issued twice.
func (c *Chain) Issue(r Report) (*Issued, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Seq = c.seq + 1
	r.PrevHash = append(Bytes(nil), c.hash[:]...)
	if r.TimeMS == 0 {
		r.TimeMS, r.ClockSynced = c.cfg.Clock.Stamp()
	}
	body, err := r.MarshalMsg(make([]byte, 0, r.Msgsize()))
	if err != nil {
		return nil, fmt.Errorf("attest: encode report: %w", err)
	}
	env, err := Seal(make([]byte, 0, len(body)+128), c.key, body)
	if err != nil {
		return nil, fmt.Errorf("attest: encode envelope: %w", err)
	}
	hash := sha256.Sum256(body)
	if err := c.save(r.Seq, hash); err != nil {
		return nil, err
	}
	c.seq, c.hash = r.Seq, hash
	return &Issued{Report: r, Body: body, Envelope: env, Hash: hash}, nil
}

// Resume moves the head forward to a report issued with this chain's key
// but not recorded in the state file, such as the newest entry of an outbox
// restored from a backup. Envelopes at or below the head are ignored.
func (c *Chain) Resume(envelope []byte) error {
	env, err := DecodeEnvelope(envelope)
	if err != nil {
		return err
	}
	if err := env.Check(c.key.Public()); err != nil {
		return err
	}
	r, err := DecodeReport(env.Body)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Seq <= c.seq {
		return nil
	}
	hash := sha256.Sum256(env.Body)
	if err := c.save(r.Seq, hash); err != nil {
		return err
	}
	c.seq, c.hash = r.Seq, hash
	return nil
}

func (c *Chain) save(seq uint64, hash [32]byte) error {
	b, _ := json.Marshal(chainState{V: 1, Seq: seq, BodyHash: hex.EncodeToString(hash[:]), KeyID: c.key.ID()})
	return writeFileDurable(c.path, append(b, '\n'), 0o600, true)
}
