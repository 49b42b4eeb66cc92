package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/hubgate/hubgate/registry"
)

// Store is the Redis registry.Store of one hub. It is safe for concurrent
// use; several Stores (one per node) may share one Redis and hub name.
type Store struct {
	c    redis.UniversalClient
	keys keyspace
	log  *slog.Logger
	cmds atomic.Uint64 // commands sent, counted by the hook

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	closeErr  error         // written once under closeOnce
}

var _ registry.Store = (*Store)(nil)

// Open connects to Redis and returns the Store of hub o.Hub. It pings the
// server once under ctx so a wrong address or password fails at start-up;
// the error wraps registry.ErrUnavailable when Redis does not answer.
func Open(ctx context.Context, o Options) (*Store, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	uo := o.Universal
	if o.URL != "" {
		var err error
		if uo, err = ParseURL(o.URL); err != nil {
			return nil, err
		}
	}
	uo = withDefaults(uo)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Store{
		c:      redis.NewUniversalClient(uo),
		keys:   newKeyspace(o.Hub),
		log:    o.Logger.With("hub", o.Hub),
		closed: make(chan struct{}),
	}
	s.c.AddHook(counter{&s.cmds})
	if err := s.Ping(ctx); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", strings.Join(uo.Addrs, ","), err)
	}
	return s, nil
}

// Close releases the client; it is idempotent. Later calls return errors
// wrapping registry.ErrUnavailable and Watch returns.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeErr = s.c.Close()
	})
	return s.closeErr
}

// Ping checks that Redis answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.open(); err != nil {
		return err
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Commands is the number of Redis commands this Store has sent (each
// command of a pipeline counts; an EVALSHA answered NOSCRIPT and the EVAL
// after it count two). Benchmarks divide it by b.N.
func (s *Store) Commands() uint64 { return s.cmds.Load() }

func (s *Store) open() error {
	select {
	case <-s.closed:
		return fmt.Errorf("%w: redisstore: store is closed", registry.ErrUnavailable)
	default:
		return nil
	}
}

// unavailable wraps a backend failure: the registry could not answer, which
// is never a statement about the device (DESIGN.md rule 6).
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redisstore: %s: %w", registry.ErrUnavailable, op, err)
}

// Stored record fields. A record is a hash so the scripts can compare the
// etag without decoding JSON; the JSON is the whole record as the REST API
// shows it (its etag field equals the etag field of the hash).
const (
	fieldEtag = "etag"
	fieldJSON = "json"
)

// kind describes one record type's keys, events and errors, so devices and
// CAs share one implementation of get, create, replace and delete.
type kind struct {
	what     string // "device", "CA": for errors
	change   registry.ChangeKind
	key      func(keyspace, string) string
	index    func(keyspace) string
	notFound error
	exists   error
}

var (
	deviceKind = kind{what: "device", change: registry.ChangeDevice, key: keyspace.device,
		index: keyspace.deviceIndex, notFound: registry.ErrDeviceNotFound, exists: registry.ErrDeviceExists}
	caKind = kind{what: "CA", change: registry.ChangeCA, key: keyspace.ca,
		index: keyspace.caIndex, notFound: registry.ErrCANotFound, exists: registry.ErrCAExists}
)

