package registry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DeviceGetter reads a device by id; *Registry and every Store are one.
type DeviceGetter interface {
	Device(ctx context.Context, id string) (Device, error)
}

// CacheOptions configure a Cache. Zero values give the defaults of setDefaults.
type CacheOptions struct {
	// TTL bounds how long a positive entry lives without a change event.
	// Events are the primary invalidation; the TTL is a safety net for lost
	// ones. Default 5 min.
	TTL time.Duration
	// NegativeTTL bounds how long "no such device" is remembered. Short, so a
	// device created elsewhere is seen soon even if its event is lost, yet
	// long enough to absorb a reconnect storm from an unknown id. Default 5 s.
	NegativeTTL time.Duration
	// MaxStale is how long past its TTL an entry is still served when the
	// source reports ErrUnavailable (DESIGN.md: bounded staleness while
	// Redis is down). Default 30 min; negative disables.
	MaxStale time.Duration
	// LoadTimeout bounds one read of the source. A load is shared by every
	// caller that asked for the id meanwhile, so it does not run under any
	// one caller's context. Default 5 s.
	LoadTimeout time.Duration
	Now         func() time.Time // default time.Now
}

func (o *CacheOptions) setDefaults() {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 5 * time.Second
	}
	if o.MaxStale == 0 {
		o.MaxStale = 30 * time.Minute
	}
	if o.MaxStale < 0 {
		o.MaxStale = 0
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Cache is the in-process read-through device cache of the connect path.
// Entries are keyed by device id only, never by credential material.
//
// Returned Devices share their pointer fields and slices with the cache
// entry: callers must treat them as read-only (Clone to modify).
type Cache struct {
	src  DeviceGetter
	opts CacheOptions

	mu        sync.RWMutex          // guards pos, neg, loads, lastSweep
	pos       map[string]*posEntry  // devices, with their expiry
	neg       map[string]time.Time  // ids known absent, with expiry
	loads     map[string]*cacheLoad // in-flight loads by id
	lastSweep time.Time             // when expired entries were last dropped

	hits, misses, negHits, stale atomic.Uint64
}

type posEntry struct {
	dev     Device
	expires time.Time
}

// cacheLoad is one in-flight read of the source, shared by every caller
// that missed on the id while it ran.
type cacheLoad struct {
	done chan struct{} // closed when dev/err are set
	dev  Device
	err  error
	// invalidated is set (under Cache.mu) when the id was invalidated after
	// this load started: its result may predate the change and is handed
	// to the callers already waiting but never inserted.
	invalidated bool
}

// NewCache returns a cache reading through src.
func NewCache(src DeviceGetter, opts CacheOptions) *Cache {
	opts.setDefaults()
	return &Cache{
		src:   src,
		opts:  opts,
		pos:   map[string]*posEntry{},
		neg:   map[string]time.Time{},
		loads: map[string]*cacheLoad{},
	}
}

// Device returns the device from the cache or, on a miss, from the source.
// ErrDeviceNotFound is cached for NegativeTTL; other errors are not cached.
// When the source is unavailable an entry up to MaxStale past its TTL is
// served instead (counted in StaleServed).
func (c *Cache) Device(ctx context.Context, id string) (Device, error) {
	now := c.opts.Now()
	c.mu.RLock()
	e := c.pos[id] // entries are immutable once inserted; replaced, never modified
	if e != nil && now.Before(e.expires) {
		c.mu.RUnlock()
		c.hits.Add(1)
		return e.dev, nil
	}
	if exp, nok := c.neg[id]; nok && now.Before(exp) {
		c.mu.RUnlock()
		c.negHits.Add(1)
		return Device{}, ErrDeviceNotFound
	}
	c.mu.RUnlock()
	c.misses.Add(1)

	l := c.load(id)
	select {
	case <-l.done:
	case <-ctx.Done():
		// A hung store answers nothing before the caller's deadline: that
		// is unavailability too, and an expired entry may still serve.
		if c.serveStale(e) {
			return e.dev, nil
		}
		return Device{}, ctx.Err()
	}
	if l.err != nil && errors.Is(l.err, ErrUnavailable) && c.serveStale(e) {
		return e.dev, nil
	}
	return l.dev, l.err
}

// serveStale reports (and counts) whether expired entry e may be served
// while the store is unavailable: within MaxStale past its TTL.
func (c *Cache) serveStale(e *posEntry) bool {
	if e == nil || c.opts.MaxStale <= 0 || !c.opts.Now().Before(e.expires.Add(c.opts.MaxStale)) {
		return false
	}
	c.stale.Add(1)
	return true
}

// load returns the in-flight load for id, starting one if there is none.
func (c *Cache) load(id string) *cacheLoad {
	c.mu.Lock()
	if l, ok := c.loads[id]; ok {
		c.mu.Unlock()
		return l
	}
	l := &cacheLoad{done: make(chan struct{})}
	c.loads[id] = l
	c.mu.Unlock()

	// The load runs on its own goroutine under its own timeout so that one
	// caller giving up does not fail the others; it ends when src returns.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.LoadTimeout)
		defer cancel()
		dev, err := c.src.Device(ctx, id)
		now := c.opts.Now()
		c.mu.Lock()
		l.dev, l.err = dev, err
		if c.loads[id] == l {
			delete(c.loads, id)
		}
		if !l.invalidated {
			switch {
			case err == nil:
				delete(c.neg, id)
				c.pos[id] = &posEntry{dev: dev, expires: now.Add(c.opts.TTL)}
			case errors.Is(err, ErrDeviceNotFound) && !errors.Is(err, ErrUnavailable):
				delete(c.pos, id)
				c.neg[id] = now.Add(c.opts.NegativeTTL)
			}
		}
		c.sweepLocked(now)
		c.mu.Unlock()
		close(l.done)
	}()
	return l
}

