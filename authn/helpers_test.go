package authn

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// Test keys: base64 of 32 ASCII bytes; keyA is the reference §2.6a key.
const (
	keyA = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // "0123456789abcdef0123456789abcdef"
	keyB = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=" // "fedcba9876543210fedcba9876543210"
	keyC = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=" // "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"
	keyP = "cG9saWN5LWtleS1wb2xpY3kta2V5LXBvbGljeS1rZXk=" // policy primary
	keyQ = "c2Vjb25kYXJ5LXBvbGljeS1rZXktc2Vjb25kYXJ5LWs=" // policy secondary
)

const testHost = "hub.example.com"

// t0 is the injected "now" of every test: 2026-12-01T00:00:00Z.
var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// memDevices is an in-memory DeviceSource (the shape of a cache hit).
type memDevices struct {
	devices map[string]registry.Device
	err     error // returned for every lookup when set
}

func (m *memDevices) Device(_ context.Context, id string) (registry.Device, error) {
	if m.err != nil {
		return registry.Device{}, m.err
	}
	d, ok := m.devices[id]
	if !ok {
		return registry.Device{}, registry.ErrDeviceNotFound
	}
	return d, nil
}

type memPolicies map[string]registry.Policy

func (m memPolicies) Policy(name string) (registry.Policy, bool) {
	p, ok := m[name]
	return p, ok
}

type fixedPool struct{ pool *x509.CertPool }

func (f fixedPool) VerifiedCAPool() *x509.CertPool { return f.pool }

func sasDevice(id, primary, secondary string) registry.Device {
	return registry.Device{
		DeviceID: id,
		Etag:     "etag-" + id,
		Status:   registry.StatusEnabled,
		Authentication: registry.Authentication{
			Type:         registry.AuthSAS,
			SymmetricKey: registry.SymmetricKey{PrimaryKey: primary, SecondaryKey: secondary},
		},
	}
}

func ptr(s string) *string { return &s }

func thumbDevice(id string, primary, secondary *string) registry.Device {
	return registry.Device{
		DeviceID: id,
		Etag:     "etag-" + id,
		Status:   registry.StatusEnabled,
		Authentication: registry.Authentication{
			Type:           registry.AuthSelfSigned,
			X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: primary, SecondaryThumbprint: secondary},
		},
	}
}

func caDevice(id string) registry.Device {
	return registry.Device{
		DeviceID:       id,
		Etag:           "etag-" + id,
		Status:         registry.StatusEnabled,
		Authentication: registry.Authentication{Type: registry.AuthCA},
	}
}

func testPolicies() memPolicies {
	return memPolicies{
		"iothubowner": {KeyName: "iothubowner", PrimaryKey: keyP, SecondaryKey: keyQ,
			Rights: registry.RegistryRead | registry.RegistryWrite | registry.ServiceConnect | registry.DeviceConnect},
		"device":       {KeyName: "device", PrimaryKey: keyP, SecondaryKey: keyQ, Rights: registry.DeviceConnect},
		"service":      {KeyName: "service", PrimaryKey: keyP, SecondaryKey: keyQ, Rights: registry.ServiceConnect},
		"registryRead": {KeyName: "registryRead", PrimaryKey: keyP, SecondaryKey: keyQ, Rights: registry.RegistryRead},
		"nokeys":       {KeyName: "nokeys", Rights: registry.DeviceConnect | registry.RegistryRead},
	}
}

func newTestAuthenticator(t testing.TB, devs *memDevices, pool *x509.CertPool) *Authenticator {
	t.Helper()
	a, err := New(Config{
		HostNames: []string{testHost, "upstream.azure-devices.net"},
		Now:       func() time.Time { return t0 },
		Devices:   devs,
		Policies:  testPolicies(),
		CAs:       fixedPool{pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// deviceToken mints a device-key token for host/devices/id valid for an hour after t0.
func deviceToken(id, key string) string {
	return Sign(EncodeResource(testHost+"/devices/"+id), key, t0.Add(time.Hour), "")
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}
