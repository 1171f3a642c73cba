package collector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", pure Go
)

// DefaultDatabase is the inventory used when Config.Database is empty.
const DefaultDatabase = "sqlite:///var/lib/modemguard/collector.db"

// dialect holds what differs between SQLite and PostgreSQL. Everything
// else is written once in the SQL both accept (ON CONFLICT needs SQLite
// 3.24 or later; modernc.org/sqlite bundles a current one).
type dialect struct {
	name    string // "sqlite" or "postgres"
	dollar  bool   // placeholders are $1, $2 (PostgreSQL) rather than ?
	id      string // an auto-increment primary key column
	blob    string // a byte-string column
	lockGW  string // statement taking the per-gateway writer lock inside a transaction; "" when the transaction already serialises writers
	migLock string // statement serialising concurrent migrations; "" likewise
}

var (
	sqliteDialect = dialect{name: "sqlite", id: "INTEGER PRIMARY KEY AUTOINCREMENT", blob: "BLOB"}
	// Transaction-scoped advisory locks: PostgreSQL manual §13.3.5. One
	// lock per gateway id keeps two collectors on one database from
	// judging two reports of the same gateway against a stale head.
	postgresDialect = dialect{name: "postgres", dollar: true, id: "BIGSERIAL PRIMARY KEY", blob: "BYTEA",
		lockGW: "SELECT pg_advisory_xact_lock(7193, hashtext(?))", migLock: "SELECT pg_advisory_xact_lock(7193, 0)"}
)

// Store is the inventory database. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	d   dialect
	dsn string // for messages, without a password
}

