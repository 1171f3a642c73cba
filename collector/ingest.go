package collector

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modemguard/modemguard/attest"
)

// Rejection reasons: the reason column of rejections, the reason label of
// modemguard_collector_reports_rejected_total. A rejected report is never
// applied to the inventory and never moves a gateway's chain head.
const (
	ReasonOversized    = "oversized"       // payload larger than Config.MaxMessage
	ReasonMalformed    = "malformed"       // not an envelope or report (docs/wire-format.md)
	ReasonTopic        = "topic mismatch"  // the report's gateway_id is not its topic's
	ReasonUnknownGW    = "unknown gateway" // not enrolled, and no pool key for TOFU
	ReasonUnknownKey   = "unknown key"     // the envelope's kid is not the gateway's key
	ReasonBadSignature = "bad signature"   // sig does not verify over body
	ReasonReplay       = "replay"          // the same report again (normal after a reconnect)
	ReasonFork         = "fork"            // a different report with a seq already stored
	ReasonBrokenChain  = "broken chain"    // prev_hash does not name the previous report
)

// Outcomes of accepted reports: the outcome column of reports.
const (
	OutcomeOK   = "ok"   // seq = head+1, prev_hash names the head (or the gateway's first report)
	OutcomeGap  = "gap"  // seq jumped: applied, the missing seqs are counted
	OutcomeLate = "late" // an older seq arriving after a newer one: stored, not applied
)

// Chain states of a gateway (the chain field of the API).
const (
	ChainNone   = "none"   // no verified report yet
	ChainOK     = "ok"     // every seq up to the head arrived and links
	ChainGap    = "gap"    // reports are missing
	ChainBroken = "broken" // a broken link was seen: stays until an operator resets the gateway
	ChainFork   = "fork"   // two reports with one seq were seen: stays likewise
)

// Status is the JSON a gateway publishes on its status topic
// (docs/wire-format.md). It mirrors uplink.Status field by field; the
// collector does not import uplink.
type Status struct {
	State       string  `json:"state"` // "online" or "offline"
	GatewayID   string  `json:"gateway_id"`
	BootID      string  `json:"boot_id"`
	KeyID       string  `json:"kid"`
	PubKey      string  `json:"pubkey,omitempty"` // online: the gateway's public key (trust on first use)
	Conn        uint64  `json:"conn"`             // connection number in this run; a will with a lower one is stale
	Reason      string  `json:"reason,omitempty"` // offline: "shutdown" or "connection lost"
	TimeMS      int64   `json:"time_ms,omitempty"`
	OutboxDepth *int    `json:"outbox_depth,omitempty"`
	Dropped     *uint64 `json:"dropped,omitempty"`
}

// maxStatus bounds a status payload; a real one is about 200 bytes.
const maxStatus = 4 << 10

// parseTopic splits modemguard/v1/<id>/<kind>.
func parseTopic(topic string) (id, kind string, ok bool) {
	rest, found := strings.CutPrefix(topic, "modemguard/v1/")
	if !found {
		return "", "", false
	}
	id, kind, found = strings.Cut(rest, "/")
	if !found || strings.Contains(kind, "/") {
		return "", "", false
	}
	return id, kind, true
}

// gwRow is a gateway's row as the ingest path needs it.
type gwRow struct {
	exists      bool
	trust       string
	kid, pubkey string
	headSeq     int64
	headHash    string
	firstSeq    int64 // the lowest seq accepted: a late report below it widens the known range
	missing     int64
	chain       string
	modules     string
	online      int64
	statusBoot  string
	statusConn  int64
}

// result is what one message did, for metrics and logs after commit.
type result struct {
	kind    string // "report", "status" or "ignored"
	reject  string // rejection reason; "" when accepted
	outcome string // for accepted reports
	gateway string
	seq     uint64
	detail  string
	verify  time.Duration
}

