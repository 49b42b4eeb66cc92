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

// Follow wires registry changes to the cache and the protocol heads: the
// cache entry is dropped synchronously, in the writer's goroutine, before the
// write returns; live sessions are then re-checked against the record read
// from current (the uncached registry). DESIGN.md rule 4.
func Follow(feed ChangeFeed, cache Invalidator, current DeviceSource, heads ...Rechecker) (cancel func()) {
	return feed.Subscribe(func(ch registry.Change) {
		cache.Apply(ch)
		if ch.Kind != registry.ChangeDevice {
			return
		}
		go func() {
			var rec *registry.Device
			if !ch.Deleted {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				d, err := current.Device(ctx, ch.ID)
				cancel()
				switch {
				case err == nil:
					rec = &d
				case !errors.Is(err, registry.ErrDeviceNotFound):
					return // cannot tell; the next event or the session's token expiry decides
				}
			}
			for _, h := range heads {
				h.Recheck(ch.ID, rec)
			}
		}()
	})
}
