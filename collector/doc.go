// Package collector is the central side of modemguard: it receives the
// fleet's signed reports over MQTT, verifies each one, keeps the inventory
// in a database and serves it as a JSON API, a web page and Prometheus
// metrics. It runs next to the broker, not on a gateway. docs/collector.md
// is the operator's guide; docs/wire-format.md the contract with gateways.
//
// # Flow and ownership
//
// One MQTT connection (mqttLoop; a new paho client per connection, with a
// jittered backoff between attempts) subscribes to modemguard/v1/+/report,
// optionally through the shared subscription $share/<group>/..., and to
// modemguard/v1/+/status. Its handler only queues messages in a bounded
// channel. One goroutine (pipeline) takes them in order and calls Ingest,
// which judges and stores a message in one database transaction and
// acknowledges it to the broker only after the commit. While the database
// fails the pipeline retries the same message with backoff; the channel
// fills and, as nothing is acknowledged, the broker stops sending beyond
// its in-flight window: that is the back-pressure.
//
// # Judging a report
//
// Ingest checks size and shape, finds the key (the enrollment file, or a
// key pinned by trust-on-first-use), then runs an attest.Verifier set to
// the gateway's head as stored in the database, so a restart, or another
// collector sharing the database, keeps the chain. The database decides
// what the verifier's one-entry memory cannot: a seq already stored with
// the same body is a replay, with another body a fork; an older seq not
// stored is a late arrival (accepted, not applied). Rejections are stored
// with their reason and never touch the inventory or the chain head;
// forks and broken links mark the gateway's chain until an operator acts.
//
// With PostgreSQL a transaction-scoped advisory lock per gateway serialises
// collectors judging reports of the same gateway; SQLite serialises all
// writers (BEGIN IMMEDIATE).
//
// # What it never does
//
// It imports neither agent/, uplink/ nor simulator/: the status JSON is
// mirrored in Status. It never prints; events go to the injected
// *slog.Logger.
package collector
