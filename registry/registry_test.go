package registry_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// clock is an injectable, settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func newRegistry(t *testing.T, s registry.Store) *registry.Registry {
	t.Helper()
	r, err := registry.New(t.Context(), s, registry.Options{Logger: quiet()})
	must(t, err)
	return r
}

// fixture is a Registry over a fresh file store.
func fixture(t *testing.T, opts registry.Options) *registry.Registry {
	t.Helper()
	s := openFile(t, filepath.Join(t.TempDir(), "registry.jsonl"))
	t.Cleanup(func() { s.Close() })
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	r, err := registry.New(t.Context(), s, opts)
	must(t, err)
	return r
}

func ptr(s string) *string { return &s }

func key(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

const (
	sha1Hex   = "0123456789ABCDEF0123456789ABCDEF01234567"
	sha256Hex = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
)

func TestPolicies(t *testing.T) {
	r := fixture(t, registry.Options{})
	ps := r.Policies()
	if len(ps) != len(registry.DefaultPolicies) {
		t.Fatalf("got %d policies, want %d", len(ps), len(registry.DefaultPolicies))
	}
	for _, want := range registry.DefaultPolicies {
		p, ok := r.Policy(want.KeyName)
		if !ok || p.Rights != want.Rights {
			t.Fatalf("policy %s: %+v %v", want.KeyName, p, ok)
		}
		for _, k := range []string{p.PrimaryKey, p.SecondaryKey} {
			if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
				t.Fatalf("policy %s key %q: want 32 bytes base64", p.KeyName, k)
			}
		}
		if p.PrimaryKey == p.SecondaryKey {
			t.Fatalf("policy %s has equal keys", p.KeyName)
		}
	}
	if _, ok := r.Policy("nope"); ok {
		t.Fatal("unknown policy found")
	}
}

