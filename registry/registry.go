package registry

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Registry. Zero values give the defaults of setDefaults.
type Options struct {
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // default crypto/rand.Reader; used for keys, etags, generation ids, codes
	Logger *slog.Logger     // default slog.Default()
}

func (o *Options) setDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Registry is the registry service: it validates and completes records,
// stores them through a Store, keeps policies and the verified CA pool in
// memory, and publishes a Change for every successful write.
type Registry struct {
	store Store
	now   func() time.Time
	log   *slog.Logger

	randMu sync.Mutex // guards rand (a caller-supplied Reader need not be safe for concurrent use)
	rand   io.Reader

	policies map[string]Policy // written once in New, read-only after
	polList  []Policy          // same, in name order

	poolMu sync.Mutex // serialises CA pool rebuilds
	pool   atomic.Pointer[x509.CertPool]

	subMu   sync.Mutex                   // guards nextSub and writes to subs
	nextSub uint64                       // id of the next subscriber
	subs    atomic.Pointer[[]subscriber] // copy-on-write list read without a lock
}

type subscriber struct {
	id uint64
	fn func(Change)
}

// New builds a Registry over store. It creates the default policies with
// fresh keys when the store has none (first start) and keeps stored keys
// otherwise, and loads the verified CA pool.
func New(ctx context.Context, store Store, opts Options) (*Registry, error) {
	opts.setDefaults()
	r := &Registry{store: store, now: opts.Now, log: opts.Logger, rand: opts.Rand}
	r.subs.Store(&[]subscriber{})

	want := make([]Policy, 0, len(DefaultPolicies))
	for _, p := range DefaultPolicies {
		pk, err := r.newKey()
		if err != nil {
			return nil, err
		}
		sk, err := r.newKey()
		if err != nil {
			return nil, err
		}
		p.PrimaryKey, p.SecondaryKey = pk, sk
		want = append(want, p)
	}
	ps, err := store.EnsurePolicies(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("registry: ensure policies: %w", err)
	}
	r.policies = make(map[string]Policy, len(ps))
	for _, p := range ps {
		r.policies[p.KeyName] = p
	}
	r.polList = slices.Clone(ps)
	slices.SortFunc(r.polList, func(a, b Policy) int { return strings.Compare(a.KeyName, b.KeyName) })

	if err := r.RefreshCAs(ctx); err != nil {
		return nil, fmt.Errorf("registry: load CAs: %w", err)
	}
	return r, nil
}

// Subscribe registers fn to be called, synchronously and in the writing
// goroutine, after every successful write through this Registry. fn must not
// block for long. The returned cancel removes fn; it is idempotent.
func (r *Registry) Subscribe(fn func(Change)) (cancel func()) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.nextSub++
	id := r.nextSub
	next := append(slices.Clone(*r.subs.Load()), subscriber{id: id, fn: fn})
	r.subs.Store(&next)
	return func() {
		r.subMu.Lock()
		defer r.subMu.Unlock()
		next := slices.DeleteFunc(slices.Clone(*r.subs.Load()), func(s subscriber) bool { return s.id == id })
		r.subs.Store(&next)
	}
}

func (r *Registry) publish(ch Change) {
	for _, s := range *r.subs.Load() {
		s.fn(ch)
	}
}

// Policy returns the named shared access policy (in memory; never blocks).
func (r *Registry) Policy(name string) (Policy, bool) {
	p, ok := r.policies[name]
	return p, ok
}

// Policies returns all shared access policies in name order.
func (r *Registry) Policies() []Policy { return slices.Clone(r.polList) }

// Device returns the stored device. It is the DeviceGetter a Cache reads through.
func (r *Registry) Device(ctx context.Context, id string) (Device, error) {
	if err := ValidateDeviceID(id); err != nil {
		// No such id can exist; answer like the store would, without a round trip.
		return Device{}, fmt.Errorf("%w: %w", ErrDeviceNotFound, err)
	}
	return r.store.Device(ctx, id)
}

// MaxListLimit caps one Devices page (the hub's list limit, reference §7.2).
const MaxListLimit = 1000

