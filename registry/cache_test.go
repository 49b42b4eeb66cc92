package registry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// fakeSource is a DeviceGetter with a settable answer, a load counter and an
// optional gate that holds loads until released.
type fakeSource struct {
	mu    sync.Mutex
	devs  map[string]registry.Device
	err   error
	gate  chan struct{} // when non-nil, loads wait for it to close
	start chan string   // when non-nil, receives the id as each load begins
	loads atomic.Int64
}

func (f *fakeSource) Device(ctx context.Context, id string) (registry.Device, error) {
	f.loads.Add(1)
	f.mu.Lock()
	gate, start := f.gate, f.start
	d, ok := f.devs[id]
	err := f.err
	f.mu.Unlock()
	if start != nil {
		start <- id
	}
	if gate != nil {
		<-gate
	}
	switch {
	case err != nil:
		return registry.Device{}, err
	case !ok:
		return registry.Device{}, registry.ErrDeviceNotFound
	}
	return d, nil
}

func (f *fakeSource) set(id, etag string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.devs == nil {
		f.devs = map[string]registry.Device{}
	}
	f.devs[id] = registry.Device{DeviceID: id, Etag: etag}
}

func (f *fakeSource) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func newCache(src registry.DeviceGetter, clk *clock) *registry.Cache {
	return registry.NewCache(src, registry.CacheOptions{Now: clk.Now})
}

func get(t *testing.T, c *registry.Cache, id string) (string, error) {
	t.Helper()
	d, err := c.Device(t.Context(), id)
	return d.Etag, err
}

func TestCache(t *testing.T) {
	t.Run("ok/hit", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		src.set("d", "e1")
		c := newCache(src, clk)
		for range 3 {
			if e, err := get(t, c, "d"); err != nil || e != "e1" {
				t.Fatalf("got %q, %v", e, err)
			}
		}
		if n := src.loads.Load(); n != 1 {
			t.Fatalf("%d loads, want 1", n)
		}
		if h, m, nh := c.CacheStats(); h != 2 || m != 1 || nh != 0 {
			t.Fatalf("stats hits=%d misses=%d neg=%d", h, m, nh)
		}
	})
	t.Run("ok/positive-ttl-expiry", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		src.set("d", "e1")
		c := newCache(src, clk)
		get(t, c, "d")
		src.set("d", "e2")
		clk.Add(5*time.Minute - time.Second)
		if e, _ := get(t, c, "d"); e != "e1" {
			t.Fatalf("before TTL got %q", e)
		}
		clk.Add(time.Second)
		if e, _ := get(t, c, "d"); e != "e2" {
			t.Fatalf("after TTL got %q, want e2", e)
		}
	})
	t.Run("ok/negative-entry-and-expiry", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		c := newCache(src, clk)
		for range 3 {
			if _, err := get(t, c, "d"); !errors.Is(err, registry.ErrDeviceNotFound) {
				t.Fatalf("got %v", err)
			}
		}
		if n := src.loads.Load(); n != 1 {
			t.Fatalf("%d loads, want 1", n)
		}
		if _, _, nh := c.CacheStats(); nh != 2 {
			t.Fatalf("negative hits %d, want 2", nh)
		}
		src.set("d", "e1")
		clk.Add(4 * time.Second)
		if _, err := get(t, c, "d"); !errors.Is(err, registry.ErrDeviceNotFound) {
			t.Fatalf("inside negative TTL: %v", err)
		}
		clk.Add(time.Second)
		if e, err := get(t, c, "d"); err != nil || e != "e1" {
			t.Fatalf("after negative TTL: %q %v", e, err)
		}
	})
	t.Run("ok/apply-invalidates-both-kinds", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		c := newCache(src, clk)
		get(t, c, "d")
		src.set("d", "e1")
		c.Apply(registry.Change{Kind: registry.ChangeDevice, ID: "d", Etag: "e1"})
		if e, err := get(t, c, "d"); err != nil || e != "e1" {
			t.Fatalf("after create event: %q %v", e, err)
		}
		src.set("d", "e2")
		c.Apply(registry.Change{Kind: registry.ChangeCA, ID: "d"})
		if e, _ := get(t, c, "d"); e != "e1" {
			t.Fatal("a CA event invalidated a device")
		}
		c.Apply(registry.Change{Kind: registry.ChangeDevice, ID: "d", Etag: "e2"})
		if e, _ := get(t, c, "d"); e != "e2" {
			t.Fatalf("after update event got %q", e)
		}
		src.set("x", "x1")
		get(t, c, "x")
		c.Flush()
		if p, n := c.Len(); p != 0 || n != 0 {
			t.Fatalf("after Flush %d/%d entries", p, n)
		}
	})
	t.Run("fail/unavailable-not-cached", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		c := newCache(src, clk)
		src.setErr(fmt.Errorf("%w: dial tcp: refused", registry.ErrUnavailable))
		for range 2 {
			if _, err := get(t, c, "d"); !errors.Is(err, registry.ErrUnavailable) {
				t.Fatalf("got %v", err)
			}
		}
		src.setErr(nil)
		src.set("d", "e1")
		if e, err := get(t, c, "d"); err != nil || e != "e1" {
			t.Fatalf("after recovery: %q %v", e, err)
		}
		if n := src.loads.Load(); n != 3 {
			t.Fatalf("%d loads, want 3 (errors are not cached)", n)
		}
	})
	t.Run("ok/stale-served-while-unavailable", func(t *testing.T) {
		src, clk := &fakeSource{}, newClock()
		src.set("d", "e1")
		c := newCache(src, clk)
		get(t, c, "d")
		src.setErr(fmt.Errorf("%w: down", registry.ErrUnavailable))
		clk.Add(6 * time.Minute)
		if e, err := get(t, c, "d"); err != nil || e != "e1" {
			t.Fatalf("stale: %q %v", e, err)
		}
		if c.StaleServed() != 1 {
			t.Fatalf("stale served %d", c.StaleServed())
		}
		clk.Add(30 * time.Minute)
		if _, err := get(t, c, "d"); !errors.Is(err, registry.ErrUnavailable) {
			t.Fatalf("beyond MaxStale: %v", err)
		}
		if _, err := get(t, c, "never-seen"); !errors.Is(err, registry.ErrUnavailable) {
			t.Fatalf("unknown id while down: %v", err)
		}
	})
}