// Ingest processes one MQTT message: a report is checked and stored (as
// accepted or as a rejection), a status updates online/offline. It returns
// an error only when the database failed; the message should then be
// retried, which is safe because every write is idempotent on
// (gateway_id, seq). Bad input is recorded, never returned.
func (c *Collector) Ingest(ctx context.Context, topic string, payload []byte) error {
	res, err := c.ingest(ctx, topic, payload)
	if err != nil {
		c.metrics.dbErrors.Inc()
		return fmt.Errorf("collector: store message on %s: %w", clean(topic), err)
	}
	c.observe(res)
	return nil
}

func (c *Collector) ingest(ctx context.Context, topic string, payload []byte) (result, error) {
	id, kind, ok := parseTopic(topic)
	if !ok {
		return result{kind: "ignored", detail: "topic " + clean(topic)}, nil
	}
	now := c.cfg.Now().UnixMilli()
	switch kind {
	case "report":
		var res result
		start := time.Now()
		err := c.store.tx(ctx, func(tx *sql.Tx) error {
			var err error
			res, err = c.ingestReport(ctx, tx, topic, id, payload, now)
			return err
		})
		c.metrics.dbSeconds.WithLabelValues("report").Observe(time.Since(start).Seconds() - res.verify.Seconds())
		return res, err
	case "status":
		var res result
		start := time.Now()
		err := c.store.tx(ctx, func(tx *sql.Tx) error {
			var err error
			res, err = c.ingestStatus(ctx, tx, id, payload, now)
			return err
		})
		c.metrics.dbSeconds.WithLabelValues("status").Observe(time.Since(start).Seconds())
		return res, err
	}
	return result{kind: "ignored", detail: "topic " + clean(topic)}, nil
}

func (c *Collector) observe(res result) {
	switch {
	case res.kind == "report" && res.reject != "":
		c.metrics.rejected.WithLabelValues(res.reject).Inc()
		lvl := c.log.Warn
		if res.reject == ReasonReplay {
			lvl = c.log.Debug // at-least-once delivery makes these routine
		}
		lvl("collector: report rejected", "gateway", res.gateway, "seq", res.seq, "reason", res.reject, "detail", res.detail)
	case res.kind == "report":
		c.metrics.accepted.WithLabelValues(res.outcome).Inc()
		c.metrics.verifySeconds.Observe(res.verify.Seconds())
		if res.outcome != OutcomeOK {
			c.log.Info("collector: report accepted out of sequence", "gateway", res.gateway, "seq", res.seq, "outcome", res.outcome, "detail", res.detail)
		}
	case res.kind == "status":
		c.metrics.status.WithLabelValues(res.outcome).Inc()
	default:
		c.metrics.status.WithLabelValues("ignored").Inc()
		c.log.Debug("collector: message ignored", "detail", res.detail)
	}
}

func (c *Collector) lockGateway(ctx context.Context, tx *sql.Tx, id string) error {
	if c.store.d.lockGW == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, c.store.q(c.store.d.lockGW), id)
	return err
}

func (c *Collector) loadRow(ctx context.Context, tx *sql.Tx, id string) (gwRow, error) {
	var r gwRow
	err := tx.QueryRowContext(ctx, c.store.q(`SELECT trust, kid, pubkey, head_seq, head_hash, first_seq, missing, chain, modules, online, status_boot_id, status_conn
		FROM gateways WHERE gateway_id = ?`), id).Scan(&r.trust, &r.kid, &r.pubkey, &r.headSeq, &r.headHash, &r.firstSeq, &r.missing, &r.chain, &r.modules, &r.online, &r.statusBoot, &r.statusConn)
	if errors.Is(err, sql.ErrNoRows) {
		return gwRow{chain: ChainNone, modules: "[]", online: -1}, nil
	}
	r.exists = err == nil
	return r, err
}

