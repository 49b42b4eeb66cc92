// Package provisioning is hubgate's Device Provisioning Service (DPS): the
// enrollment model (individual enrollments and enrollment groups, with
// symmetric-key and X.509 attestation), attestation of devices, allocation
// to linked hubs (hashed, static, custom webhook), creation of the device
// identity in the chosen hub through that hub's registry REST API, and the
// registration protocol over MQTT (mochi-mqtt, also over WebSockets),
// AMQP (package amqphead) and HTTPS (reference §6.1, §6.3, §6.4), plus the service REST API the
// azure-iot-provisioning-service client speaks (api-version 2021-10-01,
// reference §7.6).
//
// Flow: a device connects with its ID scope and registration id and a SAS
// token (sr={idScope}/registrations/{id}, skn=registration, signed with the
// enrollment key or the key derived from its group's, §2.6) or a client
// certificate whose CN is the registration id. Register attests it, answers
// 202 "assigning" with an operation id and retry-after, and assigns in the
// background: pick the hub, create or update the identity there (sas with
// the enrollment or derived keys; selfSigned with the presented leaf's
// SHA-256 in both slots for every X.509 device, DESIGN rule 2), delete it
// from the hub it leaves, record the outcome. The device polls the operation
// until it is assigned or failed.
//
// Re-provisioning: an enrollment change that takes a device's hub away moves
// the device at once (Reassign), which makes the old hub refuse it and close
// its sessions; the device then re-provisions. Revocation (disable, delete)
// leaves hub identities alone (DESIGN rule 5) unless the caller asks for a
// cascade.
//
// AMQP registration (§6.2) is package amqphead, on the hub's AMQP engine.
//
// Several nodes can share one Redis (package redisstore): enrollments, hubs
// and registration records are shared; a poll for an operation another
// node runs is answered from the registration record ("assigning" until
// the record names it).
//
// X.509 groups attest through signingCertificates (a root or intermediate
// uploaded with the group) or caReferences (CAs registered with the service
// under /certificates; only verified ones count: proof of possession, or
// an operator who vouches at upload).
//
// Not supported (yet): TPM attestation, applying initialTwin tags
// and desired properties to the hub identity (hubgate's hub has no twins;
// the initial twin is stored and passed to custom webhooks only), and the
// query language of the query endpoints (they list everything). "Migrating
// device data" carries the old identity's status and capabilities.
//
// Imports: authn (SAS parsing), registry (device types), internal/hubclient
// (hub REST), mochi-mqtt. It never listens: cmd/hubgate builds listeners and
// hands them to MQTT.Serve and the HTTP handler.
package provisioning
