package uplink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// OutboxConfig bounds and configures an Outbox. The zero value works.
type OutboxConfig struct {
	// MaxBytes bounds the payload bytes kept; the oldest entries are dropped
	// to make room. Default 64 MiB.
	MaxBytes int64
	// MaxEntries bounds the number of entries kept. Default 100000.
	MaxEntries int
	// MaxAge drops entries older than this. Default 30 days.
	MaxAge time.Duration
	// LockTimeout is how long Open waits for another process holding the
	// file. Default 5s.
	LockTimeout time.Duration
	// Logger receives drops and recoveries. Default: discard.
	Logger *slog.Logger
	// Now is the clock for ages. Default time.Now.
	Now func() time.Time
}

// Outbox is the durable queue of envelopes waiting for the broker's PUBACK,
// a single bbolt file. Enqueue returns only after the entry is on disk
// (fsync); entries leave only through Ack or a counted drop. It is safe for
// concurrent use.
type Outbox struct {
	path string
	cfg  OutboxConfig // defaults applied
	log  *slog.Logger
	db   *bolt.DB

	mu      sync.Mutex    // guards the fields below, mirrors of what is on disk
	count   int           // entries
	bytes   int64         // payload bytes
	lastSeq uint64        // highest seq ever enqueued
	dropped uint64        // entries dropped (bounds, age, corrupt), ever
	changed chan struct{} // closed and replaced on every change
}

// Entry is one queued envelope.
type Entry struct {
	Seq      uint64
	Payload  []byte
	Enqueued time.Time
}

// OutboxStats is a snapshot of an Outbox.
type OutboxStats struct {
	Depth   int    // entries waiting
	Bytes   int64  // their payload bytes
	Dropped uint64 // entries dropped since the outbox file was created
	LastSeq uint64 // highest seq ever enqueued
}

var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	keyLastSeq    = []byte("last_seq")
	keyDropped    = []byte("dropped")
)

// Record layout of an entry value: version byte (1), enqueue time as Unix
// milliseconds (int64, big endian), CRC-32C of the payload, payload.
const (
	recVersion = 1
	recHeader  = 1 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a file that must be moved aside.
var errCorrupt = errors.New("corrupt")

// OpenOutbox opens or creates the outbox at path (its directory is created
// with mode 0700). A file that bbolt cannot read, or whose consistency check
// fails, is renamed to path.corrupt-<time> with an error log line and a new
// outbox is started, so a damaged file never stops the agent. Errors that
// moving the file would not fix (permissions, another process holding the
// lock) are returned.
func OpenOutbox(path string, cfg OutboxConfig) (*Outbox, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * 24 * time.Hour
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Outbox{path: path, cfg: cfg, log: cfg.Logger, changed: make(chan struct{})}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("uplink: outbox: %w", err)
	}
	err := o.open()
	if errors.Is(err, errCorrupt) {
		aside := fmt.Sprintf("%s.corrupt-%s", path, cfg.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("uplink: outbox %s is corrupt (%v) and could not be moved aside: %w", path, err, rerr)
		}
		o.log.Error("uplink: outbox file is corrupt; moved it aside and started an empty outbox (reports in it are not sent; keep the file for analysis)",
			"file", path, "moved_to", aside, "err", err)
		err = o.open()
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// open opens the bbolt file, creates the buckets, checks consistency and
// loads the counters. It turns bbolt panics on damaged pages into errCorrupt.
func (o *Outbox) open() (err error) {
	var db *bolt.DB
	defer func() {
		// bbolt panics on some damaged pages, in Open as well as later. A
		// panic inside Open leaks its descriptor once; the damaged file is
		// then renamed, so the lock it holds is on an inode no one opens.
		if p := recover(); p != nil {
			err = fmt.Errorf("uplink: outbox %s: %w: bbolt: %v", o.path, errCorrupt, p)
		}
		if err != nil && db != nil {
			func() {
				defer func() { _ = recover() }()
				db.Close()
			}()
		}
	}()
	db, err = bolt.Open(o.path, 0o600, &bolt.Options{Timeout: o.cfg.LockTimeout})
	if err != nil {
		db = nil
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("uplink: outbox %s is locked by another process (another modemguard running?): %w", o.path, err)
		}
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("uplink: outbox: %w", err)
		}
		return fmt.Errorf("uplink: outbox %s: %w: %v", o.path, errCorrupt, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for c := range tx.Check() {
			return fmt.Errorf("uplink: outbox %s: %w: %v", o.path, errCorrupt, c)
		}
		eb, err := tx.CreateBucketIfNotExists(bucketEntries)
		if err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		o.lastSeq = getUint(mb, keyLastSeq)
		o.dropped = getUint(mb, keyDropped)
		// Count entries; drop records whose checksum fails (a torn page
		// is bbolt's to prevent, this guards against bit rot).
		var bad [][]byte
		c := eb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if _, _, ok := decodeRecord(k, v); !ok {
				bad = append(bad, append([]byte(nil), k...))
				continue
			}
			o.count++
			o.bytes += int64(len(v) - recHeader)
		}
		for _, k := range bad {
			o.log.Error("uplink: outbox entry fails its checksum; dropped", "file", o.path, "key", fmt.Sprintf("%x", k))
			if err := eb.Delete(k); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			o.dropped += uint64(len(bad))
			return putUint(mb, keyDropped, o.dropped)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			err = fmt.Errorf("uplink: outbox %s: %w", o.path, err)
		}
		o.count, o.bytes = 0, 0
		return err
	}
	o.db = db
	return nil
}

