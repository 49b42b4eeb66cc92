package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/internal/redistest"
	"github.com/hubgate/hubgate/registry"
	"github.com/hubgate/hubgate/registry/redisstore"
	"github.com/hubgate/hubgate/registry/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var hubSeq atomic.Uint64

// freshHub returns a hub name no other test uses, so tests can share one
// redis-server and still start from an empty registry.
func freshHub(prefix string) string { return fmt.Sprintf("%s-%d", prefix, hubSeq.Add(1)) }

func openStore(t testing.TB, url, hub string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), redisstore.Options{URL: url, Hub: hub, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) registry.Store {
		return openStore(t, srv.URL(), freshHub("conformance"))
	})
}

func TestOpen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	tests := []struct {
		name string
		opts redisstore.Options
		want error // nil: any error
	}{
		{"fail/no-hub", redisstore.Options{URL: srv.URL()}, nil},
		{"fail/no-url", redisstore.Options{Hub: "h"}, nil},
		{"fail/url-and-universal", redisstore.Options{Hub: "h", URL: srv.URL(), Universal: &redis.UniversalOptions{}}, nil},
		{"fail/bad-scheme", redisstore.Options{Hub: "h", URL: "http://" + srv.Addr()}, nil},
		{"fail/nothing-listening", redisstore.Options{Hub: "h", URL: "redis://127.0.0.1:1"}, registry.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(t.Context(), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ok/universal", func(t *testing.T) {
		s, err := redisstore.Open(t.Context(), redisstore.Options{Hub: "h", Universal: &redis.UniversalOptions{Addrs: []string{srv.Addr()}}})
		must(t, err)
		defer s.Close()
		must(t, s.Ping(t.Context()))
	})
	t.Run("fail/password-not-in-error", func(t *testing.T) {
		_, err := redisstore.Open(t.Context(), redisstore.Options{Hub: "h", URL: "redis://u:sekrit-pw@127.0.0.1:1"})
		if err == nil || strings.Contains(err.Error(), "sekrit-pw") {
			t.Fatalf("Open: %v (want an error without the password)", err)
		}
	})
}

// TestKeyLayout pins the key layout of doc.go: every key of a hub under
// one hash tag, record keys named by id only (no credential material).
func TestKeyLayout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := openStore(t, srv.URL(), "lay}out:x")
	reg, err := registry.New(ctx, s, registry.Options{Logger: quiet()})
	must(t, err)
	d, err := reg.CreateDevice(ctx, registry.Device{DeviceID: "dev-1"})
	must(t, err)
	must(t, s.CreateCA(ctx, registry.CA{Name: "root", Etag: "e1"}))

	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	keys, err := raw.Keys(ctx, "*").Result() // test only; the store never uses KEYS
	must(t, err)
	slices.Sort(keys)
	want := []string{
		"hubgate:{lay%7Dout%3Ax}:ca:root",
		"hubgate:{lay%7Dout%3Ax}:cas",
		"hubgate:{lay%7Dout%3Ax}:dev:dev-1",
		"hubgate:{lay%7Dout%3Ax}:devices",
		"hubgate:{lay%7Dout%3Ax}:policies",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %q\nwant %q", keys, want)
	}
	secrets := []string{d.Authentication.SymmetricKey.PrimaryKey, d.Authentication.SymmetricKey.SecondaryKey}
	for _, p := range reg.Policies() {
		secrets = append(secrets, p.PrimaryKey, p.SecondaryKey)
	}
	for _, k := range keys {
		for _, sec := range secrets {
			if strings.Contains(k, sec) {
				t.Fatalf("key %q contains credential material", k)
			}
		}
	}
	rec, err := raw.HGetAll(ctx, "hubgate:{lay%7Dout%3Ax}:dev:dev-1").Result()
	must(t, err)
	if rec["etag"] != d.Etag || !strings.Contains(rec["json"], `"etag":"`+d.Etag+`"`) {
		t.Fatalf("device record %q: want etag %q in both fields", rec, d.Etag)
	}
}