// get reads one record: one HGET.
func get[T any](ctx context.Context, s *Store, k kind, id string) (T, error) {
	var v T
	if err := s.open(); err != nil {
		return v, err
	}
	b, err := s.c.HGet(ctx, k.key(s.keys, id), fieldJSON).Bytes()
	if errors.Is(err, redis.Nil) {
		return v, k.notFound
	}
	if err != nil {
		return v, unavailable("get "+k.what, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		// A record this code cannot read is a backend fault, not an
		// unknown record: fail closed as unavailable.
		return v, unavailable("get "+k.what, fmt.Errorf("%s %q: undecodable record: %w", k.what, id, err))
	}
	return v, nil
}

// create stores a new record and publishes its change in one script.
func (s *Store) create(ctx context.Context, k kind, id, etag string, v any) error {
	rec, msg, err := encode(v, registry.Change{Kind: k.change, ID: id, Etag: etag})
	if err != nil {
		return err
	}
	n, err := s.run(ctx, "create "+k.what, createScript,
		[]string{k.key(s.keys, id), k.index(s.keys)},
		id, etag, rec, s.keys.changes(), msg)
	switch {
	case err != nil:
		return err
	case n == 0:
		return fmt.Errorf("%w: %q", k.exists, id)
	}
	return nil
}

// replace compares the stored etag with prevEtag and swaps the record.
func (s *Store) replace(ctx context.Context, k kind, id, prevEtag, etag string, v any) error {
	rec, msg, err := encode(v, registry.Change{Kind: k.change, ID: id, Etag: etag})
	if err != nil {
		return err
	}
	n, err := s.run(ctx, "replace "+k.what, replaceScript,
		[]string{k.key(s.keys, id), k.index(s.keys)},
		id, prevEtag, etag, rec, s.keys.changes(), msg)
	return s.casResult(k, id, n, err)
}

// remove deletes a record when prevEtag is "" or matches.
func (s *Store) remove(ctx context.Context, k kind, id, prevEtag string) error {
	_, msg, err := encode(nil, registry.Change{Kind: k.change, ID: id, Deleted: true})
	if err != nil {
		return err
	}
	n, err := s.run(ctx, "delete "+k.what, deleteScript,
		[]string{k.key(s.keys, id), k.index(s.keys)},
		id, prevEtag, s.keys.changes(), msg)
	return s.casResult(k, id, n, err)
}

// casResult maps a replace/delete script's answer: -1 missing, 0 etag
// mismatch, 1 done.
func (s *Store) casResult(k kind, id string, n int64, err error) error {
	switch {
	case err != nil:
		return err
	case n < 0:
		return k.notFound
	case n == 0:
		return fmt.Errorf("%w: %s %q", registry.ErrPreconditionFailed, k.what, id)
	}
	return nil
}

// Device implements registry.Store: one HGET.
func (s *Store) Device(ctx context.Context, id string) (registry.Device, error) {
	return get[registry.Device](ctx, s, deviceKind, id)
}

// CreateDevice implements registry.Store.
func (s *Store) CreateDevice(ctx context.Context, d registry.Device) error {
	return s.create(ctx, deviceKind, d.DeviceID, d.Etag, d)
}

// ReplaceDevice implements registry.Store.
func (s *Store) ReplaceDevice(ctx context.Context, d registry.Device, prevEtag string) error {
	return s.replace(ctx, deviceKind, d.DeviceID, prevEtag, d.Etag, d)
}

// DeleteDevice implements registry.Store.
func (s *Store) DeleteDevice(ctx context.Context, id, prevEtag string) error {
	return s.remove(ctx, deviceKind, id, prevEtag)
}

// listBatch bounds one ZRANGEBYLEX and the pipeline of reads after it, so
// no single command makes Redis walk or return an unbounded amount.
const listBatch = 1000

// Devices implements registry.Store: a ZRANGEBYLEX on the id index from
// after (exclusive) and a pipeline of HGETs, two round trips per batch of
// up to 1000. Ids deleted between the two are skipped and the range is
// continued, so a page is short only at the end of the registry.
func (s *Store) Devices(ctx context.Context, after string, limit int) ([]registry.Device, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	out := []registry.Device{}
	for len(out) < limit {
		want := min(limit-len(out), listBatch)
		lo := "-"
		if after != "" {
			lo = "(" + after
		}
		ids, err := s.c.ZRangeByLex(ctx, s.keys.deviceIndex(), &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(want)}).Result()
		if err != nil {
			return nil, unavailable("list devices", err)
		}
		if len(ids) == 0 {
			break
		}
		recs, err := s.hgetJSON(ctx, "list devices", ids, s.keys.device)
		if err != nil {
			return nil, err
		}
		for i, b := range recs {
			if b == nil {
				continue // deleted after the index read
			}
			var d registry.Device
			if err := json.Unmarshal(b, &d); err != nil {
				return nil, unavailable("list devices", fmt.Errorf("device %q: undecodable record: %w", ids[i], err))
			}
			out = append(out, d)
		}
		after = ids[len(ids)-1]
		if len(ids) < want {
			break
		}
	}
	return out, nil
}

// hgetJSON reads the json field of the records named by ids in one
// pipeline; a missing record gives nil.
func (s *Store) hgetJSON(ctx context.Context, op string, ids []string, key func(string) string) ([][]byte, error) {
	pipe := s.c.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, key(id), fieldJSON)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(op, err)
	}
	out := make([][]byte, len(ids))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, unavailable(op, err)
		default:
			out[i] = b
		}
	}
	return out, nil
}

// CA implements registry.Store.
func (s *Store) CA(ctx context.Context, name string) (registry.CA, error) {
	return get[registry.CA](ctx, s, caKind, name)
}

// CreateCA implements registry.Store.
func (s *Store) CreateCA(ctx context.Context, ca registry.CA) error {
	return s.create(ctx, caKind, ca.Name, ca.Etag, ca)
}