func (c *Collector) ensureRow(ctx context.Context, tx *sql.Tx, id string, row *gwRow, now int64) error {
	if row.exists {
		return nil
	}
	_, err := tx.ExecContext(ctx, c.store.q(`INSERT INTO gateways (gateway_id, chain, first_seen_ms) VALUES (?, ?, ?) ON CONFLICT (gateway_id) DO NOTHING`), id, ChainNone, now)
	row.exists = err == nil
	return err
}

// rejection is one rejections row.
type rejection struct {
	gateway, topic, reason, detail, hash string
	seq                                  uint64 // 0: not known
	size                                 int
}

func (c *Collector) insertRejection(ctx context.Context, tx *sql.Tx, rj rejection, now int64) (result, error) {
	var seq any
	if rj.seq > 0 {
		seq = int64(rj.seq)
	}
	detail := rj.detail
	if len(detail) > 1000 {
		detail = detail[:1000] + "…"
	}
	_, err := tx.ExecContext(ctx, c.store.q(`INSERT INTO rejections (gateway_id, seq, reason, detail, topic, hash, size, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		clean(rj.gateway), seq, rj.reason, clean(detail), clean(rj.topic), rj.hash, rj.size, now)
	if err != nil {
		return result{}, err
	}
	if ValidGatewayID(rj.gateway) {
		sticky := ""
		switch rj.reason {
		case ReasonFork:
			sticky = ChainFork
		case ReasonBrokenChain:
			sticky = ChainBroken
		}
		if sticky != "" {
			_, err = tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET rejected = rejected + 1, chain = ?, chain_detail = ? WHERE gateway_id = ?`), sticky, clean(fmt.Sprintf("seq %d: %s", rj.seq, detail)), rj.gateway)
		} else {
			_, err = tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET rejected = rejected + 1 WHERE gateway_id = ?`), rj.gateway)
		}
	}
	return result{kind: "report", reject: rj.reason, gateway: clean(rj.gateway), seq: rj.seq, detail: detail}, err
}

// keyFor finds the key that must have signed a report of gateway id:
// the enrolled one, a key pinned by TOFU, or (TOFU on) a free pool key
// whose id the envelope names. reason is set when there is none.
func (c *Collector) keyFor(ctx context.Context, tx *sql.Tx, id, kid string, row gwRow) (pub ed25519.PublicKey, trust, reason string, err error) {
	enr := c.enrollment()
	if k, ok := enr.Gateways[id]; ok {
		return k, "enrolled", "", nil
	}
	if row.trust == "tofu" && row.pubkey != "" {
		k, err := attest.ParsePublicKey(row.pubkey)
		if err != nil {
			return nil, "", ReasonUnknownKey, nil
		}
		return k, "tofu", "", nil
	}
	if !c.cfg.TOFU {
		return nil, "", ReasonUnknownGW, nil
	}
	k, ok := enr.Pool[kid]
	if !ok {
		return nil, "", ReasonUnknownGW, nil
	}
	var other string
	err = tx.QueryRowContext(ctx, c.store.q(`SELECT gateway_id FROM gateways WHERE pubkey = ? AND gateway_id <> ?`), attest.EncodePublicKey(k), id).Scan(&other)
	switch {
	case err == nil:
		return nil, "", ReasonUnknownKey, nil // pinned to another gateway already
	case !errors.Is(err, sql.ErrNoRows):
		return nil, "", "", err
	}
	return k, "tofu", "", nil
}

func (c *Collector) ingestReport(ctx context.Context, tx *sql.Tx, topic, topicID string, payload []byte, now int64) (result, error) {
	rj := rejection{gateway: topicID, topic: topic, size: len(payload)}
	reject := func(reason, detail string) (result, error) {
		rj.reason, rj.detail = reason, detail
		return c.insertRejection(ctx, tx, rj, now)
	}
	if len(payload) > c.cfg.MaxMessage {
		return reject(ReasonOversized, fmt.Sprintf("%d bytes, the limit is %d", len(payload), c.cfg.MaxMessage))
	}
	if !ValidGatewayID(topicID) {
		return reject(ReasonMalformed, "the topic's gateway id is not 1 to 64 letters, digits, '.', '_' or '-'")
	}
	env, err := attest.DecodeEnvelope(payload)
	if err != nil {
		return reject(ReasonMalformed, err.Error())
	}
	sum := sha256.Sum256(env.Body)
	rj.hash = hex.EncodeToString(sum[:])
	r, err := attest.DecodeReport(env.Body)
	if err != nil {
		return reject(ReasonMalformed, err.Error())
	}
	rj.seq = r.Seq
	if r.Seq > 1<<62 { // databases store seq as a signed 64-bit integer
		rj.seq = 0
		return reject(ReasonMalformed, fmt.Sprintf("seq %d is out of range", r.Seq))
	}
	if r.GatewayID != topicID {
		return reject(ReasonTopic, fmt.Sprintf("report of gateway %q published on %s", clean(r.GatewayID), topic))
	}
	id := topicID
	if err := c.lockGateway(ctx, tx, id); err != nil {
		return result{}, err
	}
	row, err := c.loadRow(ctx, tx, id)
	if err != nil {
		return result{}, err
	}
	pub, trust, reason, err := c.keyFor(ctx, tx, id, env.Kid, row)
	if err != nil {
		return result{}, err
	}
	if pub == nil {
		detail := "the gateway is not in the enrollment file"
		if c.cfg.TOFU {
			detail += fmt.Sprintf(" and no unclaimed pool key has id %s", clean(env.Kid))
		}
		if reason == ReasonUnknownKey {
			detail = fmt.Sprintf("key %s is pinned to another gateway or unusable", clean(env.Kid))
		}
		return reject(reason, detail)
	}

	v := attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(pub), History: 1})
	if row.headSeq > 0 {
		var h [32]byte
		if b, err := hex.DecodeString(row.headHash); err == nil && len(b) == 32 {
			copy(h[:], b)
		}
		v.SetHead(id, uint64(row.headSeq), h)
	}
	t0 := time.Now()
	ver, verr := v.Verify(payload)
	took := time.Since(t0)
	if ver == nil {
		switch {
		case errors.Is(verr, attest.ErrUnknownKey):
			reason = ReasonUnknownKey
		case errors.Is(verr, attest.ErrBadSignature):
			reason = ReasonBadSignature
		default:
			reason = ReasonMalformed
		}
		return reject(reason, verr.Error())
	}
	acc := accepted{r: r, env: env, hash: rj.hash, pub: pub, trust: trust, row: row, payload: payload, now: now, verify: took}
	switch {
	case verr == nil:
		return c.apply(ctx, tx, acc, OutcomeOK, "")
	case errors.Is(verr, attest.ErrGap):
		acc.missing = int64(r.Seq) - row.headSeq - 1
		if row.headSeq == 0 { // never happens: a fresh verifier starts anywhere
			acc.missing = 0
		}
		return c.apply(ctx, tx, acc, OutcomeGap, fmt.Sprintf("%d report(s) missing: seq %d..%d", acc.missing, row.headSeq+1, r.Seq-1))
	case errors.Is(verr, attest.ErrBrokenChain):
		return reject(ReasonBrokenChain, verr.Error())
	}
	// An older (or the head's) seq: the database knows more than the
	// verifier's one-entry memory.
	var stored string
	err = tx.QueryRowContext(ctx, c.store.q(`SELECT hash FROM reports WHERE gateway_id = ? AND seq = ?`), id, int64(r.Seq)).Scan(&stored)
	switch {
	case err == nil && stored == rj.hash:
		return reject(ReasonReplay, "this report was already received")
	case err == nil:
		return reject(ReasonFork, fmt.Sprintf("another report with seq %d was stored (body sha256 %.12s…, now %.12s…)", r.Seq, stored, rj.hash))
	case !errors.Is(err, sql.ErrNoRows):
		return result{}, err
	}
	if int64(r.Seq) == row.headSeq { // the head's report was pruned
		if row.headHash == rj.hash {
			return reject(ReasonReplay, "this report is the gateway's head")
		}
		return reject(ReasonFork, fmt.Sprintf("another report with seq %d is the head", r.Seq))
	}
	prevHex := hex.EncodeToString(r.PrevHash)
	var h string
	err = tx.QueryRowContext(ctx, c.store.q(`SELECT hash FROM reports WHERE gateway_id = ? AND seq = ?`), id, int64(r.Seq)-1).Scan(&h)
	switch {
	case err == nil && h != prevHex:
		return reject(ReasonBrokenChain, fmt.Sprintf("late report: prev_hash does not name the stored report %d", r.Seq-1))
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return result{}, err
	}
	err = tx.QueryRowContext(ctx, c.store.q(`SELECT prev_hash FROM reports WHERE gateway_id = ? AND seq = ?`), id, int64(r.Seq)+1).Scan(&h)
	switch {
	case err == nil && h != rj.hash:
		return reject(ReasonBrokenChain, fmt.Sprintf("late report: the stored report %d does not name it as its predecessor", r.Seq+1))
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return result{}, err
	}
	return c.apply(ctx, tx, acc, OutcomeLate, fmt.Sprintf("seq %d arrived after seq %d", r.Seq, row.headSeq))
}

// accepted is a report whose signature verified and whose place in the
// chain is known.
type accepted struct {
	r       *attest.Report
	env     *attest.Envelope
	hash    string
	pub     ed25519.PublicKey
	trust   string
	row     gwRow
	payload []byte
	now     int64
	missing int64 // new missing seqs (gap)
	verify  time.Duration
}

func (c *Collector) apply(ctx context.Context, tx *sql.Tx, a accepted, outcome, detail string) (result, error) {
	r, id := a.r, a.r.GatewayID
	res := result{kind: "report", outcome: outcome, gateway: id, seq: r.Seq, detail: detail, verify: a.verify}
	if err := c.ensureRow(ctx, tx, id, &a.row, a.now); err != nil {
		return res, err
	}
	nonceHex := hex.EncodeToString(r.Nonce)
	n, err := execN(ctx, tx, c.store.q(`INSERT INTO reports (gateway_id, seq, received_ms, time_ms, hash, prev_hash, kid, verdict, outcome, nonce, envelope)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gateway_id, seq) DO NOTHING`),
		id, int64(r.Seq), a.now, r.TimeMS, a.hash, hex.EncodeToString(r.PrevHash), clean(a.env.Kid), clean(r.Verdict), outcome, nonceHex, a.payload)
	if err != nil {
		return res, err
	}
	if n == 0 { // stored meanwhile by another collector sharing the database
		res.reject, res.detail = ReasonReplay, "already stored"
		_, err := c.insertRejection(ctx, tx, rejection{gateway: id, topic: "modemguard/v1/" + id + "/report", reason: ReasonReplay, detail: "already stored", hash: a.hash, seq: r.Seq, size: len(a.payload)}, a.now)
		return res, err
	}
	if detail != "" {
		if _, err := tx.ExecContext(ctx, c.store.q(`INSERT INTO chain_events (gateway_id, seq, kind, detail, received_ms) VALUES (?, ?, ?, ?, ?)`), id, int64(r.Seq), outcome, detail, a.now); err != nil {
			return res, err
		}
	}
	if len(r.Nonce) > 0 {
		if err := c.answerChallenge(ctx, tx, a, nonceHex); err != nil {
			return res, err
		}
	}
	// missing counts the seqs between the lowest and the highest accepted
	// that have not arrived: exact whatever the arrival order, which with
	// several collectors on a shared subscription is any order.
	missing, firstSeq := a.row.missing+a.missing, a.row.firstSeq
	switch {
	case a.row.headSeq == 0:
		firstSeq = int64(r.Seq)
	case outcome == OutcomeLate && int64(r.Seq) < firstSeq:
		missing += firstSeq - int64(r.Seq) - 1
		firstSeq = int64(r.Seq)
	case outcome == OutcomeLate && missing > 0:
		missing--
	}
	chain := a.row.chain
	if chain != ChainBroken && chain != ChainFork {
		chain = ChainOK
		if missing > 0 {
			chain = ChainGap
		}
	}
	pubB64 := attest.EncodePublicKey(a.pub)
	if outcome == OutcomeLate {
		_, err := tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET missing = ?, first_seq = ?, chain = ?, reports = reports + 1, trust = ?, pubkey = ?, kid = ? WHERE gateway_id = ?`),
			missing, firstSeq, chain, a.trust, pubB64, attest.KeyID(a.pub), id)
		return res, err
	}
	var old []attest.Module
	_ = json.Unmarshal([]byte(a.row.modules), &old)
	first := a.row.headSeq == 0
	for _, ch := range diffModules(old, r.Modules, first) {
		if _, err := tx.ExecContext(ctx, c.store.q(`INSERT INTO module_changes (gateway_id, seq, time_ms, received_ms, kind, imei, old_value, new_value, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			id, int64(r.Seq), r.TimeMS, a.now, ch.Kind, clean(ch.IMEI), clean(ch.Old), clean(ch.New), clean(ch.Detail)); err != nil {
			return res, err
		}
	}
	mods, _ := json.Marshal(r.Modules) // invalid UTF-8 becomes U+FFFD
	if r.Modules == nil {
		mods = []byte("[]")
	}
	synced := int64(0)
	if r.ClockSynced {
		synced = 1
	}
	_, err = tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET trust = ?, kid = ?, pubkey = ?, head_seq = ?, head_hash = ?, first_seq = ?, missing = ?, chain = ?,
		verdict = ?, modules = ?, boot_id = ?, agent_version = ?, report_time_ms = ?, clock_synced = ?, last_seen_ms = ?, reports = reports + 1
		WHERE gateway_id = ?`),
		a.trust, attest.KeyID(a.pub), pubB64, int64(r.Seq), a.hash, firstSeq, missing, chain,
		clean(r.Verdict), string(mods), clean(r.BootID), clean(r.AgentVersion), r.TimeMS, synced, a.now, id)
	return res, err
}

