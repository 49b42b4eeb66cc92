// Package redisstore keeps the provisioning service's records in Redis, so
// several `hubgate dps serve` nodes can share enrollments, linked hubs and
// registration records. One hash per record kind,
// hubgate:dps:{namespace}:{kind}, field = id, value = the JSON document.
// Writes are single commands (HSET/HDEL), atomic on their own; the service
// serialises its etag checks per process, so concurrent admin writes to the
// same enrollment from two nodes are last-writer-wins (registration writes
// are per device and idempotent).
//
// It lives apart from package provisioning so that the service imports no
// Redis client. May import: provisioning, registry/redisstore (URL parsing),
// go-redis.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubgate/hubgate/provisioning"
	hubredis "github.com/hubgate/hubgate/registry/redisstore"
)

// Store is a provisioning.Store on Redis.
type Store struct {
	c      redis.UniversalClient
	prefix string
	// timeout bounds each command; a hung Redis fails the request with
	// provisioning.ErrUnavailable instead of holding it.
	timeout time.Duration
}

var _ provisioning.Store = (*Store)(nil)

// Open connects to the Redis of url (redis://, rediss://,
// redis+sentinel://, redis+cluster://, as `hubgate serve --redis-url`) and
// pings it once under ctx. namespace separates services sharing one Redis.
func Open(ctx context.Context, url, namespace string) (*Store, error) {
	uo, err := hubredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	uo.ContextTimeoutEnabled = true // our per-command deadline also bounds reads of a hung server
	s := &Store{c: redis.NewUniversalClient(uo), prefix: "hubgate:dps:{" + namespace + "}:", timeout: 2 * time.Second}
	if err := s.c.Ping(ctx).Err(); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("%w: redis: %v", provisioning.ErrUnavailable, err)
	}
	return s, nil
}

func (s *Store) key(kind string) string { return s.prefix + kind }

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func unavailable(err error) error {
	return fmt.Errorf("%w: redis: %v", provisioning.ErrUnavailable, err)
}

// Get returns one document.
func (s *Store) Get(ctx context.Context, kind, id string) ([]byte, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	b, err := s.c.HGet(ctx, s.key(kind), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, provisioning.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// Put creates or replaces a document.
func (s *Store) Put(ctx context.Context, kind, id string, doc []byte) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.c.HSet(ctx, s.key(kind), id, doc).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Delete removes a document.
func (s *Store) Delete(ctx context.Context, kind, id string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.c.HDel(ctx, s.key(kind), id).Result()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return provisioning.ErrNotFound
	}
	return nil
}

// List returns every document of kind ordered by id.
func (s *Store) List(ctx context.Context, kind string) ([][]byte, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.c.HGetAll(ctx, s.key(kind)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, []byte(m[id]))
	}
	return out, nil
}

// Close closes the client; it is idempotent.
func (s *Store) Close() error {
	err := s.c.Close()
	if errors.Is(err, redis.ErrClosed) {
		return nil
	}
	return err
}
