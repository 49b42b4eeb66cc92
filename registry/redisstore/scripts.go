package redisstore

import "github.com/redis/go-redis/v9"

// The write scripts. Each runs atomically in Redis: the etag comparison,
// the write, the index update and the PUBLISH of the change happen together
// or not at all, so no write is acknowledged without its event and no event
// describes a write that did not happen. go-redis Script sends EVALSHA and
// falls back to EVAL when the server answers NOSCRIPT (after a restart or
// failover). All KEYS of a call share the hub's hash tag (one Cluster slot).
// The channel is an argument, not a key: PUBLISH is not slot-bound.
//
// Results: 1 written, 0 etag mismatch (create: exists), -1 not found.
var (
	// KEYS[1] record hash, KEYS[2] index zset.
	// ARGV[1] id, ARGV[2] etag, ARGV[3] record JSON, ARGV[4] channel, ARGV[5] change.
	createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'etag', ARGV[2], 'json', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

	// KEYS as createScript.
	// ARGV[1] id, ARGV[2] expected etag, ARGV[3] new etag, ARGV[4] record JSON,
	// ARGV[5] channel, ARGV[6] change.
	replaceScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'etag')
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'etag', ARGV[3], 'json', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`)

	// KEYS as createScript.
	// ARGV[1] id, ARGV[2] expected etag or '' for any, ARGV[3] channel, ARGV[4] change.
	deleteScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'etag')
if not cur then return -1 end
if ARGV[2] ~= '' and cur ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

	// KEYS[1] policies hash (name -> policy JSON).
	// ARGV[1] channel, then triples: name, policy JSON, change.
	// Stores each absent policy, publishes its change, returns HGETALL.
	ensurePoliciesScript = redis.NewScript(`
for i = 2, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i+1]) == 1 then
    redis.call('PUBLISH', ARGV[1], ARGV[i+2])
  end
end
return redis.call('HGETALL', KEYS[1])
`)
)
