// Package redisstore is the registry.Store for hubs of several nodes: the
// devices, CAs and policies of a hub in Redis (standalone, Sentinel or
// Cluster, through go-redis's UniversalClient), and the hub's change feed
// and session claims over Redis pub/sub.
//
// Imports: registry (types), go-redis and the standard library. Package
// registry itself never imports this one (registry's TestDeps).
//
// # Key layout
//
// Every key of hub H starts with "hubgate:{H'}:", where H' is H with every
// byte outside [A-Za-z0-9._-] percent-encoded (so a name cannot close the
// hash tag or fake a separator):
//
//	hubgate:{H'}:dev:<device id>   hash  etag → etag, json → the Device as the REST API shows it
//	hubgate:{H'}:devices           zset  every device id, score 0 (lexical order = byte order)
//	hubgate:{H'}:ca:<name>         hash  etag, json → the CA
//	hubgate:{H'}:cas               zset  every CA name, score 0
//	hubgate:{H'}:policies          hash  key name → the Policy as JSON
//
// Key names hold only ids and names, never credential material (keys and
// thumbprints live in the values).
//
// One slot per hub. The hash tag {H'} puts all of a hub's keys in one
// Cluster slot, so one script can check a record's etag, write it, keep the
// id index in step and publish the event, atomically; listing is then a
// ZRANGEBYLEX on an index that is always exact (no dangling or missing ids,
// no repair pass). The cost is that one hub does not spread over Cluster
// shards: a hub's registry lives on one master (plus its replicas), and
// different hubs spread. We accept it because the registry is small per
// device (about 1 KB; a million devices is about 1 GB), read-mostly, and
// read through each node's in-process cache, so Redis sees one read per
// cache miss and one script per admin write. Cluster here buys failover and
// room for many hubs, not per-hub throughput. If a single hub ever outgrows
// a shard, the way out is N bucket tags per hub ({H'/b}) each with its own
// index, listing by merging N ranges; nothing else would change.
//
// # Scripts
//
// Writes are Lua scripts (scripts.go), run with EVALSHA and EVAL on
// NOSCRIPT: create (fails if the record exists), replace (compare-and-set
// on the etag), delete (unconditional or compare-and-set), each maintaining
// the index and publishing the change in the same script; and
// EnsurePolicies (HSETNX per policy, then HGETALL), so two nodes starting
// at once on an empty Redis end with one set of keys, the first writer's.
// Go never reads a record to decide a write; Registry chooses etags and
// keys above the store and the scripts only compare and set.
//
// Reads: Device and CA are one HGET. Devices(after, limit) is a
// ZRANGEBYLEX from "(after" with LIMIT, then one pipeline of HGETs, per
// batch of at most 1000: no KEYS, no SCAN of the keyspace, no command that
// walks the whole hub. Policies is one HGETALL.
//
// # Channels
//
//	hubgate:{H'}:changes    {"kind":"device"|"ca"|"policy","id":…,"etag":…,"deleted":true}
//	hubgate:{H'}:sessions   {"deviceId":…,"node":…}
//
// Every successful write publishes its registry.Change on the changes
// channel from inside its script: no acknowledged write without its event,
// no event without its write, and events of one hub in write order (one
// slot, one master). A refused write publishes nothing. ClaimSessionss
// publishes on the sessions channel; every node receives it, the sender
// included. Watch subscribes to both, re-subscribes by itself with
// back-off after a disconnect (detected by the connection closing, or by an
// unanswered PING after 5 s of silence), and calls Handler.Resubscribed
// after every subscribe: events published while a node was not subscribed
// are lost (pub/sub is at-most-once), and the node must flush its cache.
//
// # Consistency and failure
//
// Writes are linearisable per record on the master; with Sentinel or
// Cluster failover an acknowledged write may be lost if it had not reached
// the promoted replica (Redis replication is asynchronous; hubgate adds no
// replication of its own). Reads go to the master.
//
// A dead or unreachable Redis fails fast: 200 ms dial, read and write
// timeouts, one dial attempt, no command retries (a retried write script
// whose first attempt was applied would report a spurious etag mismatch),
// and the caller's context deadline honoured on the socket. Every backend
// failure wraps registry.ErrUnavailable, never ErrDeviceNotFound: the
// connect path refuses with "server unavailable", not "bad credentials"
// (DESIGN.md rule 6). A write that fails with a timeout may still have
// been applied (the script reached Redis, the reply did not come back): the
// caller re-reads before retrying. The client reconnects by itself when
// Redis returns.
//
// Commands counts every command sent (a go-redis hook; pipelined commands
// count one each), so benchmarks can show one command per cache miss and
// none per hit.
package redisstore
