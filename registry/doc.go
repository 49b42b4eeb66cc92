// Package registry is a hub's device registry: the Device, CA and Policy
// model with IoT Hub's JSON shapes (reference §7.3), the Store contract and
// the embedded FileStore, the Registry service that validates and completes
// records, the read-through Cache the connect path uses, and change events.
//
// Imports: the standard library only. No network code (no net/http, no
// go-redis, no MQTT or WebSocket packages); TestDeps keeps it so. The REST
// API lives in registry/httpapi, a Redis Store in its own package.
//
// Flow of a write: Registry validates the request (reference §7.3 id and
// credential rules), fills in what the hub fills in (generationId, a new
// weak etag on every write, keys for a sas device created with empty keys),
// stores it with the store's etag compare-and-set, then calls every
// Subscribe callback synchronously with a Change. An update with If-Match
// "", * or "*" is unconditional and retried on a lost compare-and-set so no
// write is lost; any other If-Match is compared after stripping quotes and
// W/ (reference §7.4).
//
// Flow of a connect: authn asks a Cache for the device by id. Hits are
// served from memory; concurrent misses for one id share one store read;
// ErrDeviceNotFound is cached briefly; ErrUnavailable is never cached.
// Cache.Apply, subscribed to the Registry (or to Redis pub/sub), drops
// entries on change, and a read that raced an invalidation is not cached.
//
// CA proof of possession: AddCA registers a CA certificate (unverified unless
// told otherwise); VerificationCode issues a random code; VerifyCA accepts a
// certificate signed by the CA's key with CN equal to the code and marks the
// CA verified. VerifiedCAPool is the in-memory pool of verified CAs that
// device chains are checked against (DESIGN.md rule 1).
package registry
