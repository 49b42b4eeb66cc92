// Package e2e is hubgate's end-to-end suite: the real `hubgate` binary, real
// sockets, and device and service clients that know nothing about hubgate —
// the official, unmodified Azure IoT Node SDKs (azure-iot-device,
// azure-iot-device-mqtt, azure-iothub; exact versions pinned in
// node/package-lock.json) and Debian's mosquitto_pub. It has no non-test code.
//
// # What it covers
//
//   - SAS devices created with `hubgate device create` connect over MQTT and
//     MQTT over WebSockets with the connection string from
//     `hubgate device connection-string` and send events (TestSASDevice).
//   - X.509: thumbprint (selfSigned) devices with SHA-256 and SHA-1
//     thumbprints over MQTT and WebSockets; CA devices over MQTT after the
//     CA's proof of possession (`ca add` → `ca verification-code` → leaf with
//     CN = code → `ca verify`); refusal of CA devices over WebSockets, under
//     an unverified or unknown CA, or with another device's CN (TestX509Device).
//   - Refusals as the SDK sees them: wrong key, expired token, unknown,
//     disabled and deleted devices end in UnauthorizedError carrying mqtt.js's
//     "Connection refused: Not authorized", i.e. CONNACK 5, at the first
//     attempt (the SDK turns every first-connect failure into
//     UnauthorizedError, so the name alone would prove nothing).
//   - The registry REST API through azure-iothub's Registry: create, get,
//     list, update, delete, and the errors it must map (DeviceNotFoundError,
//     DeviceAlreadyExistsError); a deleted or disabled device is refused; ids
//     with the special characters IoT Hub allows work end to end
//     (TestRegistrySDK).
//   - A plain MQTT 3.1.1/5 client (mosquitto_pub) per refusal reason: bad
//     signature, expired, unknown, disabled, malformed username, client id ≠
//     device, token of another device, no password and no certificate; and
//     QoS 1 publishes to devices/{id}/messages/events/ with a token (MQTT
//     3.1.1 and 5) and with a client certificate (TestPlainMQTT).
//   - The first start's data directory (dev CA, server certificate, owner
//     connection string with mode 0600), and devices plus a verified CA
//     surviving SIGTERM and a restart on the same directory (TestRestart).
//   - The provisioning service (`hubgate dps serve`) with two hubs, "test"
//     and "prod": the seed workflow (a device provisions to test and
//     connects; the operator moves it to prod; test refuses it; the SDK
//     re-provisions and connects to prod), registration over MQTT, AMQP, both over
//     WebSockets, and HTTPS with azure-iot-provisioning-device for individual
//     and group symmetric keys, individual X.509, X.509 CA groups (signing
//     certificate, and a CA reference verified by proof of possession),
//     disabled enrollments, revocation with and without cascade, and the
//     azure-iot-provisioning-service client's CRUD with etags (TestDPS,
//     127.0.0.30–32). BenchmarkDPS* measure registrations/s and the move.
//
// # How it runs
//
// TestMain builds ./cmd/hubgate once into a temporary directory. Each test
// starts its own `hubgate serve` with a fresh data directory on its own
// loopback address (127.0.0.10–127.0.0.19, standard ports 8883, 443 and
// 9090 on that address) and its own host name (hub-*.hubgate.test), waits
// for GET /readyz to answer 200, and stops it with SIGTERM in t.Cleanup
// (which also asserts a clean exit). Admin commands run through the binary's
// CLI with HUBGATE_CONNECTION_STRING and HUBGATE_CA_FILE set and
// --hub-address pointing at the hub's address.
//
// Node runs the small drivers in node/ (device.js, registry.js), each of
// which prints exactly one JSON line and exits 0 whatever happened, bounding
// itself with a timeout so a hang is reported, not waited on. They are
// started as `node -r ./hosts.js`: hosts.js resolves the names listed in
// HUBGATE_TEST_HOSTS (name=ip,...) inside Node, so the SDKs dial the test
// hub by name (SNI, MQTT username and SAS sr all carry the name, as with a
// real hub) without touching /etc/hosts. NODE_EXTRA_CA_CERTS makes Node
// trust the hub's generated dev CA. Device certificates are minted in the
// tests with internal/pki.
//
// # Running it
//
//	npm ci --prefix internal/e2e/node   # once, or after the lockfile changes
//	go test ./internal/e2e/             # (make test does both)
//
// It needs node (18 or later) and mosquitto_pub (Debian: mosquitto-clients)
// in PATH, permission to bind port 443 (root or CAP_NET_BIND_SERVICE), and
// fails — never skips — when something is missing. With -v each Node
// verdict is in the failure message; a failing test also prints the tail of
// its hub's log.
package e2e
