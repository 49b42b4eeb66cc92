package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// FileStore is the embedded single-node Store: the live records in memory
// and an append-only JSON-lines log on disk. Every write appends one record
// and fsyncs before it is applied in memory and acknowledged; open replays
// the log and compacts it when it has grown well beyond the live set.
//
// Log format, one JSON object per line:
//
//	{"op":"device","device":{...}}   create or replace
//	{"op":"delDevice","id":"..."}
//	{"op":"ca","ca":{...}}           create or replace
//	{"op":"delCA","id":"..."}
//	{"op":"policy","policy":{...}}
//
// A torn last line (no trailing newline: the process died mid-append, so the
// write was never acknowledged) is dropped with a warning; an undecodable
// complete line anywhere is corruption and fails the open.
//
// One process owns the file: Open takes an exclusive advisory lock where
// the platform has one.
type FileStore struct {
	path string
	log  *slog.Logger

	mu       sync.RWMutex      // guards everything below
	f        *os.File          // the log, opened for append; nil once closed
	size     int64             // length of the log's valid prefix
	broken   error             // set when the log could not be restored after a failed write
	devices  map[string]Device // live devices by id
	ids      []string          // sorted device ids; nil when stale
	cas      map[string]CA
	policies map[string]Policy
	records  int // lines in the log
}

type logRecord struct {
	Op     string  `json:"op"`
	ID     string  `json:"id,omitempty"`
	Device *Device `json:"device,omitempty"`
	CA     *CA     `json:"ca,omitempty"`
	Policy *Policy `json:"policy,omitempty"`
}

const (
	opDevice    = "device"
	opDelDevice = "delDevice"
	opCA        = "ca"
	opDelCA     = "delCA"
	opPolicy    = "policy"
)

// FileStoreOptions tune OpenFileStoreWith.
type FileStoreOptions struct {
	Logger *slog.Logger // default slog.Default()
}

// OpenFileStore opens (creating if needed) the registry log at path; its
// directory is created with mode 0700. The log holds keys: it is 0600.
func OpenFileStore(path string) (*FileStore, error) {
	return OpenFileStoreWith(path, FileStoreOptions{})
}

// OpenFileStoreWith is OpenFileStore with options.
func OpenFileStoreWith(path string, opts FileStoreOptions) (*FileStore, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &FileStore{
		path:     path,
		log:      opts.Logger,
		devices:  map[string]Device{},
		cas:      map[string]CA{},
		policies: map[string]Policy{},
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("filestore: %s is in use by another process: %w", path, err)
	}
	if err := s.replay(f); err != nil {
		f.Close()
		return nil, err
	}
	live := len(s.devices) + len(s.cas) + len(s.policies)
	// Compact when at least half the log is dead records, ignoring small logs:
	// open stays fast and the log stays within about twice the live set.
	if s.records > 1000 && s.records > 2*live {
		f.Close()
		if err := s.compact(); err != nil {
			return nil, err
		}
		if f, err = os.OpenFile(path, os.O_RDWR, 0o600); err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
		if err := lockFile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("filestore: %s is in use by another process: %w", path, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("filestore: %w", err)
		}
		s.size = st.Size()
	}
	if _, err := f.Seek(s.size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("filestore: %w", err)
	}
	s.f = f
	return s, nil
}

func (s *FileStore) replay(f *os.File) error {
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(bytes.TrimSpace(b)) != 0 {
				s.log.Warn("filestore: dropping torn last record (the process stopped mid-write; it was never acknowledged)",
					"path", s.path, "line", line, "bytes", len(b))
			}
			// Cut the torn tail so the next append starts on a line of its own.
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("filestore: truncate torn tail of %s: %w", s.path, err)
			}
			s.size = off
			return nil
		}
		if err != nil {
			return fmt.Errorf("filestore: read %s: %w", s.path, err)
		}
		off += int64(len(b))
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var rec logRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("filestore: %s line %d is corrupt (%v); the log needs repair by hand", s.path, line, err)
		}
		if err := s.apply(rec); err != nil {
			return fmt.Errorf("filestore: %s line %d: %w", s.path, line, err)
		}
		s.records++
	}
}