func decodeRecord(k, v []byte) (seq uint64, e Entry, ok bool) {
	if len(k) != 8 || len(v) < recHeader || v[0] != recVersion {
		return 0, e, false
	}
	payload := v[recHeader:]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(v[9:13]) {
		return 0, e, false
	}
	seq = binary.BigEndian.Uint64(k)
	return seq, Entry{Seq: seq, Payload: payload, Enqueued: time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9])))}, true
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// signal wakes everyone waiting on Changed. Call with o.mu held.
func (o *Outbox) signal() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change (enqueue, ack, drop).
// Take it before looking at the outbox, so no change is missed.
func (o *Outbox) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// Enqueue commits payload under seq and returns once it is on disk. seq must
// be above every seq enqueued before. When the outbox is over its bounds the
// oldest entries are dropped, counted and logged.
func (o *Outbox) Enqueue(seq uint64, payload []byte) error {
	if int64(len(payload)) > o.cfg.MaxBytes {
		return fmt.Errorf("uplink: outbox: entry of %d bytes exceeds MaxBytes %d", len(payload), o.cfg.MaxBytes)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq <= o.lastSeq {
		return fmt.Errorf("uplink: outbox: seq %d is not above the last enqueued seq %d", seq, o.lastSeq)
	}
	now := o.cfg.Now()
	rec := make([]byte, recHeader, recHeader+len(payload))
	rec[0] = recVersion
	binary.BigEndian.PutUint64(rec[1:9], uint64(now.UnixMilli()))
	binary.BigEndian.PutUint32(rec[9:13], crc32.Checksum(payload, castagnoli))
	rec = append(rec, payload...)

	count, bytes, dropped := o.count+1, o.bytes+int64(len(payload)), o.dropped
	var droppedSeqs []uint64
	err := o.db.Update(func(tx *bolt.Tx) error {
		eb, mb := tx.Bucket(bucketEntries), tx.Bucket(bucketMeta)
		if err := eb.Put(seqKey(seq), rec); err != nil {
			return err
		}
		if err := putUint(mb, keyLastSeq, seq); err != nil {
			return err
		}
		c := eb.Cursor()
		cutoff := now.Add(-o.cfg.MaxAge)
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) != seq; k, v = c.First() {
			over := count > o.cfg.MaxEntries || bytes > o.cfg.MaxBytes
			old := len(v) >= recHeader && time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9]))).Before(cutoff)
			if !over && !old {
				break
			}
			droppedSeqs = append(droppedSeqs, binary.BigEndian.Uint64(k))
			count--
			bytes -= int64(len(v) - recHeader)
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if len(droppedSeqs) > 0 {
			dropped += uint64(len(droppedSeqs))
			return putUint(mb, keyDropped, dropped)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("uplink: outbox %s: enqueue seq %d: %w", o.path, seq, err)
	}
	o.count, o.bytes, o.dropped, o.lastSeq = count, bytes, dropped, seq
	if len(droppedSeqs) > 0 {
		o.log.Warn("uplink: outbox over its bounds; dropped the oldest reports",
			"dropped", len(droppedSeqs), "first_seq", droppedSeqs[0], "last_seq", droppedSeqs[len(droppedSeqs)-1],
			"dropped_total", dropped, "max_bytes", o.cfg.MaxBytes, "max_entries", o.cfg.MaxEntries, "max_age", o.cfg.MaxAge)
	}
	o.signal()
	return nil
}

