package broker

import (
	"context"
	"errors"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// ChangeFeed delivers registry change events (registry.Registry does).
type ChangeFeed interface {
	Subscribe(fn func(registry.Change)) (cancel func())
}

// Invalidator drops cached registry entries (registry.Cache does).
type Invalidator interface{ Apply(registry.Change) }

// Rechecker closes live sessions that a device's new record no longer allows.
type Rechecker interface {
	Recheck(id string, d *registry.Device)
}

// Follower applies registry changes, local or from other nodes, to the cache
// and the protocol heads: the cache entry is dropped synchronously (in the
// writer's goroutine for local writes, before the write returns); live
// sessions are then re-checked against the record read from Current (the
// uncached registry). DESIGN.md rule 4.
type Follower struct {
	Cache   Invalidator
	Current DeviceSource
	Heads   []Rechecker
	// CAChanged, when set, runs after a CA change (rebuild the trust pool).
	CAChanged func()
}

// Apply handles one change event.
func (f *Follower) Apply(ch registry.Change) {
	f.Cache.Apply(ch)
	switch ch.Kind {
	case registry.ChangeCA:
		if f.CAChanged != nil {
			go f.CAChanged()
		}
		return
	case registry.ChangeDevice:
	default:
		return
	}
	go func() {
		var rec *registry.Device
		if !ch.Deleted {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d, err := f.Current.Device(ctx, ch.ID)
			cancel()
			switch {
			case err == nil:
				rec = &d
			case !errors.Is(err, registry.ErrDeviceNotFound):
				return // cannot tell; the next event or the session's token expiry decides
			}
		}
		for _, h := range f.Heads {
			h.Recheck(ch.ID, rec)
		}
	}()
}

// Follow subscribes a Follower for cache, current and heads to feed.
func Follow(feed ChangeFeed, cache Invalidator, current DeviceSource, heads ...Rechecker) (cancel func()) {
	f := &Follower{Cache: cache, Current: current, Heads: heads}
	return feed.Subscribe(f.Apply)
}
