// Package engine runs one AMQP 1.0 connection over a net.Conn the caller
// hands it: protocol header exchange (OASIS AMQP 1.0 §2.2), the optional
// SASL layer (§5.3: mechanisms → init → outcome, one deadline for all of
// it), open/close with heartbeats driven by both idle-time-outs (§2.4.1,
// §2.4.5), sessions with transfer windows (§2.5.6, §2.7.2, §2.7.4), links
// with credit, drain and echo (§2.6.7, §2.6.8, §2.7.3, §2.7.4), multi-frame
// transfers (§2.6.14), settlement in both sender and receiver modes echoed
// from the peer's attach (§2.6.12, §2.8.2, §2.8.3), dispositions (§2.7.6),
// detach/end (§2.6.5, §2.5.5) and size limits (max-frame-size,
// max-message-size).
//
// It knows nothing about IoT Hub: a Handler decides SASL, attaches and what
// messages mean. Errors from the peer's bytes close the connection with
// amqp:decode-error or amqp:connection:framing-error (§2.8.15–16), never a
// panic or a hang: every read has a deadline.
//
// Concurrency: Run owns the connection and reads frames in the caller's
// goroutine. One mutex (Conn.mu) guards all session/link state and the
// writer; Handler callbacks run without it. Link.Send may be called from
// any goroutine: it queues, and a short-lived pump goroutine writes what
// the peer's credit allows, so a publisher never waits on a slow peer.
// Timers (heartbeat) are time.AfterFunc; an idle connection costs one
// goroutine.
//
// May import: broker/amqp/wire and the standard library.
package engine
