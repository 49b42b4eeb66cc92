package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/redistest"
	"github.com/hubgate/hubgate/provisioning"
)

// TestStore runs the store against a real redis-server: CRUD, ordering,
// namespaces, and "unavailable" (never "not found") when Redis hangs.
func TestStore(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s, err := Open(ctx, srv.URL(), "dps-a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(ctx, srv.URL(), "dps-b")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	if _, err := s.Get(ctx, "enrollment", "x"); !errors.Is(err, provisioning.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	for _, id := range []string{"b", "a", "c"} {
		if err := s.Put(ctx, "enrollment", id, []byte(`{"id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := s.Get(ctx, "enrollment", "a"); err != nil || string(b) != `{"id":"a"}` {
		t.Fatalf("get: %s %v", b, err)
	}
	if err := s.Delete(ctx, "enrollment", "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "enrollment", "c"); !errors.Is(err, provisioning.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	docs, err := s.List(ctx, "enrollment")
	if err != nil || len(docs) != 2 || string(docs[0]) != `{"id":"a"}` {
		t.Fatalf("list: %q %v", docs, err)
	}
	if docs, _ := other.List(ctx, "enrollment"); len(docs) != 0 {
		t.Fatalf("namespaces leak: %q", docs)
	}

	// The whole service on Redis: the id scope and policy persist across
	// service instances sharing the store.
	svc1, err := provisioning.New(ctx, provisioning.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	svc2, err := provisioning.New(ctx, provisioning.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := svc1.Policy(provisioning.PolicyName)
	p2, _ := svc2.Policy(provisioning.PolicyName)
	if svc1.IDScope() != svc2.IDScope() || p1.PrimaryKey != p2.PrimaryKey {
		t.Fatal("two nodes on one store disagree on id scope or policy")
	}

	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	if _, err := s.Get(ctx, "enrollment", "a"); !errors.Is(err, provisioning.ErrUnavailable) {
		t.Fatalf("hung redis: want ErrUnavailable, got %v", err)
	}
	if time.Since(start) > 10*time.Second { // the bound is 2 s per command; 10 s means it hung
		t.Fatalf("a hung redis held the call for %v", time.Since(start))
	}
}