// A hung store (Redis paused, a silent partition) answers nothing before
// the caller's deadline: an expired entry within MaxStale is served then too,
// and an unknown id fails with the caller's deadline, never "not found".
func TestCacheStaleWhileStoreHangs(t *testing.T) {
	src, clk := &fakeSource{}, newClock()
	src.set("d", "e1")
	c := newCache(src, clk)
	get(t, c, "d")
	gate := make(chan struct{})
	defer close(gate)
	src.mu.Lock()
	src.gate = gate
	src.mu.Unlock()
	clk.Add(6 * time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if d, err := c.Device(ctx, "d"); err != nil || d.Etag != "e1" {
		t.Fatalf("hung store, expired entry: %q %v; want the stale entry", d.Etag, err)
	}
	if c.StaleServed() != 1 {
		t.Fatalf("stale served %d, want 1", c.StaleServed())
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.Device(ctx2, "never-seen"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung store, unknown id: %v, want the deadline", err)
	}
}

func TestCacheCoalescing(t *testing.T) {
	src, clk := &fakeSource{gate: make(chan struct{}), start: make(chan string, 100)}, newClock()
	src.set("d", "e1")
	c := newCache(src, clk)
	const n = 50
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			if e, err := get(t, c, "d"); err != nil || e != "e1" {
				t.Errorf("got %q %v", e, err)
			}
		})
	}
	started.Wait()
	<-src.start // the one load is running; give the others time to join it
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		if _, m, _ := c.CacheStats(); m == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(src.gate)
	wg.Wait()
	if l := src.loads.Load(); l != 1 {
		t.Fatalf("%d concurrent misses made %d loads, want 1", n, l)
	}
}

func TestCacheCallerGivesUp(t *testing.T) {
	src, clk := &fakeSource{gate: make(chan struct{})}, newClock()
	src.set("d", "e1")
	c := newCache(src, clk)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Device(ctx, "d"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(src.gate)
	if e, err := get(t, c, "d"); err != nil || e != "e1" {
		t.Fatalf("next caller: %q %v", e, err)
	}
}

// TestCacheInvalidationRace: a load that read the old record before an
// invalidation must not insert it afterwards.
func TestCacheInvalidationRace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inval func(c *registry.Cache)
	}{
		{"ok/invalidate", func(c *registry.Cache) { c.Invalidate("d") }},
		{"ok/apply", func(c *registry.Cache) { c.Apply(registry.Change{Kind: registry.ChangeDevice, ID: "d"}) }},
		{"ok/flush", func(c *registry.Cache) { c.Flush() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, clk := &fakeSource{gate: make(chan struct{}), start: make(chan string, 10)}, newClock()
			src.set("d", "old")
			c := newCache(src, clk)
			done := make(chan string)
			go func() {
				e, _ := get(t, c, "d")
				done <- e
			}()
			<-src.start // the slow load has read "old"
			src.set("d", "new")
			tc.inval(c)
			close(src.gate)
			if e := <-done; e != "old" {
				t.Fatalf("the caller that started before the change got %q", e)
			}
			src.mu.Lock()
			src.gate, src.start = nil, nil
			src.mu.Unlock()
			if e, _ := get(t, c, "d"); e != "new" {
				t.Fatalf("after the race got %q, want new: a stale load was inserted", e)
			}
		})
	}
}

// TestCacheWithRegistry wires Cache to a Registry the way cmd does.
func TestCacheWithRegistry(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	c := registry.NewCache(r, registry.CacheOptions{})
	defer r.Subscribe(c.Apply)()
	if _, err := c.Device(ctx, "d"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatal(err)
	}
	d, err := r.CreateDevice(ctx, registry.Device{DeviceID: "d"})
	must(t, err)
	got, err := c.Device(ctx, "d")
	if err != nil || got.Etag != d.Etag {
		t.Fatalf("after create: %+v %v", got, err)
	}
	d, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "d", Status: registry.StatusDisabled}, "*")
	must(t, err)
	if got, _ := c.Device(ctx, "d"); got.Status != registry.StatusDisabled {
		t.Fatal("cache missed the update event")
	}
	must(t, r.DeleteDevice(ctx, "d", ""))
	if _, err := c.Device(ctx, "d"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	src := &fakeSource{}
	src.set("device-1", "e1")
	c := registry.NewCache(src, registry.CacheOptions{})
	if _, err := c.Device(b.Context(), "device-1"); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Device(ctx, "device-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Device(ctx, "device-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