// sweepLocked drops entries past any use so the maps do not keep ids that
// are never asked for again. It runs at most once per TTL/5 (1 min by
// default): often enough to bound memory under a storm of unknown ids,
// rarely enough that the O(n) walk under the lock does not disturb hits.
// c.mu must be held.
func (c *Cache) sweepLocked(now time.Time) {
	if now.Sub(c.lastSweep) < max(c.opts.TTL/5, c.opts.NegativeTTL) {
		return
	}
	c.lastSweep = now
	for id, e := range c.pos {
		if !now.Before(e.expires.Add(c.opts.MaxStale)) {
			delete(c.pos, id)
		}
	}
	for id, exp := range c.neg {
		if !now.Before(exp) {
			delete(c.neg, id)
		}
	}
}

// Invalidate drops what the cache knows about id, and keeps a load of id
// that is already running from inserting its possibly older result.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pos, id)
	delete(c.neg, id)
	if l, ok := c.loads[id]; ok {
		l.invalidated = true
		delete(c.loads, id) // later callers start a fresh load
	}
}

// Flush drops every entry and disowns every running load (used after a
// change-event feed was interrupted and events may have been lost).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.pos)
	clear(c.neg)
	for id, l := range c.loads {
		l.invalidated = true
		delete(c.loads, id)
	}
}

// Apply feeds a registry change event to the cache: a device change
// invalidates that id. Subscribe it to a Registry with reg.Subscribe(c.Apply).
func (c *Cache) Apply(ch Change) {
	if ch.Kind == ChangeDevice {
		c.Invalidate(ch.ID)
	}
}

// CacheStats returns the number of positive hits, misses (reads that went
// to the source) and negative hits since the cache was made.
func (c *Cache) CacheStats() (hits, misses, negHits uint64) {
	return c.hits.Load(), c.misses.Load(), c.negHits.Load()
}

// StaleServed is the number of expired entries served because the source
// was unavailable.
func (c *Cache) StaleServed() uint64 { return c.stale.Load() }

// Len is the number of positive and negative entries held.
func (c *Cache) Len() (positive, negative int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pos), len(c.neg)
}