// Devices lists up to limit devices whose id sorts after after. A limit
// outside 1..MaxListLimit means MaxListLimit.
func (r *Registry) Devices(ctx context.Context, after string, limit int) ([]Device, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	return r.store.Devices(ctx, after, limit)
}

// CreateDevice validates d, fills in what the hub fills in (generation id,
// etag, status, connection state, times, keys for a sas device with empty
// keys) and stores it. ErrDeviceExists when the id is taken.
func (r *Registry) CreateDevice(ctx context.Context, d Device) (Device, error) {
	d = d.Clone()
	if err := ValidateDeviceID(d.DeviceID); err != nil {
		return Device{}, err
	}
	now := r.now().UTC()
	var err error
	if d.GenerationID, err = r.newGenerationID(); err != nil {
		return Device{}, err
	}
	if d.Etag, err = r.newEtag(""); err != nil {
		return Device{}, err
	}
	if d.Status == "" {
		d.Status = StatusEnabled
	}
	d.ConnectionState = "Disconnected"
	d.ConnectionStateUpdatedTime = time.Time{}
	d.LastActivityTime = time.Time{}
	d.CloudToDeviceMessageCount = 0
	d.StatusUpdatedTime = now
	if d.ParentScopes == nil {
		d.ParentScopes = []string{}
	}
	d.Authentication.Type = defaultAuthType(d.Authentication)
	if d.Authentication.Type == AuthSAS && d.Authentication.SymmetricKey == (SymmetricKey{}) {
		if d.Authentication.SymmetricKey, err = r.newKeys(); err != nil {
			return Device{}, err
		}
	}
	if err := validateDevice(&d); err != nil {
		return Device{}, err
	}
	if err := r.store.CreateDevice(ctx, d); err != nil {
		return Device{}, err
	}
	r.publish(Change{Kind: ChangeDevice, ID: d.DeviceID, Etag: d.Etag})
	return d, nil
}

// maxCASRetries bounds the retries of an unconditional read-modify-write
// that keeps losing the compare-and-set to concurrent writers.
const maxCASRetries = 100

// UpdateDevice replaces the mutable fields of the stored device d.DeviceID
// with those of d. ifMatch "" or * or "*" is unconditional (retried on a
// concurrent change so no write is lost); any other value is compared with
// the stored etag after stripping quotes and W/ (ErrPreconditionFailed).
//
// Kept from the stored record: generationId (a different non-empty value is
// ErrInvalid), connection state and activity fields. When d carries a sas
// authentication with both keys empty and no thumbprints — what the Node SDK
// sends for registry.update({deviceId, status}) — the stored authentication
// is kept unchanged; reference §7.2 leaves the hub's behaviour open and
// keeping the credentials is the forgiving choice.
func (r *Registry) UpdateDevice(ctx context.Context, d Device, ifMatch string) (Device, error) {
	if err := ValidateDeviceID(d.DeviceID); err != nil {
		return Device{}, err
	}
	want, conditional := parseIfMatch(ifMatch)
	for range maxCASRetries {
		cur, err := r.store.Device(ctx, d.DeviceID)
		if err != nil {
			return Device{}, err
		}
		if conditional && cur.Etag != want {
			return Device{}, fmt.Errorf("%w: device %q has etag %q, If-Match was %q", ErrPreconditionFailed, d.DeviceID, cur.Etag, want)
		}
		next, err := r.merge(cur, d)
		if err != nil {
			return Device{}, err
		}
		err = r.store.ReplaceDevice(ctx, next, cur.Etag)
		switch {
		case err == nil:
			r.publish(Change{Kind: ChangeDevice, ID: next.DeviceID, Etag: next.Etag})
			return next, nil
		case errors.Is(err, ErrPreconditionFailed) && !conditional:
			continue // lost a race with another writer: re-read and apply again
		default:
			return Device{}, err
		}
	}
	return Device{}, fmt.Errorf("%w: device %q: too many concurrent updates, gave up after %d attempts", ErrUnavailable, d.DeviceID, maxCASRetries)
}