// OpenStore opens the inventory named by dsn and applies the schema
// migrations it lacks:
//
//	sqlite:///var/lib/modemguard/collector.db   (absolute path after sqlite://)
//	sqlite://collector.db                       (relative to the working directory)
//	postgres://user@host:5432/db?sslmode=disable
//
// An empty dsn means DefaultDatabase.
func OpenStore(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		dsn = DefaultDatabase
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("collector: database %q: want sqlite:///absolute/path.db or sqlite://relative/path.db", dsn)
		}
		// WAL lets the HTTP readers run beside the writer; synchronous
		// NORMAL in WAL mode is durable across application crashes and
		// may lose the last commits on power loss (sqlite.org/wal.html,
		// sqlite.org/pragma.html#pragma_synchronous); those reports were
		// acknowledged, so the next report shows up as a gap. busy_timeout
		// lets two collectors share one file. _txlock=immediate takes the write lock at BEGIN,
		// so a transaction never fails to upgrade a read lock.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		d = sqliteDialect
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = sql.Open("pgx", dsn)
		d = postgresDialect
	default:
		return nil, fmt.Errorf("collector: database %q: want sqlite:///path.db or postgres://user@host/db", redact(dsn))
	}
	if err != nil {
		return nil, fmt.Errorf("collector: database %s: %w", redact(dsn), err)
	}
	if d.name == "sqlite" {
		// One writer at a time anyway; a few connections for the HTTP API.
		db.SetMaxOpenConns(4)
	} else {
		db.SetMaxOpenConns(8)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, d: d, dsn: redact(dsn)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// redact hides the password of a URL-shaped DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// q rewrites ? placeholders for the dialect. Queries here never hold a
// literal question mark.
func (s *Store) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrations are applied in order, each once, each in its own transaction;
// schema_migrations records which ran. Never edit a released migration:
// append a new one.
func (s *Store) migrations() []string {
	r := strings.NewReplacer("{{ID}}", s.d.id, "{{BLOB}}", s.d.blob)
	return []string{
		// 1: the inventory.
		r.Replace(`
CREATE TABLE gateways (
	gateway_id     TEXT PRIMARY KEY,
	trust          TEXT NOT NULL DEFAULT '',
	kid            TEXT NOT NULL DEFAULT '',
	pubkey         TEXT NOT NULL DEFAULT '',
	head_seq       BIGINT NOT NULL DEFAULT 0,
	head_hash      TEXT NOT NULL DEFAULT '',
	first_seq      BIGINT NOT NULL DEFAULT 0,
	missing        BIGINT NOT NULL DEFAULT 0,
	chain          TEXT NOT NULL DEFAULT '',
	chain_detail   TEXT NOT NULL DEFAULT '',
	verdict        TEXT NOT NULL DEFAULT '',
	modules        TEXT NOT NULL DEFAULT '[]',
	boot_id        TEXT NOT NULL DEFAULT '',
	agent_version  TEXT NOT NULL DEFAULT '',
	report_time_ms BIGINT NOT NULL DEFAULT 0,
	clock_synced   BIGINT NOT NULL DEFAULT 0,
	first_seen_ms  BIGINT NOT NULL DEFAULT 0,
	last_seen_ms   BIGINT NOT NULL DEFAULT 0,
	reports        BIGINT NOT NULL DEFAULT 0,
	rejected       BIGINT NOT NULL DEFAULT 0,
	online         BIGINT NOT NULL DEFAULT -1,
	status_boot_id TEXT NOT NULL DEFAULT '',
	status_conn    BIGINT NOT NULL DEFAULT 0,
	status_kid     TEXT NOT NULL DEFAULT '',
	status_reason  TEXT NOT NULL DEFAULT '',
	status_ms      BIGINT NOT NULL DEFAULT 0,
	outbox_depth   BIGINT NOT NULL DEFAULT -1,
	dropped        BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE reports (
	gateway_id  TEXT NOT NULL,
	seq         BIGINT NOT NULL,
	received_ms BIGINT NOT NULL,
	time_ms     BIGINT NOT NULL,
	hash        TEXT NOT NULL,
	prev_hash   TEXT NOT NULL,
	kid         TEXT NOT NULL,
	verdict     TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	nonce       TEXT NOT NULL DEFAULT '',
	envelope    {{BLOB}} NOT NULL,
	PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX reports_received ON reports (received_ms);
CREATE TABLE rejections (
	id          {{ID}},
	gateway_id  TEXT NOT NULL,
	seq         BIGINT,
	reason      TEXT NOT NULL,
	detail      TEXT NOT NULL,
	topic       TEXT NOT NULL,
	hash        TEXT NOT NULL DEFAULT '',
	size        BIGINT NOT NULL,
	received_ms BIGINT NOT NULL
);
CREATE INDEX rejections_gateway ON rejections (gateway_id, id);
CREATE INDEX rejections_received ON rejections (received_ms);
CREATE TABLE module_changes (
	id          {{ID}},
	gateway_id  TEXT NOT NULL,
	seq         BIGINT NOT NULL,
	time_ms     BIGINT NOT NULL,
	received_ms BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	imei        TEXT NOT NULL,
	old_value   TEXT NOT NULL,
	new_value   TEXT NOT NULL,
	detail      TEXT NOT NULL
);
CREATE INDEX module_changes_gateway ON module_changes (gateway_id, id);
CREATE TABLE chain_events (
	id          {{ID}},
	gateway_id  TEXT NOT NULL,
	seq         BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	detail      TEXT NOT NULL,
	received_ms BIGINT NOT NULL
);
CREATE INDEX chain_events_gateway ON chain_events (gateway_id, id);
CREATE TABLE challenges (
	id          {{ID}},
	gateway_id  TEXT NOT NULL,
	nonce       TEXT NOT NULL,
	sent_ms     BIGINT NOT NULL,
	deadline_ms BIGINT NOT NULL,
	outcome     TEXT NOT NULL,
	answered_ms BIGINT NOT NULL DEFAULT 0,
	seq         BIGINT NOT NULL DEFAULT 0,
	origin      TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX challenges_nonce ON challenges (gateway_id, nonce);
CREATE INDEX challenges_pending ON challenges (outcome, deadline_ms);
`),
	}
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("collector: database %s: %w", s.dsn, err)
	}
	for i, m := range s.migrations() {
		version := i + 1
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if s.d.migLock != "" {
				if _, err := tx.ExecContext(ctx, s.d.migLock); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(m, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)`), version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("collector: database %s: migration %d: %w", s.dsn, version, err)
		}
	}
	return nil
}

// SchemaVersion returns the highest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Ping checks the database connection.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// clean makes s storable as TEXT everywhere: PostgreSQL refuses invalid
// UTF-8 and NUL in text columns, and a message that can never be stored
// would stall ingestion forever.
func clean(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// ErrNotFound is returned by GatewayDetail for an unknown gateway.
var ErrNotFound = errors.New("collector: not found")
