// Package authn decides whether a connecting device, module or service client
// may proceed. It is pure: it parses and verifies SAS tokens, matches X.509
// thumbprints, verifies X.509 CA chains and applies the transport rules, and
// it reaches the registry only through three small interfaces its caller
// provides (DeviceSource, PolicySource, CASource). It never listens, dials or
// logs; protocol heads (broker/, provisioning/, the registry REST API) call it
// and map its sentinel errors to CONNACK codes, AMQP conditions and HTTP
// statuses, and count and log the decision.
//
// # Imports
//
// The standard library (crypto, encoding, strings, time) and the registry
// types. No network head, no mochi-mqtt, AMQP, go-redis, WebSocket,
// net/http or OpenTelemetry: TestDeps enforces it. crypto/x509 brings in
// package net (for IP SANs); that is allowed, it opens nothing.
//
// # Decision flow (Authenticate)
//
// Cheap refusals come first; the registry lookup (a cache hit, or one Redis
// round trip) comes as late as possible; chain building comes last.
//
// Refusal sentinel in brackets:
//
//	request shape   transport known (ErrTransportNotAllowed); no module id
//	                (ErrModuleNotSupported); a device id (ErrUnknownDevice);
//	                a token or a certificate (ErrNoCredential). A token wins
//	                when both are present (edgeHub: password present → SAS).
//	SAS token       ParseSAS (ErrMalformedToken)
//	(reference §2)  se + ClockSkew < now (ErrExpiredToken)
//	                sr percent-decoded; host ∈ Config.HostNames, any case,
//	                ":port" ignored (ErrWrongHost)
//	                module path (ErrModuleNotSupported)
//	  device key    path exactly devices/{id}, id case-sensitive (ErrWrongAudience)
//	                device lookup (ErrUnknownDevice, ErrRegistryUnavailable, ErrDisabled)
//	                type sas (ErrAuthTypeMismatch)
//	                HMAC with primary, then secondary key (ErrBadSignature)
//	  policy (skn)  path a segment prefix of devices/{id} (ErrWrongAudience)
//	                policy known (ErrUnknownPolicy); HMAC with its primary,
//	                then secondary key (ErrBadSignature) — before any lookup
//	                DeviceConnect (ErrPolicyRights)
//	                device lookup as above; type sas (ErrAuthTypeMismatch)
//	X.509           device lookup first: the registered type picks the check
//	(reference §5)  sas, none (ErrAuthTypeMismatch)
//	  selfSigned    leaf validity, NotBefore with ClockSkew leeway (ErrCertificateExpired)
//	                SHA-1 or SHA-256 of the leaf DER = primary, then secondary
//	                thumbprint, any hex case (ErrThumbprintMismatch);
//	                no chain and no CN check, as in IoT Hub
//	  CA            WebSocket transport (ErrTransportNotAllowed, DESIGN.md rule 3)
//	                leaf CN = device id, ordinal (ErrCommonNameMismatch)
//	                leaf validity (ErrCertificateExpired)
//	                x509 Verify: roots CASource.VerifiedCAPool, the rest of the
//	                presented chain as intermediates, client-auth EKU, Now
//	                (ErrUntrustedChain, ErrCertificateExpired)
//
// Any DeviceSource failure other than registry.ErrDeviceNotFound becomes
// ErrRegistryUnavailable: it says nothing about the credential (DESIGN.md
// rule 6). Error texts are static and never contain keys, signatures or
// token text.
//
// The Identity returned carries no secret. For a SAS device-key session it
// holds the SHA-256 of the key that matched, for a thumbprint session the
// hashes of the leaf, so StillAllowed can re-check a live session against a
// changed device record (DESIGN.md rule 4) without keeping credentials.
//
// AuthorizePolicy is the service-side counterpart: a policy token whose sr is
// one of our host names or a path under it, with the rights the caller needs
// (registry REST API, service MQTT clients).
//
// The lower-level pieces (ParseSAS, SAS.Verify, SAS.Audience, Sign,
// EncodeResource, ParseMQTTUsername, Thumbprints) are exported for the AMQP
// head, DPS and the CLI.
package authn