func (r *Registry) merge(cur, d Device) (Device, error) {
	if d.GenerationID != "" && d.GenerationID != cur.GenerationID {
		return Device{}, fmt.Errorf("%w: generationId is immutable (stored %q, request %q)", ErrInvalid, cur.GenerationID, d.GenerationID)
	}
	next := cur.Clone()
	etag, err := r.newEtag(cur.Etag)
	if err != nil {
		return Device{}, err
	}
	next.Etag = etag
	status := d.Status
	if status == "" {
		status = cur.Status
	}
	if status != cur.Status {
		next.StatusUpdatedTime = r.now().UTC()
	}
	next.Status = status
	next.StatusReason = cloneString(d.StatusReason)
	next.Capabilities = d.Capabilities
	next.DeviceScope = d.DeviceScope
	next.ParentScopes = []string{}
	if d.ParentScopes != nil {
		next.ParentScopes = slices.Clone(d.ParentScopes)
	}
	auth := d.Authentication
	emptyThumbs := auth.X509Thumbprint.PrimaryThumbprint == nil && auth.X509Thumbprint.SecondaryThumbprint == nil
	switch {
	case (auth.Type == "" || auth.Type == AuthSAS) && auth.SymmetricKey == (SymmetricKey{}) && emptyThumbs:
		// keep the stored credentials (see UpdateDevice)
	default:
		next.Authentication = Authentication{
			Type:         auth.Type,
			SymmetricKey: auth.SymmetricKey,
			X509Thumbprint: X509Thumbprint{
				PrimaryThumbprint:   cloneString(auth.X509Thumbprint.PrimaryThumbprint),
				SecondaryThumbprint: cloneString(auth.X509Thumbprint.SecondaryThumbprint),
			},
		}
		next.Authentication.Type = defaultAuthType(next.Authentication)
	}
	if err := validateDevice(&next); err != nil {
		return Device{}, err
	}
	return next, nil
}

// DeleteDevice removes the device; ifMatch as for UpdateDevice.
func (r *Registry) DeleteDevice(ctx context.Context, id, ifMatch string) error {
	if err := ValidateDeviceID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrDeviceNotFound, err)
	}
	want, conditional := parseIfMatch(ifMatch)
	if !conditional {
		want = ""
	}
	if err := r.store.DeleteDevice(ctx, id, want); err != nil {
		return err
	}
	r.publish(Change{Kind: ChangeDevice, ID: id, Deleted: true})
	return nil
}

// defaultAuthType is a's type, or when unset selfSigned if a thumbprint is
// given (what the Node SDK's normalisation would add, reference §7.2) and sas
// otherwise.
func defaultAuthType(a Authentication) AuthType {
	switch {
	case a.Type != "":
		return a.Type
	case a.X509Thumbprint.PrimaryThumbprint != nil && *a.X509Thumbprint.PrimaryThumbprint != "":
		return AuthSelfSigned
	default:
		return AuthSAS
	}
}

// parseIfMatch returns the etag an If-Match value asks for and whether the
// request is conditional at all: "", * and "*" are unconditional (Node sends
// the quoted form, reference §7.4); quotes and a weak W/ prefix are stripped.
func parseIfMatch(v string) (etag string, conditional bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || v == "*" {
		return "", false
	}
	return v, true
}