func (s *FileStore) apply(rec logRecord) error {
	switch {
	case rec.Op == opDevice && rec.Device != nil:
		if _, ok := s.devices[rec.Device.DeviceID]; !ok {
			s.ids = nil
		}
		s.devices[rec.Device.DeviceID] = *rec.Device
	case rec.Op == opDelDevice:
		delete(s.devices, rec.ID)
		s.ids = nil
	case rec.Op == opCA && rec.CA != nil:
		s.cas[rec.CA.Name] = *rec.CA
	case rec.Op == opDelCA:
		delete(s.cas, rec.ID)
	case rec.Op == opPolicy && rec.Policy != nil:
		s.policies[rec.Policy.KeyName] = *rec.Policy
	default:
		return fmt.Errorf("unknown record op %q", rec.Op)
	}
	return nil
}

// compact rewrites the log with one record per live entry: a temporary
// file in the same directory, fsynced, renamed over the log, then the
// directory fsynced.
func (s *FileStore) compact() error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".compact-*")
	if err != nil {
		return fmt.Errorf("filestore: compact: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w) // Encode appends the newline
	n := 0
	write := func(rec logRecord) {
		if err == nil {
			err = enc.Encode(rec)
			n++
		}
	}
	for _, name := range sortedKeys(s.policies) {
		p := s.policies[name]
		write(logRecord{Op: opPolicy, Policy: &p})
	}
	for _, name := range sortedKeys(s.cas) {
		ca := s.cas[name]
		write(logRecord{Op: opCA, CA: &ca})
	}
	for _, id := range sortedKeys(s.devices) {
		d := s.devices[id]
		write(logRecord{Op: opDevice, Device: &d})
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(s.path))
	}
	if err != nil {
		return fmt.Errorf("filestore: compact %s: %w", s.path, err)
	}
	s.log.Info("filestore: compacted registry log", "path", s.path, "records_before", s.records, "records_after", n)
	s.records = n
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// writeLocked appends rec, fsyncs, then applies it. s.mu must be held.
// On a failed append the log is cut back to its previous length so a partial
// line can never end up in the middle; if even that fails, the store refuses
// further writes.
func (s *FileStore) writeLocked(rec logRecord) error {
	if s.f == nil {
		return fmt.Errorf("%w: filestore is closed", ErrUnavailable)
	}
	if s.broken != nil {
		return fmt.Errorf("%w: filestore: %v", ErrUnavailable, s.broken)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("filestore: encode record: %w", err)
	}
	b = append(b, '\n')
	_, err = s.f.Write(b)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			s.broken = fmt.Errorf("log %s could not be restored after a failed write (%v); restart to recover", s.path, terr)
		} else if _, serr := s.f.Seek(s.size, io.SeekStart); serr != nil {
			s.broken = fmt.Errorf("log %s: seek after failed write: %v", s.path, serr)
		}
		return fmt.Errorf("%w: filestore: append to %s: %v", ErrUnavailable, s.path, err)
	}
	s.size += int64(len(b))
	s.records++
	return s.apply(rec)
}

func (s *FileStore) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.f == nil {
		return fmt.Errorf("%w: filestore is closed", ErrUnavailable)
	}
	return nil
}

// Device implements Store.
func (s *FileStore) Device(ctx context.Context, id string) (Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(ctx); err != nil {
		return Device{}, err
	}
	d, ok := s.devices[id]
	if !ok {
		return Device{}, ErrDeviceNotFound
	}
	return d.Clone(), nil
}

// CreateDevice implements Store.
func (s *FileStore) CreateDevice(ctx context.Context, d Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	if _, ok := s.devices[d.DeviceID]; ok {
		return fmt.Errorf("%w: %q", ErrDeviceExists, d.DeviceID)
	}
	d = d.Clone()
	return s.writeLocked(logRecord{Op: opDevice, Device: &d})
}

