// Package storetest is the conformance suite every registry.Store
// implementation runs: the embedded file store today, the Redis store later.
// It imports only registry and the standard library.
package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// Run runs the conformance suite. open must return a fresh, empty store;
// Run closes it.
func Run(t *testing.T, open func(t *testing.T) registry.Store) {
	t.Helper()
	fresh := func(t *testing.T) registry.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("devices", func(t *testing.T) { devices(t, fresh) })
	t.Run("list", func(t *testing.T) { list(t, fresh) })
	t.Run("cas", func(t *testing.T) { cas(t, fresh) })
	t.Run("policies", func(t *testing.T) { policies(t, fresh) })
	t.Run("ok/concurrent-replace-one-winner", func(t *testing.T) {
		s := fresh(t)
		ctx := t.Context()
		d := Device("race", "e0")
		must(t, s.CreateDevice(ctx, d))
		const n = 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, losses := 0, 0
		for i := range n {
			wg.Go(func() {
				next := d
				next.Etag = fmt.Sprintf("e%d", i+1)
				err := s.ReplaceDevice(ctx, next, "e0")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, registry.ErrPreconditionFailed):
					losses++
				default:
					t.Errorf("replace: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || losses != n-1 {
			t.Fatalf("wins=%d losses=%d, want 1 and %d", wins, losses, n-1)
		}
	})
	t.Run("fail/closed", func(t *testing.T) {
		s := open(t)
		must(t, s.Close())
		must(t, s.Close()) // idempotent
		if _, err := s.Device(t.Context(), "x"); !errors.Is(err, registry.ErrUnavailable) {
			t.Fatalf("Device after Close: %v, want ErrUnavailable", err)
		}
		if err := s.CreateDevice(t.Context(), Device("x", "e")); !errors.Is(err, registry.ErrUnavailable) {
			t.Fatalf("CreateDevice after Close: %v, want ErrUnavailable", err)
		}
	})
}

// Device returns a complete sas device record as Registry would store it.
func Device(id, etag string) registry.Device {
	reason := "because"
	tp := "0123456789ABCDEF0123456789ABCDEF01234567"
	return registry.Device{
		DeviceID:          id,
		GenerationID:      "637534345627501371",
		Etag:              etag,
		ConnectionState:   "Disconnected",
		Status:            registry.StatusEnabled,
		StatusReason:      &reason,
		StatusUpdatedTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Authentication: registry.Authentication{
			Type:           registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &tp},
		},
		ParentScopes: []string{},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func devices(t *testing.T, fresh func(*testing.T) registry.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s registry.Store)
	}{
		{"ok/create-get-roundtrip", func(t *testing.T, s registry.Store) {
			d := Device("dev1", "e1")
			must(t, s.CreateDevice(t.Context(), d))
			got, err := s.Device(t.Context(), "dev1")
			must(t, err)
			if !reflect.DeepEqual(got, d) {
				t.Fatalf("got %+v\nwant %+v", got, d)
			}
		}},
		{"ok/returned-record-is-a-copy", func(t *testing.T, s registry.Store) {
			d := Device("dev1", "e1")
			must(t, s.CreateDevice(t.Context(), d))
			*d.StatusReason = "mutated after create"
			got, err := s.Device(t.Context(), "dev1")
			must(t, err)
			*got.StatusReason = "mutated after get"
			got.ParentScopes = append(got.ParentScopes, "x")
			again, err := s.Device(t.Context(), "dev1")
			must(t, err)
			if *again.StatusReason != "because" || len(again.ParentScopes) != 0 {
				t.Fatalf("store shares memory with callers: %+v", again)
			}
		}},
		{"fail/create-exists", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			wantErr(t, s.CreateDevice(t.Context(), Device("dev1", "e2")), registry.ErrDeviceExists)
		}},
		{"fail/get-missing", func(t *testing.T, s registry.Store) {
			_, err := s.Device(t.Context(), "nope")
			wantErr(t, err, registry.ErrDeviceNotFound)
		}},
		{"ok/replace-matching-etag", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			d := Device("dev1", "e2")
			d.Status = registry.StatusDisabled
			must(t, s.ReplaceDevice(t.Context(), d, "e1"))
			got, err := s.Device(t.Context(), "dev1")
			must(t, err)
			if got.Etag != "e2" || got.Status != registry.StatusDisabled {
				t.Fatalf("got %+v", got)
			}
		}},
		{"fail/replace-stale-etag", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			wantErr(t, s.ReplaceDevice(t.Context(), Device("dev1", "e3"), "e2"), registry.ErrPreconditionFailed)
			got, err := s.Device(t.Context(), "dev1")
			must(t, err)
			if got.Etag != "e1" {
				t.Fatalf("stale replace changed the record: etag %q", got.Etag)
			}
		}},
		{"fail/replace-missing", func(t *testing.T, s registry.Store) {
			wantErr(t, s.ReplaceDevice(t.Context(), Device("dev1", "e2"), "e1"), registry.ErrDeviceNotFound)
		}},
		{"ok/delete-unconditional", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			must(t, s.DeleteDevice(t.Context(), "dev1", ""))
			_, err := s.Device(t.Context(), "dev1")
			wantErr(t, err, registry.ErrDeviceNotFound)
		}},
		{"ok/delete-matching-etag-then-recreate", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			must(t, s.DeleteDevice(t.Context(), "dev1", "e1"))
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e9")))
		}},
		{"fail/delete-stale-etag", func(t *testing.T, s registry.Store) {
			must(t, s.CreateDevice(t.Context(), Device("dev1", "e1")))
			wantErr(t, s.DeleteDevice(t.Context(), "dev1", "e0"), registry.ErrPreconditionFailed)
			_, err := s.Device(t.Context(), "dev1")
			must(t, err)
		}},
		{"fail/delete-missing", func(t *testing.T, s registry.Store) {
			wantErr(t, s.DeleteDevice(t.Context(), "dev1", ""), registry.ErrDeviceNotFound)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

func list(t *testing.T, fresh func(*testing.T) registry.Store) {
	s := fresh(t)
	ctx := t.Context()
	ids := []string{"b", "a", "c-1", "c", "A", "z'", "m(1)", "0"}
	for _, i := range rand.Perm(len(ids)) {
		must(t, s.CreateDevice(ctx, Device(ids[i], "e")))
	}
	must(t, s.DeleteDevice(ctx, "c", ""))
	want := []string{"0", "A", "a", "b", "c-1", "m(1)", "z'"}

	tests := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"ok/all", "", 100, want},
		{"ok/first-page", "", 3, want[:3]},
		{"ok/after-existing", "a", 2, []string{"b", "c-1"}},
		{"ok/after-deleted", "c", 10, []string{"c-1", "m(1)", "z'"}},
		{"ok/after-last", "z'", 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := s.Devices(ctx, tc.after, tc.limit)
			must(t, err)
			var got []string
			for _, d := range ds {
				got = append(got, d.DeviceID)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Devices(%q, %d) = %q, want %q", tc.after, tc.limit, got, tc.want)
			}
		})
	}
	t.Run("ok/paging-visits-every-device-once", func(t *testing.T) {
		var got []string
		after := ""
		for {
			ds, err := s.Devices(ctx, after, 2)
			must(t, err)
			if len(ds) == 0 {
				break
			}
			for _, d := range ds {
				got = append(got, d.DeviceID)
			}
			after = ds[len(ds)-1].DeviceID
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("paged %q, want %q", got, want)
		}
	})
}