func TestCreateDevice(t *testing.T) {
	clk := newClock()
	r := fixture(t, registry.Options{Now: clk.Now})
	ctx := t.Context()

	d, err := r.CreateDevice(ctx, registry.Device{DeviceID: "dev1"})
	must(t, err)
	if len(d.GenerationID) != 18 {
		t.Errorf("generationId %q, want 18 digits", d.GenerationID)
	}
	if _, err := strconv.ParseUint(d.GenerationID, 10, 64); err != nil {
		t.Errorf("generationId %q is not decimal", d.GenerationID)
	}
	if d.Etag == "" || d.Status != registry.StatusEnabled || d.ConnectionState != "Disconnected" ||
		d.ParentScopes == nil || !d.StatusUpdatedTime.Equal(clk.Now()) || d.Authentication.Type != registry.AuthSAS {
		t.Errorf("defaults not filled: %+v", d)
	}
	for _, k := range []string{d.Authentication.SymmetricKey.PrimaryKey, d.Authentication.SymmetricKey.SecondaryKey} {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			t.Errorf("generated key %q: want 32 bytes base64", k)
		}
	}
	got, err := r.Device(ctx, "dev1")
	must(t, err)
	if got.Etag != d.Etag || got.Authentication != d.Authentication {
		t.Errorf("stored %+v, returned %+v", got, d)
	}
	d2, err := r.CreateDevice(ctx, registry.Device{DeviceID: "dev2"})
	must(t, err)
	if d2.GenerationID == d.GenerationID || d2.Etag == d.Etag {
		t.Errorf("generation ids or etags repeat")
	}
	if _, err := r.CreateDevice(ctx, registry.Device{DeviceID: "dev1"}); !errors.Is(err, registry.ErrDeviceExists) {
		t.Errorf("duplicate create: %v", err)
	}

	tests := []struct {
		name string
		dev  registry.Device
		want error
	}{
		{"ok/all-allowed-id-chars", registry.Device{DeviceID: "aZ09-.+%_#*?!(),=@$'"}, nil},
		{"ok/id-128", registry.Device{DeviceID: strings.Repeat("a", 128)}, nil},
		{"ok/sas-given-keys", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSAS,
			SymmetricKey: registry.SymmetricKey{PrimaryKey: key(16), SecondaryKey: key(64)}}}, nil},
		{"ok/self-signed-sha1", registry.Device{DeviceID: "ss1", Authentication: registry.Authentication{Type: registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex), SecondaryThumbprint: ptr(strings.ToLower(sha1Hex))}}}, nil},
		{"ok/self-signed-sha256-type-inferred", registry.Device{DeviceID: "ss2", Authentication: registry.Authentication{
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha256Hex)}}}, nil},
		{"ok/ca", registry.Device{DeviceID: "ca1", Authentication: registry.Authentication{Type: registry.AuthCA}}, nil},
		{"ok/disabled", registry.Device{DeviceID: "off", Status: registry.StatusDisabled}, nil},
		{"fail/id-empty", registry.Device{}, registry.ErrInvalid},
		{"fail/id-129", registry.Device{DeviceID: strings.Repeat("a", 129)}, registry.ErrInvalid},
		{"fail/id-slash", registry.Device{DeviceID: "a/b"}, registry.ErrInvalid},
		{"fail/id-space", registry.Device{DeviceID: "a b"}, registry.ErrInvalid},
		{"fail/id-non-ascii", registry.Device{DeviceID: "dév"}, registry.ErrInvalid},
		{"fail/status", registry.Device{DeviceID: "s", Status: "paused"}, registry.ErrInvalid},
		{"fail/status-reason-long", registry.Device{DeviceID: "s", StatusReason: ptr(strings.Repeat("x", 129))}, registry.ErrInvalid},
		{"fail/auth-type", registry.Device{DeviceID: "s", Authentication: registry.Authentication{Type: "password"}}, registry.ErrInvalid},
		{"fail/key-not-base64", registry.Device{DeviceID: "k", Authentication: registry.Authentication{
			SymmetricKey: registry.SymmetricKey{PrimaryKey: "not base64!", SecondaryKey: key(32)}}}, registry.ErrInvalid},
		{"fail/key-short", registry.Device{DeviceID: "k", Authentication: registry.Authentication{
			SymmetricKey: registry.SymmetricKey{PrimaryKey: key(15), SecondaryKey: key(32)}}}, registry.ErrInvalid},
		{"fail/key-long", registry.Device{DeviceID: "k", Authentication: registry.Authentication{
			SymmetricKey: registry.SymmetricKey{PrimaryKey: key(32), SecondaryKey: key(65)}}}, registry.ErrInvalid},
		{"fail/one-key-missing", registry.Device{DeviceID: "k", Authentication: registry.Authentication{
			SymmetricKey: registry.SymmetricKey{PrimaryKey: key(32)}}}, registry.ErrInvalid},
		{"fail/sas-with-thumbprint", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSAS,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex)}}}, registry.ErrInvalid},
		{"fail/self-signed-no-thumbprint", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSelfSigned}}, registry.ErrInvalid},
		{"fail/self-signed-bad-length", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr("ABCD")}}}, registry.ErrInvalid},
		{"fail/self-signed-not-hex", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(strings.Repeat("G", 40))}}}, registry.ErrInvalid},
		{"fail/self-signed-mixed-lengths", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex), SecondaryThumbprint: ptr(sha256Hex)}}}, registry.ErrInvalid},
		{"fail/self-signed-with-keys", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthSelfSigned,
			SymmetricKey:   registry.SymmetricKey{PrimaryKey: key(32), SecondaryKey: key(32)},
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex)}}}, registry.ErrInvalid},
		{"fail/ca-with-thumbprint", registry.Device{DeviceID: "k", Authentication: registry.Authentication{Type: registry.AuthCA,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex)}}}, registry.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.CreateDevice(ctx, tc.dev)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CreateDevice: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUpdateDevice(t *testing.T) {
	clk := newClock()
	r := fixture(t, registry.Options{Now: clk.Now})
	ctx := t.Context()

	t.Run("ok/if-match-variants", func(t *testing.T) {
		for _, im := range []func(etag string) string{
			func(string) string { return "" },
			func(string) string { return "*" },
			func(string) string { return `"*"` },
			func(e string) string { return e },
			func(e string) string { return `"` + e + `"` },
			func(e string) string { return `W/"` + e + `"` },
		} {
			cur, err := r.CreateDevice(ctx, registry.Device{DeviceID: "im"})
			must(t, err)
			ifMatch := im(cur.Etag)
			next, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "im", StatusReason: ptr("x")}, ifMatch)
			if err != nil {
				t.Fatalf("update If-Match %q: %v", ifMatch, err)
			}
			if next.Etag == cur.Etag || *next.StatusReason != "x" {
				t.Fatalf("update If-Match %q: %+v", ifMatch, next)
			}
			must(t, r.DeleteDevice(ctx, "im", im(next.Etag)))
		}
	})
	t.Run("fail/stale-etag", func(t *testing.T) {
		cur, err := r.CreateDevice(ctx, registry.Device{DeviceID: "stale"})
		must(t, err)
		_, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "stale"}, `"`+cur.Etag+`"`)
		must(t, err)
		for _, im := range []string{cur.Etag, `"` + cur.Etag + `"`, `W/"` + cur.Etag + `"`} {
			if _, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "stale"}, im); !errors.Is(err, registry.ErrPreconditionFailed) {
				t.Fatalf("update with stale %q: %v", im, err)
			}
			if err := r.DeleteDevice(ctx, "stale", im); !errors.Is(err, registry.ErrPreconditionFailed) {
				t.Fatalf("delete with stale %q: %v", im, err)
			}
		}
	})
	t.Run("fail/missing", func(t *testing.T) {
		if _, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "missing"}, "*"); !errors.Is(err, registry.ErrDeviceNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if err := r.DeleteDevice(ctx, "missing", "*"); !errors.Is(err, registry.ErrDeviceNotFound) {
			t.Fatalf("delete missing: %v", err)
		}
	})
	t.Run("ok/empty-keys-keep-credentials", func(t *testing.T) {
		cur, err := r.CreateDevice(ctx, registry.Device{DeviceID: "keep"})
		must(t, err)
		next, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "keep", Status: registry.StatusDisabled,
			Authentication: registry.Authentication{Type: registry.AuthSAS}}, `"*"`)
		must(t, err)
		if next.Authentication != cur.Authentication {
			t.Fatalf("keys changed: %+v -> %+v", cur.Authentication, next.Authentication)
		}
		ss, err := r.CreateDevice(ctx, registry.Device{DeviceID: "keep-ss", Authentication: registry.Authentication{
			Type: registry.AuthSelfSigned, X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: ptr(sha1Hex)}}})
		must(t, err)
		next, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "keep-ss", Status: registry.StatusDisabled,
			Authentication: registry.Authentication{Type: registry.AuthSAS}}, `"*"`)
		must(t, err)
		if next.Authentication.Type != registry.AuthSelfSigned || *next.Authentication.X509Thumbprint.PrimaryThumbprint != sha1Hex {
			t.Fatalf("a Node-normalised status update changed a selfSigned device: %+v -> %+v", ss.Authentication, next.Authentication)
		}
	})
	t.Run("ok/new-keys-and-type-change", func(t *testing.T) {
		_, err := r.CreateDevice(ctx, registry.Device{DeviceID: "rekey"})
		must(t, err)
		want := registry.SymmetricKey{PrimaryKey: key(32), SecondaryKey: key(48)}
		next, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "rekey", Authentication: registry.Authentication{SymmetricKey: want}}, "")
		must(t, err)
		if next.Authentication.SymmetricKey != want {
			t.Fatalf("keys not replaced: %+v", next.Authentication)
		}
		next, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "rekey", Authentication: registry.Authentication{Type: registry.AuthCA}}, "")
		must(t, err)
		if next.Authentication.Type != registry.AuthCA || next.Authentication.SymmetricKey != (registry.SymmetricKey{}) {
			t.Fatalf("type change to CA: %+v", next.Authentication)
		}
		if _, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "rekey", Authentication: registry.Authentication{
			Type: registry.AuthSelfSigned}}, ""); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("invalid update: %v", err)
		}
	})
	t.Run("ok/status-time-and-immutables", func(t *testing.T) {
		cur, err := r.CreateDevice(ctx, registry.Device{DeviceID: "st"})
		must(t, err)
		clk.Add(time.Minute)
		next, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "st", StatusReason: ptr("same status")}, "")
		must(t, err)
		if !next.StatusUpdatedTime.Equal(cur.StatusUpdatedTime) {
			t.Fatalf("statusUpdatedTime moved without a status change")
		}
		clk.Add(time.Minute)
		next, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "st", Status: registry.StatusDisabled, GenerationID: cur.GenerationID}, "")
		must(t, err)
		if !next.StatusUpdatedTime.Equal(clk.Now()) || next.GenerationID != cur.GenerationID {
			t.Fatalf("status change: %+v", next)
		}
		if _, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "st", GenerationID: "1"}, ""); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("generationId change: %v", err)
		}
	})
}