// ReplaceDevice implements Store.
func (s *FileStore) ReplaceDevice(ctx context.Context, d Device, prevEtag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	cur, ok := s.devices[d.DeviceID]
	if !ok {
		return ErrDeviceNotFound
	}
	if cur.Etag != prevEtag {
		return fmt.Errorf("%w: device %q", ErrPreconditionFailed, d.DeviceID)
	}
	d = d.Clone()
	return s.writeLocked(logRecord{Op: opDevice, Device: &d})
}

// DeleteDevice implements Store.
func (s *FileStore) DeleteDevice(ctx context.Context, id, prevEtag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	cur, ok := s.devices[id]
	if !ok {
		return ErrDeviceNotFound
	}
	if prevEtag != "" && cur.Etag != prevEtag {
		return fmt.Errorf("%w: device %q", ErrPreconditionFailed, id)
	}
	return s.writeLocked(logRecord{Op: opDelDevice, ID: id})
}

// Devices implements Store. Listing is an admin operation: it takes the
// write lock because it may rebuild the sorted id index.
func (s *FileStore) Devices(ctx context.Context, after string, limit int) ([]Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	if s.ids == nil {
		s.ids = sortedKeys(s.devices)
	}
	i := sort.SearchStrings(s.ids, after)
	if i < len(s.ids) && s.ids[i] == after {
		i++
	}
	out := []Device{}
	for ; i < len(s.ids) && len(out) < limit; i++ {
		out = append(out, s.devices[s.ids[i]].Clone())
	}
	return out, nil
}

// CA implements Store.
func (s *FileStore) CA(ctx context.Context, name string) (CA, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(ctx); err != nil {
		return CA{}, err
	}
	ca, ok := s.cas[name]
	if !ok {
		return CA{}, ErrCANotFound
	}
	return ca, nil
}

// CreateCA implements Store.
func (s *FileStore) CreateCA(ctx context.Context, ca CA) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	if _, ok := s.cas[ca.Name]; ok {
		return fmt.Errorf("%w: %q", ErrCAExists, ca.Name)
	}
	return s.writeLocked(logRecord{Op: opCA, CA: &ca})
}

// ReplaceCA implements Store.
func (s *FileStore) ReplaceCA(ctx context.Context, ca CA, prevEtag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	cur, ok := s.cas[ca.Name]
	if !ok {
		return ErrCANotFound
	}
	if cur.Etag != prevEtag {
		return fmt.Errorf("%w: CA %q", ErrPreconditionFailed, ca.Name)
	}
	return s.writeLocked(logRecord{Op: opCA, CA: &ca})
}

// DeleteCA implements Store.
func (s *FileStore) DeleteCA(ctx context.Context, name, prevEtag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return err
	}
	cur, ok := s.cas[name]
	if !ok {
		return ErrCANotFound
	}
	if prevEtag != "" && cur.Etag != prevEtag {
		return fmt.Errorf("%w: CA %q", ErrPreconditionFailed, name)
	}
	return s.writeLocked(logRecord{Op: opDelCA, ID: name})
}

// CAs implements Store; the list is in name order.
func (s *FileStore) CAs(ctx context.Context) ([]CA, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	out := make([]CA, 0, len(s.cas))
	for _, name := range sortedKeys(s.cas) {
		out = append(out, s.cas[name])
	}
	return out, nil
}

// Policies implements Store; the list is in name order.
func (s *FileStore) Policies(ctx context.Context) ([]Policy, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	return s.policiesLocked(), nil
}

func (s *FileStore) policiesLocked() []Policy {
	out := make([]Policy, 0, len(s.policies))
	for _, name := range sortedKeys(s.policies) {
		out = append(out, s.policies[name])
	}
	return out
}

// EnsurePolicies implements Store.
func (s *FileStore) EnsurePolicies(ctx context.Context, ps []Policy) ([]Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	for _, p := range ps {
		if _, ok := s.policies[p.KeyName]; ok {
			continue
		}
		if err := s.writeLocked(logRecord{Op: opPolicy, Policy: &p}); err != nil {
			return nil, err
		}
	}
	return s.policiesLocked(), nil
}

// Close closes the log. It is idempotent; later calls to other methods
// return ErrUnavailable.
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
