// Package broker holds hubgate's device-facing protocol heads. Today that is
// the MQTT head: mochi-mqtt embedded with exactly one hook that authenticates
// every CONNECT through authn and authorises every topic from the identity it
// holds in memory; and the WebSocket endpoint `/$iothub/websocket` on the HTTPS
// listener that hands upgraded connections to the matching head by
// subprotocol (`mqtt`, any case).
//
// The heads never listen: cmd builds the listeners and hands them over
// (MQTT.Serve(ln), MQTT.Accept(conn, transport)).
//
// Connect flow (reference §3.1–3.2, DESIGN.md "The connect path"):
//  1. The TLS handshake runs under the pre-CONNECT deadline; a client
//     certificate is requested, not required.
//  2. CONNECT: the username is parsed (authn.ParseMQTTUsername), the client id
//     must equal the identity, the password is a SAS token; with no password
//     the TLS peer chain is the credential.
//  3. authn decides. Refusals answer CONNACK 5 (v5: 0x87); only "registry
//     unavailable" answers CONNACK 3 (v5: 0x88) [MQTT-3.2.2-3].
//  4. Admitted sessions enter the session table with the token's expiry; the
//     session ends when the token does. Registry change events re-check live
//     sessions (Recheck) and close those the new record no longer allows.
//
// Topics (reference §3.5) are authorised in memory: a device publishes only
// under devices/{id}/messages/events/ and its own $iothub request topics, and
// subscribes only to its own devicebound, methods and twin filters. Service
// clients (client id "$service:<anything>", password a policy SAS token with
// ServiceConnect) subscribe to devices/+/messages/events/# and publish
// cloud-to-device messages to devices/{id}/messages/devicebound/...
//
// May import: authn, registry (types), mochi-mqtt, gorilla/websocket, otel API.
package broker