// TestConcurrentUpdates: unconditional writers never fail and each write is
// applied exactly once; conditional writers racing on one etag give exactly
// one winner; and a get-modify-update loop with etags loses no increment.
func TestConcurrentUpdates(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	const n = 20

	t.Run("ok/unconditional-all-succeed", func(t *testing.T) {
		_, err := r.CreateDevice(ctx, registry.Device{DeviceID: "u"})
		must(t, err)
		var events atomic.Int64
		cancel := r.Subscribe(func(ch registry.Change) {
			if ch.ID == "u" {
				events.Add(1)
			}
		})
		defer cancel()
		etags := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				d, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "u", StatusReason: ptr(strconv.Itoa(i))}, `"*"`)
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				etags[i] = d.Etag
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, e := range etags {
			if seen[e] {
				t.Fatalf("etag %q returned twice", e)
			}
			seen[e] = true
		}
		if events.Load() != n {
			t.Fatalf("%d change events, want %d", events.Load(), n)
		}
		final, err := r.Device(ctx, "u")
		must(t, err)
		i, _ := strconv.Atoi(*final.StatusReason)
		if final.Etag != etags[i] {
			t.Fatalf("final record %q/%q is not the last write applied", *final.StatusReason, final.Etag)
		}
	})
	t.Run("ok/etag-race-one-winner", func(t *testing.T) {
		cur, err := r.CreateDevice(ctx, registry.Device{DeviceID: "c"})
		must(t, err)
		var wins, lost atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "c", StatusReason: ptr(strconv.Itoa(i))}, `"`+cur.Etag+`"`)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, registry.ErrPreconditionFailed):
					lost.Add(1)
				default:
					t.Errorf("writer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || lost.Load() != n-1 {
			t.Fatalf("wins=%d lost=%d", wins.Load(), lost.Load())
		}
	})
	t.Run("ok/counter-loses-nothing", func(t *testing.T) {
		_, err := r.CreateDevice(ctx, registry.Device{DeviceID: "n", StatusReason: ptr("0")})
		must(t, err)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				for {
					d, err := r.Device(ctx, "n")
					if err != nil {
						t.Error(err)
						return
					}
					v, _ := strconv.Atoi(*d.StatusReason)
					d.StatusReason = ptr(strconv.Itoa(v + 1))
					_, err = r.UpdateDevice(ctx, d, `W/"`+d.Etag+`"`)
					if errors.Is(err, registry.ErrPreconditionFailed) {
						continue
					}
					if err != nil {
						t.Error(err)
					}
					return
				}
			})
		}
		wg.Wait()
		d, err := r.Device(ctx, "n")
		must(t, err)
		if *d.StatusReason != strconv.Itoa(n) {
			t.Fatalf("counter %s, want %d", *d.StatusReason, n)
		}
	})
}

