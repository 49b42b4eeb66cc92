package registry_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
	"github.com/hubgate/hubgate/registry/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openFile(t *testing.T, path string) *registry.FileStore {
	t.Helper()
	s, err := registry.OpenFileStoreWith(path, registry.FileStoreOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testStore runs the conformance suite; a Redis store calls storetest.Run the same way.
func testStore(t *testing.T, open func(t *testing.T) registry.Store) { storetest.Run(t, open) }

func TestFileStore(t *testing.T) {
	testStore(t, func(t *testing.T) registry.Store {
		return openFile(t, filepath.Join(t.TempDir(), "registry.jsonl"))
	})
}

func TestFileStoreRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "registry.jsonl")
	ctx := t.Context()
	s := openFile(t, path)
	reg := newRegistry(t, s)
	d, err := reg.CreateDevice(ctx, registry.Device{DeviceID: "dev1"})
	must(t, err)
	_, err = reg.CreateDevice(ctx, registry.Device{DeviceID: "gone"})
	must(t, err)
	must(t, reg.DeleteDevice(ctx, "gone", ""))
	root, err := pki.NewRootCA("root", pki.Options{})
	must(t, err)
	_, err = reg.AddCA(ctx, "root", root.CertPEM(), true)
	must(t, err)
	policies := reg.Policies()
	must(t, s.Close())

	s2 := openFile(t, path)
	t.Cleanup(func() { s2.Close() })
	reg2 := newRegistry(t, s2)
	got, err := reg2.Device(ctx, "dev1")
	must(t, err)
	if got.Etag != d.Etag || got.Authentication.SymmetricKey != d.Authentication.SymmetricKey {
		t.Fatalf("after restart got %+v, want %+v", got, d)
	}
	if _, err := reg2.Device(ctx, "gone"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatalf("deleted device after restart: %v", err)
	}
	if ca, err := reg2.CA(ctx, "root"); err != nil || ca.Status != registry.CAVerified {
		t.Fatalf("CA after restart: %+v, %v", ca, err)
	}
	if _, err := leafOf(t, root).Verify(verifyOpts(reg2)); err != nil {
		t.Fatalf("verified pool after restart: %v", err)
	}
	if got := reg2.Policies(); !equalPolicies(got, policies) {
		t.Fatalf("policy keys changed across restart:\n%+v\n%+v", got, policies)
	}
}

func equalPolicies(a, b []registry.Policy) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFileStoreTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.jsonl")
	ctx := t.Context()
	s := openFile(t, path)
	must(t, s.CreateDevice(ctx, storetest.Device("dev1", "e1")))
	must(t, s.Close())

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString(`{"op":"device","device":{"deviceId":"dev2","et`)
	must(t, err)
	must(t, f.Close())

	s = openFile(t, path)
	if _, err := s.Device(ctx, "dev1"); err != nil {
		t.Fatalf("dev1 lost: %v", err)
	}
	if _, err := s.Device(ctx, "dev2"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatalf("torn dev2: %v, want not found", err)
	}
	// The torn tail was cut: later appends start on their own line and
	// survive the next open.
	must(t, s.CreateDevice(ctx, storetest.Device("dev3", "e1")))
	must(t, s.Close())
	s = openFile(t, path)
	defer s.Close()
	if _, err := s.Device(ctx, "dev3"); err != nil {
		t.Fatalf("dev3 after torn tail: %v", err)
	}
}

func TestFileStoreCorruptMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.jsonl")
	s := openFile(t, path)
	must(t, s.CreateDevice(t.Context(), storetest.Device("dev1", "e1")))
	must(t, s.Close())
	b, err := os.ReadFile(path)
	must(t, err)
	b = append([]byte("{not json\n"), b...)
	must(t, os.WriteFile(path, b, 0o600))
	_, err = registry.OpenFileStoreWith(path, registry.FileStoreOptions{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "line 1 is corrupt") {
		t.Fatalf("open of corrupt log: %v, want a line 1 corruption error", err)
	}
}

func TestFileStoreCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.jsonl")
	ctx := t.Context()
	s := openFile(t, path)
	must(t, s.CreateDevice(ctx, storetest.Device("dev1", "e0")))
	must(t, s.CreateDevice(ctx, storetest.Device("dev2", "x")))
	prev := "e0"
	for i := range 1500 {
		next := storetest.Device("dev1", base64.StdEncoding.EncodeToString([]byte{byte(i), byte(i >> 8)}))
		must(t, s.ReplaceDevice(ctx, next, prev))
		prev = next.Etag
	}
	must(t, s.Close())

	s = openFile(t, path)
	defer s.Close()
	b, err := os.ReadFile(path)
	must(t, err)
	if n := bytes.Count(b, []byte("\n")); n != 2 {
		t.Fatalf("compacted log has %d lines, want 2", n)
	}
	got, err := s.Device(ctx, "dev1")
	must(t, err)
	if got.Etag != prev {
		t.Fatalf("after compaction etag %q, want %q", got.Etag, prev)
	}
	must(t, s.ReplaceDevice(ctx, storetest.Device("dev1", "after"), prev))
	matches, _ := filepath.Glob(path + ".compact-*")
	if len(matches) != 0 {
		t.Fatalf("temporary files left behind: %q", matches)
	}
}

func TestFileStoreSingleOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.jsonl")
	s := openFile(t, path)
	defer s.Close()
	if s2, err := registry.OpenFileStore(path); err == nil {
		s2.Close()
		t.Fatal("a second open of the same log succeeded")
	}
}