// ReplaceCA implements registry.Store.
func (s *Store) ReplaceCA(ctx context.Context, ca registry.CA, prevEtag string) error {
	return s.replace(ctx, caKind, ca.Name, prevEtag, ca.Etag, ca)
}

// DeleteCA implements registry.Store.
func (s *Store) DeleteCA(ctx context.Context, name, prevEtag string) error {
	return s.remove(ctx, caKind, name, prevEtag)
}

// CAs implements registry.Store; a hub has few CAs, so this reads the
// whole index (in batches) and then the records.
func (s *Store) CAs(ctx context.Context) ([]registry.CA, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	out := []registry.CA{}
	after := ""
	for {
		lo := "-"
		if after != "" {
			lo = "(" + after
		}
		names, err := s.c.ZRangeByLex(ctx, s.keys.caIndex(), &redis.ZRangeBy{Min: lo, Max: "+", Count: listBatch}).Result()
		if err != nil {
			return nil, unavailable("list CAs", err)
		}
		if len(names) == 0 {
			return out, nil
		}
		recs, err := s.hgetJSON(ctx, "list CAs", names, s.keys.ca)
		if err != nil {
			return nil, err
		}
		for i, b := range recs {
			if b == nil {
				continue
			}
			var ca registry.CA
			if err := json.Unmarshal(b, &ca); err != nil {
				return nil, unavailable("list CAs", fmt.Errorf("CA %q: undecodable record: %w", names[i], err))
			}
			out = append(out, ca)
		}
		if len(names) < listBatch {
			return out, nil
		}
		after = names[len(names)-1]
	}
}

// Policies implements registry.Store: one HGETALL.
func (s *Store) Policies(ctx context.Context) ([]registry.Policy, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	m, err := s.c.HGetAll(ctx, s.keys.policies()).Result()
	if err != nil {
		return nil, unavailable("list policies", err)
	}
	flat := make([]any, 0, 2*len(m))
	for k, v := range m {
		flat = append(flat, k, v)
	}
	return decodePolicies(flat)
}

// EnsurePolicies implements registry.Store in one script: HSETNX per
// policy and HGETALL, so two nodes starting at once on an empty Redis end
// with the keys of whichever ran first, both of them.
func (s *Store) EnsurePolicies(ctx context.Context, ps []registry.Policy) ([]registry.Policy, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	args := make([]any, 0, 1+3*len(ps))
	args = append(args, s.keys.changes())
	for _, p := range ps {
		rec, msg, err := encode(p, registry.Change{Kind: registry.ChangePolicy, ID: p.KeyName})
		if err != nil {
			return nil, err
		}
		args = append(args, p.KeyName, rec, msg)
	}
	res, err := ensurePoliciesScript.Run(ctx, s.c, []string{s.keys.policies()}, args...).Slice()
	if err != nil {
		return nil, unavailable("ensure policies", err)
	}
	return decodePolicies(res)
}

// decodePolicies decodes a flat name, json, name, json… list in name order.
func decodePolicies(flat []any) ([]registry.Policy, error) {
	out := make([]registry.Policy, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		v, ok := flat[i+1].(string)
		if !ok {
			return nil, unavailable("policies", fmt.Errorf("unexpected reply element %T", flat[i+1]))
		}
		var p registry.Policy
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, unavailable("policies", fmt.Errorf("policy %v: undecodable record: %w", flat[i], err))
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b registry.Policy) int { return strings.Compare(a.KeyName, b.KeyName) })
	return out, nil
}

// run executes a write script and returns its integer result: 1 written,
// 0 etag mismatch (or exists, for create), -1 not found.
func (s *Store) run(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) (int64, error) {
	if err := s.open(); err != nil {
		return 0, err
	}
	n, err := sc.Run(ctx, s.c, keys, args...).Int64()
	if err != nil {
		return 0, unavailable(op, err)
	}
	return n, nil
}

// encode returns the JSON of a record (nil rec: none) and of the change
// message published with it.
func encode(rec any, ch registry.Change) (recJSON, msgJSON string, err error) {
	if rec != nil {
		b, err := json.Marshal(rec)
		if err != nil {
			return "", "", fmt.Errorf("redisstore: encode record: %w", err)
		}
		recJSON = string(b)
	}
	m, err := encodeChange(ch)
	if err != nil {
		return "", "", err
	}
	return recJSON, string(m), nil
}

// counter is the go-redis hook behind Commands.
type counter struct{ n *atomic.Uint64 }

func (h counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(uint64(len(cmds)))
		return next(ctx, cmds)
	}
}