func TestSubscribe(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	var mu sync.Mutex
	var got []registry.Change
	cancel := r.Subscribe(func(ch registry.Change) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ch)
	})
	d, err := r.CreateDevice(ctx, registry.Device{DeviceID: "d"})
	must(t, err)
	d2, err := r.UpdateDevice(ctx, registry.Device{DeviceID: "d"}, "")
	must(t, err)
	_, err = r.UpdateDevice(ctx, registry.Device{DeviceID: "d"}, "stale")
	if !errors.Is(err, registry.ErrPreconditionFailed) {
		t.Fatal(err)
	}
	must(t, r.DeleteDevice(ctx, "d", ""))
	root, err := pki.NewRootCA("root", pki.Options{})
	must(t, err)
	ca, err := r.AddCA(ctx, "root", root.CertPEM(), false)
	must(t, err)
	cancel()
	cancel()
	_, err = r.CreateDevice(ctx, registry.Device{DeviceID: "after-cancel"})
	must(t, err)

	want := []registry.Change{
		{Kind: registry.ChangeDevice, ID: "d", Etag: d.Etag},
		{Kind: registry.ChangeDevice, ID: "d", Etag: d2.Etag},
		{Kind: registry.ChangeDevice, ID: "d", Deleted: true},
		{Kind: registry.ChangeCA, ID: "root", Etag: ca.Etag},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n%+v\nwant\n%+v", got, want)
	}
}

func TestListDevices(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	for i := range 5 {
		_, err := r.CreateDevice(ctx, registry.Device{DeviceID: fmt.Sprintf("d%d", i)})
		must(t, err)
	}
	ds, err := r.Devices(ctx, "d1", 2)
	must(t, err)
	if len(ds) != 2 || ds[0].DeviceID != "d2" || ds[1].DeviceID != "d3" {
		t.Fatalf("page %+v", ds)
	}
	ds, err = r.Devices(ctx, "", 0)
	must(t, err)
	if len(ds) != 5 {
		t.Fatalf("limit 0 returned %d", len(ds))
	}
}

// unavailableStore fails every device read like a backend that is down.
type unavailableStore struct{ registry.Store }

func (unavailableStore) Device(context.Context, string) (registry.Device, error) {
	return registry.Device{}, fmt.Errorf("%w: connection refused", registry.ErrUnavailable)
}

func TestUnavailablePassesThrough(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "r.jsonl"))
	defer s.Close()
	r := newRegistry(t, unavailableStore{s})
	if _, err := r.Device(t.Context(), "x"); !errors.Is(err, registry.ErrUnavailable) || errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatalf("Device: %v", err)
	}
	if _, err := r.UpdateDevice(t.Context(), registry.Device{DeviceID: "x"}, ""); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("UpdateDevice: %v", err)
	}
}

func leafOf(t *testing.T, ca *pki.KeyPair) *x509.Certificate {
	t.Helper()
	leaf, err := ca.IssueClient("dev1", pki.Options{})
	must(t, err)
	return leaf.Cert
}

func verifyOpts(r *registry.Registry) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: r.VerifiedCAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