func testCA(name, etag string) registry.CA {
	return registry.CA{
		Name:           name,
		CertificatePEM: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		Thumbprint:     "AB",
		Subject:        "CN=" + name,
		Expiry:         time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Status:         registry.CAUnverified,
		Etag:           etag,
		Created:        time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Updated:        time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func cas(t *testing.T, fresh func(*testing.T) registry.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s registry.Store)
	}{
		{"ok/create-get-list", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root2", "e1")))
			must(t, s.CreateCA(t.Context(), testCA("root1", "e1")))
			got, err := s.CA(t.Context(), "root1")
			must(t, err)
			if !reflect.DeepEqual(got, testCA("root1", "e1")) {
				t.Fatalf("got %+v", got)
			}
			all, err := s.CAs(t.Context())
			must(t, err)
			if len(all) != 2 || all[0].Name != "root1" || all[1].Name != "root2" {
				t.Fatalf("CAs = %+v, want root1, root2", all)
			}
		}},
		{"fail/create-exists", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root", "e1")))
			wantErr(t, s.CreateCA(t.Context(), testCA("root", "e2")), registry.ErrCAExists)
		}},
		{"fail/get-missing", func(t *testing.T, s registry.Store) {
			_, err := s.CA(t.Context(), "root")
			wantErr(t, err, registry.ErrCANotFound)
		}},
		{"ok/replace", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root", "e1")))
			ca := testCA("root", "e2")
			ca.Status = registry.CAVerified
			must(t, s.ReplaceCA(t.Context(), ca, "e1"))
			got, err := s.CA(t.Context(), "root")
			must(t, err)
			if got.Status != registry.CAVerified || got.Etag != "e2" {
				t.Fatalf("got %+v", got)
			}
		}},
		{"fail/replace-stale", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root", "e1")))
			wantErr(t, s.ReplaceCA(t.Context(), testCA("root", "e2"), "e0"), registry.ErrPreconditionFailed)
		}},
		{"fail/replace-missing", func(t *testing.T, s registry.Store) {
			wantErr(t, s.ReplaceCA(t.Context(), testCA("root", "e2"), "e1"), registry.ErrCANotFound)
		}},
		{"ok/delete", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root", "e1")))
			must(t, s.DeleteCA(t.Context(), "root", "e1"))
			_, err := s.CA(t.Context(), "root")
			wantErr(t, err, registry.ErrCANotFound)
		}},
		{"fail/delete-stale", func(t *testing.T, s registry.Store) {
			must(t, s.CreateCA(t.Context(), testCA("root", "e1")))
			wantErr(t, s.DeleteCA(t.Context(), "root", "e0"), registry.ErrPreconditionFailed)
		}},
		{"fail/delete-missing", func(t *testing.T, s registry.Store) {
			wantErr(t, s.DeleteCA(t.Context(), "root", ""), registry.ErrCANotFound)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

func policies(t *testing.T, fresh func(*testing.T) registry.Store) {
	s := fresh(t)
	ctx := t.Context()
	ps, err := s.Policies(ctx)
	must(t, err)
	if len(ps) != 0 {
		t.Fatalf("fresh store has policies %+v", ps)
	}
	first := []registry.Policy{
		{KeyName: "b", PrimaryKey: "k1", SecondaryKey: "k2", Rights: registry.RegistryRead},
		{KeyName: "a", PrimaryKey: "k3", SecondaryKey: "k4", Rights: registry.DeviceConnect},
	}
	got, err := s.EnsurePolicies(ctx, first)
	must(t, err)
	if want := []registry.Policy{first[1], first[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("EnsurePolicies = %+v, want %+v (name order)", got, want)
	}
	second := []registry.Policy{
		{KeyName: "a", PrimaryKey: "new", SecondaryKey: "new", Rights: registry.DeviceConnect},
		{KeyName: "c", PrimaryKey: "k5", SecondaryKey: "k6", Rights: registry.ServiceConnect},
	}
	got, err = s.EnsurePolicies(ctx, second)
	must(t, err)
	if want := []registry.Policy{first[1], first[0], second[1]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("EnsurePolicies kept/added = %+v, want %+v", got, want)
	}
	all, err := s.Policies(ctx)
	must(t, err)
	if !reflect.DeepEqual(all, got) {
		t.Fatalf("Policies = %+v, want %+v", all, got)
	}
}
