package provisioning

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// Store keeps the service's records as JSON documents by kind and id. The
// service serialises writes and checks etags itself; the store only has to
// be durable once Put or Delete returns.
type Store interface {
	Get(ctx context.Context, kind, id string) ([]byte, error) // ErrNotFound
	Put(ctx context.Context, kind, id string, doc []byte) error
	Delete(ctx context.Context, kind, id string) error // ErrNotFound
	List(ctx context.Context, kind string) ([][]byte, error)
	Close() error
}

// Record kinds.
const (
	kindIndividual   = "enrollment"
	kindGroup        = "group"
	kindRegistration = "registration"
	kindHub          = "hub"
	kindMeta         = "meta"
)

// FileStore is the embedded Store: records in memory and an append-only
// JSON-lines log, fsynced before a write is acknowledged (the same scheme as
// registry.FileStore). Open replays the log; a torn last line is dropped and
// the log is compacted when mostly dead.
type FileStore struct {
	path string

	mu      sync.RWMutex                 // guards everything below
	f       *os.File                     // nil once closed
	docs    map[string]map[string][]byte // kind → id → document
	records int
}

type fileRecord struct {
	Op   string          `json:"op"` // put | del
	Kind string          `json:"kind"`
	ID   string          `json:"id"`
	Doc  json.RawMessage `json:"doc,omitempty"`
}

// OpenFileStore opens or creates the log at path (mode 0600: it holds keys).
func OpenFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("provisioning store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("provisioning store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("provisioning store: %s is in use by another process: %w", path, err)
	}
	s := &FileStore{path: path, docs: map[string]map[string][]byte{}}
	valid, err := s.replay(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	live := 0
	for _, m := range s.docs {
		live += len(m)
	}
	if s.records > 1000 && s.records > 2*live {
		if err := s.rewrite(f); err != nil {
			f.Close()
			return nil, err
		}
	} else {
		if err := f.Truncate(valid); err != nil {
			f.Close()
			return nil, fmt.Errorf("provisioning store: %w", err)
		}
		if _, err := f.Seek(valid, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("provisioning store: %w", err)
		}
	}
	s.f = f
	return s, nil
}

// replay applies every complete line and returns the length of that prefix.
func (s *FileStore) replay(f *os.File) (int64, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil // a torn last line was never acknowledged
		}
		if err != nil {
			return 0, fmt.Errorf("provisioning store: read %s: %w", s.path, err)
		}
		var rec fileRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, fmt.Errorf("provisioning store: %s line %d is corrupt: %w", s.path, line, err)
		}
		s.apply(rec)
		s.records++
		off += int64(len(b))
	}
}

func (s *FileStore) apply(rec fileRecord) {
	m := s.docs[rec.Kind]
	if m == nil {
		m = map[string][]byte{}
		s.docs[rec.Kind] = m
	}
	if rec.Op == "del" {
		delete(m, rec.ID)
		return
	}
	m[rec.ID] = slices.Clone([]byte(rec.Doc))
}

// rewrite replaces the log with the live records.
func (s *FileStore) rewrite(f *os.File) error {
	var buf []byte
	n := 0
	for kind, m := range s.docs {
		for id, doc := range m {
			b, err := json.Marshal(fileRecord{Op: "put", Kind: kind, ID: id, Doc: doc})
			if err != nil {
				return err
			}
			buf = append(append(buf, b...), '\n')
			n++
		}
	}
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("provisioning store: compact: %w", err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("provisioning store: compact: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("provisioning store: compact: %w", err)
	}
	s.records = n
	_, err := f.Seek(int64(len(buf)), io.SeekStart)
	return err
}

func (s *FileStore) write(rec fileRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("%w: store closed", ErrUnavailable)
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.records++
	s.apply(rec)
	return nil
}

// Get returns a copy of the document.
func (s *FileStore) Get(_ context.Context, kind, id string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.docs[kind][id]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(b), nil
}

// Put creates or replaces a document.
func (s *FileStore) Put(_ context.Context, kind, id string, doc []byte) error {
	return s.write(fileRecord{Op: "put", Kind: kind, ID: id, Doc: doc})
}

// Delete removes a document.
func (s *FileStore) Delete(_ context.Context, kind, id string) error {
	s.mu.RLock()
	_, ok := s.docs[kind][id]
	s.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	return s.write(fileRecord{Op: "del", Kind: kind, ID: id})
}

// List returns every document of kind, ordered by id.
func (s *FileStore) List(_ context.Context, kind string) ([][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.docs[kind]
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, slices.Clone(m[id]))
	}
	return out, nil
}

// Close closes the log; it is idempotent.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
