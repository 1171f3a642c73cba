// Package uplink carries attestation envelopes to the collector: a durable
// outbox on disk and an MQTT 3.1.1 session (paho.mqtt.golang) that drains
// it. It does not build report content (attest/ and agent/ do); it treats
// payloads as opaque bytes keyed by their report seq.
//
// # The outbox
//
// Outbox is one bbolt file. Enqueue returns after the entry is committed
// with fsync, so a report counts as made only once it is on disk; a crash,
// SIGKILL or power cut after that loses nothing. Entries leave in only two
// ways: Ack, after the broker's PUBACK for that exact publish, or a drop
// when the outbox is over MaxBytes, MaxEntries or MaxAge (oldest first,
// counted in OutboxStats.Dropped, persisted, and logged). The agent reports
// the drop count in its next report. A file bbolt cannot read is renamed
// aside with an error log line and a fresh outbox started: a damaged file
// never causes a crash loop.
//
// # Delivery
//
// Uplink.Run owns the connection. It connects with a fresh paho client each
// time (clean session, no paho auto-reconnect: the outbox, not paho's
// store, is the system of record — libraries.md §1.5), subscribes to the
// challenge topic, publishes a retained "online" status, then publishes the
// outbox in seq order, InFlight at a time, QoS 1, and removes an entry only
// when its own token completed without error while the connection epoch
// (counted in paho's OnConnect handler) stayed the same. After a lost
// connection it waits an exponential, jittered backoff and starts again
// from the oldest entry, so every report not acknowledged is resent in seq
// order; the collector removes duplicates by (gateway_id, seq). Every wait
// has a timeout; Enqueue never waits for the network. To flush on shutdown,
// wait on Outbox.WaitEmpty with a deadline before cancelling Run.
//
// Topics, for gateway G: modemguard/v1/G/report (envelopes, QoS 1, not
// retained), modemguard/v1/G/status (retained JSON Status; the Last Will
// says "offline", and Run publishes a retained "offline" itself on a clean
// shutdown since a will is not sent then), modemguard/v1/G/challenge (a
// non-retained payload of 8 to 64 bytes is a nonce handed to
// Config.OnChallenge).
//
// # Goroutines
//
// Run starts one goroutine of its own (the challenge dispatcher) and waits
// for it before returning; paho's goroutines end with each client's
// Disconnect.
package uplink