// answerChallenge records the answer to a challenge this collector (or
// `modemguard challenge` with the same database) sent. A nonce nobody
// recorded is kept in the report only.
func (c *Collector) answerChallenge(ctx context.Context, tx *sql.Tx, a accepted, nonceHex string) error {
	var cid, sent, deadline int64
	err := tx.QueryRowContext(ctx, c.store.q(`SELECT id, sent_ms, deadline_ms FROM challenges WHERE gateway_id = ? AND nonce = ? AND outcome IN ('pending', 'timeout')`),
		a.r.GatewayID, nonceHex).Scan(&cid, &sent, &deadline)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	outcome := ChallengeAnswered
	switch {
	case a.r.ClockSynced && a.r.TimeMS < sent-c.cfg.FreshSkew.Milliseconds():
		outcome = ChallengeStale // the nonce is new, so the clock is wrong or the report was held back
	case a.now > deadline:
		outcome = ChallengeLate
	}
	_, err = tx.ExecContext(ctx, c.store.q(`UPDATE challenges SET outcome = ?, answered_ms = ?, seq = ? WHERE id = ?`), outcome, a.now, int64(a.r.Seq), cid)
	return err
}

func execN(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *Collector) ingestStatus(ctx context.Context, tx *sql.Tx, id string, payload []byte, now int64) (result, error) {
	res := result{kind: "status", gateway: clean(id)}
	ignore := func(why string) (result, error) {
		res.outcome, res.detail = "ignored", why
		return res, nil
	}
	if len(payload) == 0 {
		return ignore("empty (a cleared retained status)")
	}
	if len(payload) > maxStatus || !ValidGatewayID(id) {
		return ignore("oversized status or bad gateway id")
	}
	var st Status
	if err := json.Unmarshal(payload, &st); err != nil {
		return ignore("not JSON: " + err.Error())
	}
	if st.GatewayID != "" && st.GatewayID != id {
		return ignore("gateway_id does not match the topic")
	}
	if st.State != "online" && st.State != "offline" {
		return ignore("state is neither online nor offline")
	}
	if err := c.lockGateway(ctx, tx, id); err != nil {
		return res, err
	}
	row, err := c.loadRow(ctx, tx, id)
	if err != nil {
		return res, err
	}
	if _, enrolled := c.enrollment().Gateways[id]; !row.exists && !enrolled && !c.cfg.TOFU {
		return ignore("unknown gateway")
	}
	if st.State == "offline" && row.online == 1 && row.statusBoot != "" &&
		(st.BootID != row.statusBoot || int64(min(st.Conn, 1<<62)) < row.statusConn) {
		// A will that overtook the next birth (docs/wire-format.md).
		return ignore("stale will")
	}
	if err := c.ensureRow(ctx, tx, id, &row, now); err != nil {
		return res, err
	}
	online := int64(0)
	if st.State == "online" {
		online = 1
	}
	depth, dropped := int64(-1), int64(0)
	if st.OutboxDepth != nil {
		depth = int64(*st.OutboxDepth)
	}
	if st.Dropped != nil {
		dropped = int64(min(*st.Dropped, 1<<62))
	}
	_, err = tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET online = ?, status_boot_id = ?, status_conn = ?, status_kid = ?, status_reason = ?, status_ms = ?,
		outbox_depth = CASE WHEN ? = 1 THEN ? ELSE outbox_depth END, dropped = CASE WHEN ? = 1 THEN ? ELSE dropped END WHERE gateway_id = ?`),
		online, clean(st.BootID), int64(min(st.Conn, 1<<62)), clean(st.KeyID), clean(st.Reason), now, online, depth, online, dropped, id)
	if err != nil {
		return res, err
	}
	res.outcome = st.State
	if st.State == "online" && st.PubKey != "" {
		err = c.tofuPin(ctx, tx, id, st, row)
	}
	return res, err
}

// tofuPin trusts a gateway's key on first use: with trust.tofu on, an
// unknown gateway's first birth message pins the public key it announces
// (checked against its key id), marked trust "tofu". An enrolled or already
// pinned gateway, or a key pinned to another gateway, is never changed.
func (c *Collector) tofuPin(ctx context.Context, tx *sql.Tx, id string, st Status, row gwRow) error {
	if !c.cfg.TOFU || row.pubkey != "" {
		return nil
	}
	if _, enrolled := c.enrollment().Gateways[id]; enrolled {
		return nil
	}
	pub, err := attest.ParsePublicKey(st.PubKey)
	if err != nil || attest.KeyID(pub) != st.KeyID {
		c.log.Warn("collector: birth message with an unusable public key; not pinned", "gateway", clean(id))
		return nil
	}
	enc := attest.EncodePublicKey(pub)
	var other string
	switch err := tx.QueryRowContext(ctx, c.store.q(`SELECT gateway_id FROM gateways WHERE pubkey = ? AND gateway_id <> ?`), enc, id).Scan(&other); {
	case err == nil:
		c.log.Warn("collector: birth message announces a key pinned to another gateway; not pinned", "gateway", clean(id), "other", clean(other))
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx, c.store.q(`UPDATE gateways SET trust = ?, pubkey = ?, kid = ? WHERE gateway_id = ?`), "tofu", enc, st.KeyID, id)
	if err == nil {
		c.log.Info("collector: trusting a gateway's key on first use", "gateway", clean(id), "kid", st.KeyID)
	}
	return err
}
