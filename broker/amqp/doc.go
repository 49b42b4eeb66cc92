// Package amqp is hubgate's AMQP 1.0 protocol head: the IoT Hub semantics
// on top of broker/amqp/engine (connections, sessions, links) and
// broker/amqp/wire (the codec). Reference: iothub-protocol.md §4 (AMQP),
// §5 (X.509), §9 items 8–9; OASIS AMQP 1.0 §2 (transport), §3.2 (bare
// messages, encoded with go-amqp's Message), §5.3 (SASL).
//
// Connect flow:
//  1. Serve runs the TLS handshake (a client certificate is requested, not
//     required) under ConnectTimeout in its own goroutine; WebSocket
//     connections (subprotocol AMQPWSB10 on /$iothub/websocket) come through
//     Accept with authn.TransportWebSocket.
//  2. The same deadline covers the protocol header, SASL and open. Without
//     SASL (Node) or with ANONYMOUS / MSSBCBS (.NET, C) the connection holds
//     no credential yet; PLAIN {id}@sas.{hub} is decided at once
//     (authn.Authenticate), PLAIN {policy}@sas.root.{hub} holds a hub-scope
//     policy token (authn.AuthorizePolicy with DeviceConnect), module
//     usernames are refused, EXTERNAL takes the TLS client certificate.
//  3. CBS ($cbs, reference §4.3): put-token on the client's $cbs sender
//     link is decided by authn and answered on the client's $cbs receiver
//     link: correlation-id = message-id with the same AMQP type, int
//     status-code 200 / 401 / 503 (registry unavailable: never a credential
//     failure), status-description. A later put-token renews the device's
//     grant on the same connection; a refused one drops it and detaches its
//     links with amqp:unauthorized-access.
//  4. Links (reference §4.4; addresses amqps://host/..., /... or relative):
//     /devices/{id}/messages/events (client sender) publishes every message
//     on the Bus at devices/{id}/messages/events/{property bag} (reference
//     §3.6), so MQTT service subscribers see AMQP telemetry;
//     /devices/{id}/messages/devicebound (client receiver) is fed by a Bus
//     subscription to devices/{id}/messages/devicebound/#. A link needs a
//     grant for its device: a CBS or PLAIN token, a hub-scope policy token,
//     or the TLS certificate (X.509 identity = certificate + the link's
//     device id). Anything else is refused with amqp:unauthorized-access.
//  5. Grants end when their token (or certificate) expires, or when a
//     registry change no longer allows them (Recheck): their links are
//     detached, and a connection with no grant left is closed.
//
// May import: broker (interfaces, reasons), broker/amqp/engine,
// broker/amqp/wire, authn, registry (types), go-amqp (bare messages only),
// otel API.
package amqp
