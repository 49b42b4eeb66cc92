package registry

import "context"

// Store persists a hub's registry. Implementations: the embedded file store
// (default, single node) and, later, Redis (several nodes). Stores are dumb:
// keys, etags and generation ids are chosen by Registry before a record
// reaches the store; the store only guarantees atomic compare-and-set on etags.
//
// Every method returns ErrUnavailable (wrapped) when the backend cannot answer.
type Store interface {
	Device(ctx context.Context, id string) (Device, error) // ErrDeviceNotFound
	// CreateDevice stores d; ErrDeviceExists when d.DeviceID is taken.
	CreateDevice(ctx context.Context, d Device) error
	// ReplaceDevice stores d when the stored record's etag equals prevEtag;
	// ErrDeviceNotFound, ErrPreconditionFailed.
	ReplaceDevice(ctx context.Context, d Device, prevEtag string) error
	// DeleteDevice removes the device when prevEtag is "" or equals its etag.
	DeleteDevice(ctx context.Context, id, prevEtag string) error
	// Devices lists up to limit devices with ids greater than after, in id order.
	Devices(ctx context.Context, after string, limit int) ([]Device, error)

	CA(ctx context.Context, name string) (CA, error) // ErrCANotFound
	CreateCA(ctx context.Context, ca CA) error       // ErrCAExists
	ReplaceCA(ctx context.Context, ca CA, prevEtag string) error
	DeleteCA(ctx context.Context, name, prevEtag string) error
	CAs(ctx context.Context) ([]CA, error) // in name order

	Policies(ctx context.Context) ([]Policy, error) // in name order
	// EnsurePolicies stores each policy whose name is absent and returns the
	// full stored set in name order (first start creates the keys; later
	// starts keep them).
	EnsurePolicies(ctx context.Context, ps []Policy) ([]Policy, error)

	Close() error
}

// ChangeKind says what kind of record a Change is about.
type ChangeKind uint8

const (
	ChangeDevice ChangeKind = iota + 1
	ChangeCA
	ChangePolicy
)

// Change is the event every registry write publishes. Etag is the new etag,
// empty when the record was deleted.
type Change struct {
	Kind    ChangeKind
	ID      string
	Etag    string
	Deleted bool
}