func TestHubsAreIsolated(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	a := openStore(t, srv.URL(), "test")
	b := openStore(t, srv.URL(), "prod")
	must(t, a.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	if _, err := b.Device(ctx, "dev1"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatalf("hub prod sees hub test's device: %v", err)
	}
	must(t, b.CreateDevice(ctx, storetest.Device("dev1", "e2")))
	got, err := a.Device(ctx, "dev1")
	must(t, err)
	if got.Etag != "e1" {
		t.Fatalf("hub test's device changed by hub prod: etag %q", got.Etag)
	}
}

// twoNodes returns two Registries, each over its own Store (own client),
// on one Redis and hub: two gateway nodes.
func twoNodes(t *testing.T, url, hub string) (a, b *registry.Registry, sa, sb *redisstore.Store) {
	t.Helper()
	sa, sb = openStore(t, url, hub), openStore(t, url, hub)
	var err error
	a, err = registry.New(t.Context(), sa, registry.Options{Logger: quiet()})
	must(t, err)
	b, err = registry.New(t.Context(), sb, registry.Options{Logger: quiet()})
	must(t, err)
	return a, b, sa, sb
}

func TestTwoNodesConcurrentUpdates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	a, b, _, _ := twoNodes(t, srv.URL(), freshHub("update"))
	nodes := []*registry.Registry{a, b}
	reason := "0"
	created, err := a.CreateDevice(ctx, registry.Device{DeviceID: "counter", StatusReason: &reason})
	must(t, err)

	t.Run("ok/read-modify-write-loses-nothing", func(t *testing.T) {
		// Each worker increments the counter in statusReason: read, add
		// one, write back with If-Match; a lost compare-and-set is retried.
		// Any lost update leaves the final count short.
		const workers, each = 8, 10
		var wg sync.WaitGroup
		for w := range workers {
			reg := nodes[w%2]
			wg.Go(func() {
				for range each {
					for {
						cur, err := reg.Device(ctx, "counter")
						if err != nil {
							t.Error(err)
							return
						}
						n, _ := strconv.Atoi(*cur.StatusReason)
						next := strconv.Itoa(n + 1)
						cur.StatusReason = &next
						_, err = reg.UpdateDevice(ctx, cur, `"`+cur.Etag+`"`)
						if errors.Is(err, registry.ErrPreconditionFailed) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						break
					}
				}
			})
		}
		wg.Wait()
		got, err := b.Device(ctx, "counter")
		must(t, err)
		if *got.StatusReason != strconv.Itoa(workers*each) {
			t.Fatalf("counter = %s after %d increments: updates were lost", *got.StatusReason, workers*each)
		}
	})

	t.Run("ok/unconditional-updates-all-apply", func(t *testing.T) {
		// Unconditional updates (If-Match *) race inside Registry's own
		// read-modify-write; every one must succeed with its own etag, and
		// the stored record must be one of them, whole.
		const n = 16
		etags := make([]string, n)
		results := make([]registry.Device, n)
		var wg sync.WaitGroup
		for i := range n {
			reg := nodes[i%2]
			wg.Go(func() {
				r := fmt.Sprintf("writer-%d", i)
				d, err := reg.UpdateDevice(ctx, registry.Device{DeviceID: "counter", StatusReason: &r, Status: registry.StatusEnabled}, "*")
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				etags[i], results[i] = d.Etag, d
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for i, e := range etags {
			if e == "" || seen[e] {
				t.Fatalf("writer %d: etag %q empty or duplicated: two updates were based on the same record", i, e)
			}
			seen[e] = true
		}
		got, err := a.Device(ctx, "counter")
		must(t, err)
		i := slices.IndexFunc(results, func(d registry.Device) bool { return d.Etag == got.Etag })
		if i < 0 || !reflect.DeepEqual(got, results[i]) {
			t.Fatalf("stored record %+v is none of the acknowledged updates", got)
		}
		if got.Authentication != created.Authentication {
			t.Fatalf("credentials changed by updates that did not touch them")
		}
	})

	t.Run("fail/same-stale-etag-one-winner", func(t *testing.T) {
		cur, err := a.Device(ctx, "counter")
		must(t, err)
		const n = 20
		var wins, losses atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			reg := nodes[i%2]
			wg.Go(func() {
				r := fmt.Sprintf("racer-%d", i)
				d := cur.Clone()
				d.StatusReason = &r
				_, err := reg.UpdateDevice(ctx, d, cur.Etag)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, registry.ErrPreconditionFailed):
					losses.Add(1)
				default:
					t.Errorf("racer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || losses.Load() != n-1 {
			t.Fatalf("wins=%d losses=%d, want 1 and %d", wins.Load(), losses.Load(), n-1)
		}
	})
}

func TestEnsurePoliciesRace(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	// Each round is a first start of two nodes at once on an empty hub.
	for round := range 20 {
		hub := freshHub("policies")
		stores := []*redisstore.Store{openStore(t, srv.URL(), hub), openStore(t, srv.URL(), hub)}
		regs := make([]*registry.Registry, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range regs {
			wg.Go(func() {
				<-start
				r, err := registry.New(ctx, stores[i], registry.Options{Logger: quiet()})
				if err != nil {
					t.Errorf("node %d: %v", i, err)
					return
				}
				regs[i] = r
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		pa, pb := regs[0].Policies(), regs[1].Policies()
		if len(pa) != len(registry.DefaultPolicies) || !reflect.DeepEqual(pa, pb) {
			t.Fatalf("round %d: nodes hold different policy keys:\n%+v\n%+v", round, pa, pb)
		}
		stored, err := stores[0].Policies(ctx)
		must(t, err)
		if !reflect.DeepEqual(stored, pa) {
			t.Fatalf("round %d: stored policies differ from the nodes'", round)
		}
	}
}

// recorder is a Handler that hands events to the test over channels.
type recorder struct {
	changes chan registry.Change
	claims  chan [2]string
	resubs  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{changes: make(chan registry.Change, 1000), claims: make(chan [2]string, 100), resubs: make(chan struct{}, 100)}
}

func (r *recorder) Change(ch registry.Change) { r.changes <- ch }
func (r *recorder) SessionClaimed(deviceID, node string, _ time.Time) {
	r.claims <- [2]string{deviceID, node}
}
func (r *recorder) Resubscribed() { r.resubs <- struct{}{} }

const eventTimeout = 10 * time.Second

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(eventTimeout):
		t.Fatalf("no %s within %v", what, eventTimeout)
		panic("unreachable")
	}
}

// watch runs s.Watch(ctx, h) and returns a channel that yields its result.
func watch(ctx context.Context, s *redisstore.Store, h redisstore.Handler) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, h) }()
	return done
}

func TestChangeFeed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a, _, sa, sb := twoNodes(t, srv.URL(), freshHub("feed"))
	ctx := t.Context()

	recA, recB := newRecorder(), newRecorder()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	doneA, doneB := watch(wctx, sa, recA), watch(wctx, sb, recB)
	recv(t, recA.resubs, "first Resubscribed on A")
	recv(t, recB.resubs, "first Resubscribed on B")

	t.Run("ok/device-writes-reach-other-node", func(t *testing.T) {
		d, err := a.CreateDevice(ctx, registry.Device{DeviceID: "dev1"})
		must(t, err)
		want := registry.Change{Kind: registry.ChangeDevice, ID: "dev1", Etag: d.Etag}
		if got := recv(t, recB.changes, "create event"); got != want {
			t.Fatalf("create event %+v, want %+v", got, want)
		}
		d2, err := a.UpdateDevice(ctx, registry.Device{DeviceID: "dev1", Status: registry.StatusDisabled}, "")
		must(t, err)
		want = registry.Change{Kind: registry.ChangeDevice, ID: "dev1", Etag: d2.Etag}
		if got := recv(t, recB.changes, "update event"); got != want {
			t.Fatalf("update event %+v, want %+v", got, want)
		}
		// A refused write publishes nothing: the next event is the delete.
		if err := sa.ReplaceDevice(ctx, d2, "stale"); !errors.Is(err, registry.ErrPreconditionFailed) {
			t.Fatalf("stale replace: %v", err)
		}
		must(t, a.DeleteDevice(ctx, "dev1", ""))
		want = registry.Change{Kind: registry.ChangeDevice, ID: "dev1", Deleted: true}
		if got := recv(t, recB.changes, "delete event"); got != want {
			t.Fatalf("event after a refused write and a delete: %+v, want %+v", got, want)
		}
	})

	t.Run("ok/ca-writes-reach-other-node", func(t *testing.T) {
		root, err := pki.NewRootCA("feed root", pki.Options{})
		must(t, err)
		ca, err := a.AddCA(ctx, "root", root.CertPEM(), true)
		must(t, err)
		want := registry.Change{Kind: registry.ChangeCA, ID: "root", Etag: ca.Etag}
		if got := recv(t, recB.changes, "CA event"); got != want {
			t.Fatalf("CA event %+v, want %+v", got, want)
		}
	})

	t.Run("ok/session-claims-reach-every-node", func(t *testing.T) {
		must(t, sb.ClaimSessions(ctx, []string{"dev1", "dev2"}, "node-b", time.Now()))
		for _, id := range []string{"dev1", "dev2"} {
			want := [2]string{id, "node-b"}
			if got := recv(t, recA.claims, "claim on A"); got != want {
				t.Fatalf("claim on A %q, want %q", got, want)
			}
			if got := recv(t, recB.claims, "claim on the sender B"); got != want {
				t.Fatalf("claim on B %q, want %q", got, want)
			}
		}
	})

	cancel()
	for _, done := range []<-chan error{doneA, doneB} {
		if err := recv(t, done, "Watch return after cancel"); err != nil {
			t.Fatalf("Watch after cancel: %v, want nil", err)
		}
	}
}

func TestChangeFeedSurvivesRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	hub := freshHub("restart")
	sa, sb := openStore(t, srv.URL(), hub), openStore(t, srv.URL(), hub)
	must(t, sa.Ping(ctx)) // let the clients start whatever they keep running
	must(t, sb.Ping(ctx))
	before := runtime.NumGoroutine()

	rec := newRecorder()
	wctx, cancel := context.WithCancel(ctx)
	done := watch(wctx, sb, rec)
	recv(t, rec.resubs, "first Resubscribed")

	must(t, sa.CreateDevice(ctx, storetest.Device("before", "e1")))
	if got := recv(t, rec.changes, "event before the restart"); got.ID != "before" {
		t.Fatalf("event %+v", got)
	}

	srv.Kill()
	srv.Restart() // no persistence: Redis comes back empty
	recv(t, rec.resubs, "Resubscribed after the restart")

	// The writer's pool reconnects by itself; its first call after the
	// restart may still fail on a connection that died with the server.
	deadline := time.Now().Add(eventTimeout)
	for {
		err := sa.CreateDevice(ctx, storetest.Device("after", "e2"))
		if err == nil {
			break
		}
		if !errors.Is(err, registry.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("write after restart: %v", err)
		}
	}
	want := registry.Change{Kind: registry.ChangeDevice, ID: "after", Etag: "e2"}
	if got := recv(t, rec.changes, "event after the restart"); got != want {
		t.Fatalf("event after restart %+v, want %+v", got, want)
	}

	cancel()
	if err := recv(t, done, "Watch return"); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// No goroutine of the feed outlives Watch.
	deadline = time.Now().Add(5 * time.Second)
	for n := runtime.NumGoroutine(); n > before; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Watch returned, %d before it started", n, before)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestWatchEndsWhenStoreCloses(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openStore(t, srv.URL(), freshHub("close"))
	rec := newRecorder()
	done := watch(t.Context(), s, rec)
	recv(t, rec.resubs, "Resubscribed")
	must(t, s.Close())
	if err := recv(t, done, "Watch return after Close"); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("Watch after Close: %v, want ErrUnavailable", err)
	}
}

func TestOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Persistence: true})
	ctx := t.Context()
	s := openStore(t, srv.URL(), freshHub("outage"))
	must(t, s.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	cache := registry.NewCache(s, registry.CacheOptions{})

	srv.Kill()

	// "Did not hang": generous, not a speed assertion.
	const hang = 5 * time.Second
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"fail/device", func(ctx context.Context) error { _, err := s.Device(ctx, "dev1"); return err }},
		{"fail/unknown-device-through-cache", func(ctx context.Context) error { _, err := cache.Device(ctx, "nobody"); return err }},
		{"fail/create", func(ctx context.Context) error { return s.CreateDevice(ctx, storetest.Device("dev2", "e1")) }},
		{"fail/replace", func(ctx context.Context) error { return s.ReplaceDevice(ctx, storetest.Device("dev1", "e2"), "e1") }},
		{"fail/delete", func(ctx context.Context) error { return s.DeleteDevice(ctx, "dev1", "") }},
		{"fail/list", func(ctx context.Context) error { _, err := s.Devices(ctx, "", 10); return err }},
		{"fail/policies", func(ctx context.Context) error { _, err := s.Policies(ctx); return err }},
		{"fail/claim", func(ctx context.Context) error { return s.ClaimSessions(ctx, []string{"dev1"}, "n", time.Now()) }},
		{"fail/ping", s.Ping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tc.call(ctx)
			if took := time.Since(start); took > hang {
				t.Fatalf("call hung for %v with Redis down", took)
			}
			if !errors.Is(err, registry.ErrUnavailable) {
				t.Fatalf("error %v, want one wrapping ErrUnavailable", err)
			}
			if errors.Is(err, registry.ErrDeviceNotFound) {
				t.Fatalf("an outage reported as an unknown device: %v", err)
			}
		})
	}

	srv.Restart()
	// Same Store, no reopen: it recovers by itself (dial errors may be
	// remembered briefly by the pool, hence the polling).
	deadline := time.Now().Add(eventTimeout)
	for {
		d, err := s.Device(ctx, "dev1")
		if err == nil {
			if d.Etag != "e1" {
				t.Fatalf("after restart: etag %q, want e1 (persistence on)", d.Etag)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	must(t, s.ReplaceDevice(ctx, storetest.Device("dev1", "e2"), "e1"))
	must(t, s.Ping(ctx))
}

// TestHungRedis: a server that keeps its connections open but answers
// nothing (SIGSTOP) must not hold a read past the caller's deadline.
func TestHungRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := openStore(t, srv.URL(), freshHub("hung"))
	must(t, s.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	cache := registry.NewCache(s, registry.CacheOptions{})

	srv.Pause()
	const hang = 5 * time.Second // "did not hang", not a speed assertion
	for _, tc := range []struct {
		name     string
		call     func(ctx context.Context) error
		viaCache bool
	}{
		{"fail/device", func(ctx context.Context) error { _, err := s.Device(ctx, "dev1"); return err }, false},
		{"fail/unknown-device-through-cache", func(ctx context.Context) error { _, err := cache.Device(ctx, "nobody"); return err }, true},
		{"fail/list", func(ctx context.Context) error { _, err := s.Devices(ctx, "", 10); return err }, false},
		{"fail/ping", s.Ping, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tc.call(ctx)
			if took := time.Since(start); took > hang {
				t.Fatalf("call hung for %v on a paused Redis", took)
			}
			// The store wraps every failure, its deadline included, in
			// ErrUnavailable; the cache may instead return the caller's own
			// ctx.Err() if the caller's deadline fires first.
			if !errors.Is(err, registry.ErrUnavailable) && !(tc.viaCache && errors.Is(err, context.DeadlineExceeded)) {
				t.Fatalf("error %v, want ErrUnavailable", err)
			}
			if errors.Is(err, registry.ErrDeviceNotFound) {
				t.Fatalf("a hung Redis reported as an unknown device: %v", err)
			}
		})
	}
	srv.Resume()
	deadline := time.Now().Add(eventTimeout)
	for {
		_, err := s.Device(ctx, "dev1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Resume: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestListing2500(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := openStore(t, srv.URL(), freshHub("list"))
	const n = 2500
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%05d", i)
	}
	ids[7], ids[8] = "A(7)", "z'8" // mix in other allowed characters
	order := rand.Perm(n)
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 {
		wg.Go(func() {
			for id := range work {
				if err := s.CreateDevice(ctx, storetest.Device(id, "e")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, i := range order {
		work <- ids[i]
	}
	close(work)
	wg.Wait()
	slices.Sort(ids)

	var got []string
	after := ""
	for page, want := range []int{1000, 1000, 500, 0} {
		ds, err := s.Devices(ctx, after, 1000)
		must(t, err)
		if len(ds) != want {
			t.Fatalf("page %d: %d devices, want %d", page, len(ds), want)
		}
		for _, d := range ds {
			got = append(got, d.DeviceID)
		}
		if len(ds) > 0 {
			after = ds[len(ds)-1].DeviceID
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("paged ids differ from the sorted ids (first got %q, want %q)", got[:3], ids[:3])
	}
}

func BenchmarkDevice(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	s := openStore(b, srv.URL(), freshHub("bench"))
	ctx := context.Background()
	must(b, s.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	b.ReportAllocs()
	b.ResetTimer()
	start := s.Commands()
	for b.Loop() {
		if _, err := s.Device(ctx, "dev1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Commands()-start)/float64(b.N), "cmds/op")
}

func BenchmarkCache(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	s := openStore(b, srv.URL(), freshHub("bench"))
	ctx := context.Background()
	must(b, s.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	cache := registry.NewCache(s, registry.CacheOptions{})

	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		start := s.Commands()
		for b.Loop() {
			cache.Invalidate("dev1")
			if _, err := cache.Device(ctx, "dev1"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.Commands()-start)/float64(b.N), "cmds/op")
	})
	b.Run("hit", func(b *testing.B) {
		if _, err := cache.Device(ctx, "dev1"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		start := s.Commands()
		for b.Loop() {
			if _, err := cache.Device(ctx, "dev1"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.Commands()-start)/float64(b.N), "cmds/op")
	})
}