// Peek returns up to n of the oldest entries, in seq order, after dropping
// those older than MaxAge. The payloads are copies.
func (o *Outbox) Peek(n int) ([]Entry, error) {
	if err := o.expire(); err != nil {
		return nil, err
	}
	var out []Entry
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			_, e, ok := decodeRecord(k, v)
			if !ok {
				return fmt.Errorf("entry %x fails its checksum", k)
			}
			e.Payload = append([]byte(nil), e.Payload...)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("uplink: outbox %s: %w", o.path, err)
	}
	return out, nil
}

// expire drops entries older than MaxAge.
func (o *Outbox) expire() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cutoff := o.cfg.Now().Add(-o.cfg.MaxAge)
	isOld := func(v []byte) bool {
		return len(v) >= recHeader && time.UnixMilli(int64(binary.BigEndian.Uint64(v[1:9]))).Before(cutoff)
	}
	var any bool
	_ = o.db.View(func(tx *bolt.Tx) error {
		_, v := tx.Bucket(bucketEntries).Cursor().First()
		any = v != nil && isOld(v)
		return nil
	})
	if !any {
		return nil
	}
	count, bytes, dropped := o.count, o.bytes, o.dropped
	var n int
	err := o.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.First(); k != nil && isOld(v); k, v = c.First() {
			n++
			count--
			bytes -= int64(len(v) - recHeader)
			if err := c.Delete(); err != nil {
				return err
			}
		}
		dropped += uint64(n)
		return putUint(tx.Bucket(bucketMeta), keyDropped, dropped)
	})
	if err != nil {
		return fmt.Errorf("uplink: outbox %s: expire: %w", o.path, err)
	}
	o.count, o.bytes, o.dropped = count, bytes, dropped
	o.log.Warn("uplink: outbox entries expired unsent; dropped", "dropped", n, "max_age", o.cfg.MaxAge, "dropped_total", dropped)
	o.signal()
	return nil
}

// Ack removes delivered entries in one durable transaction. Unknown seqs
// (already removed) are ignored.
func (o *Outbox) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	count, bytes := o.count, o.bytes
	err := o.db.Update(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketEntries)
		for _, s := range seqs {
			k := seqKey(s)
			v := eb.Get(k)
			if v == nil {
				continue
			}
			count--
			bytes -= int64(len(v) - recHeader)
			if err := eb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("uplink: outbox %s: ack: %w", o.path, err)
	}
	if count != o.count {
		o.count, o.bytes = count, bytes
		o.signal()
	}
	return nil
}

// Stats returns the outbox's counters.
func (o *Outbox) Stats() OutboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return OutboxStats{Depth: o.count, Bytes: o.bytes, Dropped: o.dropped, LastSeq: o.lastSeq}
}

// WaitEmpty waits until every entry is acknowledged or dropped, or ctx ends
// (a shutdown flushes with a deadline this way).
func (o *Outbox) WaitEmpty(ctx context.Context) error {
	for {
		ch := o.Changed()
		if o.Stats().Depth == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("uplink: outbox: %d entries still unsent: %w", o.Stats().Depth, ctx.Err())
		}
	}
}

// Path returns the outbox file's path.
func (o *Outbox) Path() string { return o.path }

// Close closes the file. Entries stay on disk for the next OpenOutbox.
func (o *Outbox) Close() error {
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("uplink: outbox %s: close: %w", o.path, err)
	}
	return nil
}
