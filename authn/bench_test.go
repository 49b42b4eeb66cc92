package authn

import (
	"context"
	"testing"

	"github.com/hubgate/hubgate/registry"
)

// BenchmarkAuthenticateSAS is the hot path: a cached device (in-memory
// DeviceSource), a Node-shaped device-key token signed with the primary key.
func BenchmarkAuthenticateSAS(b *testing.B) {
	devs := &memDevices{devices: map[string]registry.Device{}}
	devs.devices["dev1"] = sasDevice("dev1", keyA, keyB)
	a := newTestAuthenticator(b, devs, nil)
	r := Request{DeviceID: "dev1", Token: deviceToken("dev1", keyA), Transport: TransportTLS}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateSASSecondary signs with the secondary key: two HMACs.
func BenchmarkAuthenticateSASSecondary(b *testing.B) {
	devs := &memDevices{devices: map[string]registry.Device{}}
	devs.devices["dev1"] = sasDevice("dev1", keyA, keyB)
	a := newTestAuthenticator(b, devs, nil)
	r := Request{DeviceID: "dev1", Token: deviceToken("dev1", keyB), Transport: TransportTLS}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSAS(b *testing.B) {
	tok := deviceToken("dev1", keyA)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSAS(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s, err := ParseSAS(deviceToken("dev1", keyA))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !s.Verify(keyA) {
			b.Fatal("no")
		}
	}
}