// validateDevice checks the fields a client controls and normalises empty
// thumbprint slots to null. Errors wrap ErrInvalid.
func validateDevice(d *Device) error {
	switch d.Status {
	case StatusEnabled, StatusDisabled:
	default:
		return fmt.Errorf("%w: status %q: want %q or %q", ErrInvalid, d.Status, StatusEnabled, StatusDisabled)
	}
	if d.StatusReason != nil && len(*d.StatusReason) > 128 {
		return fmt.Errorf("%w: statusReason is %d characters long, the limit is 128", ErrInvalid, len(*d.StatusReason))
	}
	a := &d.Authentication
	tp := &a.X509Thumbprint
	if tp.PrimaryThumbprint != nil && *tp.PrimaryThumbprint == "" {
		tp.PrimaryThumbprint = nil
	}
	if tp.SecondaryThumbprint != nil && *tp.SecondaryThumbprint == "" {
		tp.SecondaryThumbprint = nil
	}
	hasThumbs := tp.PrimaryThumbprint != nil || tp.SecondaryThumbprint != nil
	hasKeys := a.SymmetricKey != (SymmetricKey{})
	switch a.Type {
	case AuthSAS:
		if hasThumbs {
			return fmt.Errorf("%w: a sas device carries no x509 thumbprints", ErrInvalid)
		}
		if err := validateKey("primaryKey", a.SymmetricKey.PrimaryKey); err != nil {
			return err
		}
		if err := validateKey("secondaryKey", a.SymmetricKey.SecondaryKey); err != nil {
			return err
		}
	case AuthSelfSigned:
		if hasKeys {
			return fmt.Errorf("%w: a selfSigned device carries no symmetric keys", ErrInvalid)
		}
		if tp.PrimaryThumbprint == nil {
			return fmt.Errorf("%w: a selfSigned device needs a primaryThumbprint", ErrInvalid)
		}
		if err := validateThumbprint("primaryThumbprint", *tp.PrimaryThumbprint); err != nil {
			return err
		}
		if tp.SecondaryThumbprint != nil {
			if err := validateThumbprint("secondaryThumbprint", *tp.SecondaryThumbprint); err != nil {
				return err
			}
			if len(*tp.SecondaryThumbprint) != len(*tp.PrimaryThumbprint) {
				return fmt.Errorf("%w: primary and secondary thumbprints must both be SHA-1 or both SHA-256", ErrInvalid)
			}
		}
	case AuthCA, AuthNone:
		if hasKeys || hasThumbs {
			return fmt.Errorf("%w: a %s device carries no symmetric keys and no thumbprints", ErrInvalid, a.Type)
		}
	default:
		return fmt.Errorf("%w: authentication type %q: want sas, selfSigned, certificateAuthority or none", ErrInvalid, a.Type)
	}
	return nil
}

func validateKey(field, k string) error {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return fmt.Errorf("%w: %s is not valid base64", ErrInvalid, field)
	}
	if len(b) < 16 || len(b) > 64 {
		return fmt.Errorf("%w: %s decodes to %d bytes, want 16 to 64", ErrInvalid, field, len(b))
	}
	return nil
}

func validateThumbprint(field, t string) error {
	if len(t) != 40 && len(t) != 64 {
		return fmt.Errorf("%w: %s must be 40 (SHA-1) or 64 (SHA-256) hex digits, got %d characters", ErrInvalid, field, len(t))
	}
	if _, err := hex.DecodeString(t); err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrInvalid, field)
	}
	return nil
}

func (r *Registry) read(b []byte) error {
	r.randMu.Lock()
	defer r.randMu.Unlock()
	if _, err := io.ReadFull(r.rand, b); err != nil {
		return fmt.Errorf("registry: random source: %w", err)
	}
	return nil
}

// newKey returns a fresh 32-byte symmetric key in base64.
func (r *Registry) newKey() (string, error) {
	var b [32]byte
	if err := r.read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

func (r *Registry) newKeys() (SymmetricKey, error) {
	pk, err := r.newKey()
	if err != nil {
		return SymmetricKey{}, err
	}
	sk, err := r.newKey()
	if err != nil {
		return SymmetricKey{}, err
	}
	return SymmetricKey{PrimaryKey: pk, SecondaryKey: sk}, nil
}

// newGenerationID returns an 18-digit decimal number, like the hub's.
func (r *Registry) newGenerationID() (string, error) {
	var b [8]byte
	if err := r.read(b[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint64(b[:])%900_000_000_000_000_000 + 100_000_000_000_000_000
	return strconv.FormatUint(n, 10), nil
}

// newEtag returns a new etag different from prev: base64 of a random decimal
// number, the shape of the hub's etags (base64 of a counter, reference §7.3).
// A counter would restart after a store is reopened; random values do not.
func (r *Registry) newEtag(prev string) (string, error) {
	for {
		var b [8]byte
		if err := r.read(b[:]); err != nil {
			return "", err
		}
		n := binary.BigEndian.Uint64(b[:]) >> 1
		e := base64.StdEncoding.EncodeToString(strconv.AppendUint(nil, n, 10))
		if e != prev {
			return e, nil
		}
	}
}
