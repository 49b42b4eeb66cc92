package authn

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

// valid is a validity window around t0, the injected now.
var valid = pki.Options{NotBefore: t0.Add(-24 * time.Hour), Validity: 365 * 24 * time.Hour}

func selfSignedFixture() ([]*x509.Certificate, error) {
	kp, err := pki.SelfSignedClient("dev1", valid)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{kp.Cert}, nil
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestAuthenticateThumbprint(t *testing.T) {
	kp := must[*pki.KeyPair](t)
	leaf := kp(pki.SelfSignedClient("anything", valid)).Cert // CN is not checked for thumbprints
	other := kp(pki.SelfSignedClient("other", valid)).Cert
	expired := kp(pki.SelfSignedClient("ss", pki.Options{NotBefore: t0.Add(-48 * time.Hour), Validity: 24 * time.Hour})).Cert
	future := kp(pki.SelfSignedClient("ss", pki.Options{NotBefore: t0.Add(time.Hour), Validity: 24 * time.Hour})).Cert
	soon := kp(pki.SelfSignedClient("ss", pki.Options{NotBefore: t0.Add(4 * time.Minute), Validity: 24 * time.Hour})).Cert
	root := kp(pki.NewRootCA("root", valid))
	chained := kp(root.IssueClient("ss", valid)).Cert

	s1, s256 := Thumbprints(leaf.Raw)
	o1, _ := Thumbprints(other.Raw)
	e1, _ := Thumbprints(expired.Raw)
	f1, _ := Thumbprints(future.Raw)
	n1, _ := Thumbprints(soon.Raw)
	c1, _ := Thumbprints(chained.Raw)

	tests := []struct {
		name      string
		primary   *string
		secondary *string
		chain     []*x509.Certificate
		transport Transport
		err       error
		slot      Slot
	}{
		{name: "ok/sha1-upper", primary: &s1, chain: []*x509.Certificate{leaf}, slot: SlotPrimary},
		{name: "ok/sha1-lower", primary: ptr(strings.ToLower(s1)), chain: []*x509.Certificate{leaf}, slot: SlotPrimary},
		{name: "ok/sha256-upper", primary: &s256, chain: []*x509.Certificate{leaf}, slot: SlotPrimary},
		{name: "ok/sha256-lower", primary: ptr(strings.ToLower(s256)), chain: []*x509.Certificate{leaf}, slot: SlotPrimary},
		{name: "ok/secondary", primary: &o1, secondary: &s256, chain: []*x509.Certificate{leaf}, slot: SlotSecondary},
		{name: "ok/secondary-only", secondary: &s1, chain: []*x509.Certificate{leaf}, slot: SlotSecondary},
		{name: "ok/websocket", primary: &s1, chain: []*x509.Certificate{leaf}, transport: TransportWebSocket, slot: SlotPrimary},
		{name: "ok/chain-ignored", primary: &c1, chain: []*x509.Certificate{chained}, slot: SlotPrimary},
		{name: "ok/not-yet-valid-within-leeway", primary: &n1, chain: []*x509.Certificate{soon}, slot: SlotPrimary},
		{name: "fail/thumbprint-mismatch", primary: &o1, chain: []*x509.Certificate{leaf}, err: ErrThumbprintMismatch},
		{name: "fail/thumbprint-of-issuer", primary: ptr(pki.SHA1Thumbprint(root.Cert.Raw)), chain: []*x509.Certificate{chained, root.Cert}, err: ErrThumbprintMismatch},
		{name: "fail/truncated-thumbprint", primary: ptr(s1[:39]), chain: []*x509.Certificate{leaf}, err: ErrThumbprintMismatch},
		{name: "fail/no-thumbprints", chain: []*x509.Certificate{leaf}, err: ErrThumbprintMismatch},
		{name: "fail/empty-thumbprints", primary: ptr(""), secondary: ptr(""), chain: []*x509.Certificate{leaf}, err: ErrThumbprintMismatch},
		{name: "fail/expired-cert", primary: &e1, chain: []*x509.Certificate{expired}, err: ErrCertificateExpired},
		{name: "fail/not-yet-valid", primary: &f1, chain: []*x509.Certificate{future}, err: ErrCertificateExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := thumbDevice("ss", tt.primary, tt.secondary)
			a := newTestAuthenticator(t, &memDevices{devices: map[string]registry.Device{"ss": d}}, nil)
			tr := tt.transport
			if tr == 0 {
				tr = TransportTLS
			}
			id, err := a.Authenticate(t.Context(), Request{DeviceID: "ss", PeerCertificates: tt.chain, Transport: tr})
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			if id.Method != MethodX509Thumbprint || id.Slot != tt.slot || id.Etag != "etag-ss" || !id.Expires.Equal(tt.chain[0].NotAfter) {
				t.Fatalf("identity %+v", id)
			}
		})
	}
}

type caFixture struct {
	root, inter, otherRoot *pki.KeyPair
	verified               *x509.CertPool // root only
}

func newCAFixture(t *testing.T) caFixture {
	kp := must[*pki.KeyPair](t)
	f := caFixture{root: kp(pki.NewRootCA("verified root", valid)), otherRoot: kp(pki.NewRootCA("unverified root", valid))}
	f.inter = kp(f.root.IssueIntermediate("intermediate", valid))
	f.verified = x509.NewCertPool()
	f.verified.AddCert(f.root.Cert)
	return f
}

func TestAuthenticateCA(t *testing.T) {
	f := newCAFixture(t)
	kp := must[*pki.KeyPair](t)
	direct := kp(f.root.IssueClient("ca", valid)).Cert
	viaInter := kp(f.inter.IssueClient("ca", valid)).Cert
	wrongCN := kp(f.root.IssueClient("CA", valid)).Cert
	unverified := kp(f.otherRoot.IssueClient("ca", valid)).Cert
	selfSigned := kp(pki.SelfSignedClient("ca", valid)).Cert
	serverOnly := kp(f.root.IssueServer([]string{"ca"}, valid)).Cert
	expired := kp(f.root.IssueClient("ca", pki.Options{NotBefore: t0.Add(-48 * time.Hour), Validity: 24 * time.Hour})).Cert
	expiredInter := kp(f.root.IssueIntermediate("old intermediate", pki.Options{NotBefore: t0.Add(-48 * time.Hour), Validity: 24 * time.Hour}))
	viaExpiredInter := kp(expiredInter.IssueClient("ca", valid)).Cert

	onlyOther := x509.NewCertPool()
	onlyOther.AddCert(f.otherRoot.Cert)
	chain := func(c ...*x509.Certificate) []*x509.Certificate { return c }

	tests := []struct {
		name      string
		chain     []*x509.Certificate
		pool      *x509.CertPool
		transport Transport
		err       error
	}{
		{name: "ok/direct", chain: chain(direct), pool: f.verified},
		{name: "ok/through-intermediate", chain: chain(viaInter, f.inter.Cert), pool: f.verified},
		{name: "ok/root-also-presented", chain: chain(viaInter, f.inter.Cert, f.root.Cert), pool: f.verified},
		{name: "fail/intermediate-missing", chain: chain(viaInter), pool: f.verified, err: ErrUntrustedChain},
		{name: "fail/ca-unverified", chain: chain(unverified, f.otherRoot.Cert), pool: f.verified, err: ErrUntrustedChain},
		{name: "fail/no-verified-ca", chain: chain(direct), pool: nil, err: ErrUntrustedChain},
		{name: "fail/pool-without-our-ca", chain: chain(direct), pool: onlyOther, err: ErrUntrustedChain},
		{name: "fail/self-signed-leaf", chain: chain(selfSigned), pool: f.verified, err: ErrUntrustedChain},
		{name: "fail/not-for-client-auth", chain: chain(serverOnly), pool: f.verified, err: ErrUntrustedChain},
		{name: "fail/cn-mismatch", chain: chain(wrongCN), pool: f.verified, err: ErrCommonNameMismatch},
		{name: "fail/expired-leaf", chain: chain(expired), pool: f.verified, err: ErrCertificateExpired},
		{name: "fail/expired-intermediate", chain: chain(viaExpiredInter, expiredInter.Cert), pool: f.verified, err: ErrCertificateExpired},
		{name: "fail/websocket", chain: chain(direct), pool: f.verified, transport: TransportWebSocket, err: ErrTransportNotAllowed},
		// Refused for the transport before any chain work: even with no CA at all.
		{name: "fail/websocket-before-chain", chain: chain(unverified), pool: nil, transport: TransportWebSocket, err: ErrTransportNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuthenticator(t, &memDevices{devices: map[string]registry.Device{"ca": caDevice("ca")}}, tt.pool)
			tr := tt.transport
			if tr == 0 {
				tr = TransportTLS
			}
			id, err := a.Authenticate(t.Context(), Request{DeviceID: "ca", PeerCertificates: tt.chain, Transport: tr})
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			if id.Method != MethodX509CA || id.Slot != SlotNone || id.Etag != "etag-ca" || !id.Expires.Equal(tt.chain[0].NotAfter) {
				t.Fatalf("identity %+v", id)
			}
		})
	}
}

// Rule 2 for certificates: the registered type decides, in every direction.
func TestAuthenticateX509TypeMismatch(t *testing.T) {
	f := newCAFixture(t)
	kp := must[*pki.KeyPair](t)
	caLeaf := kp(f.root.IssueClient("d", valid)).Cert
	ssLeaf := kp(pki.SelfSignedClient("d", valid)).Cert
	s1, _ := Thumbprints(ssLeaf.Raw)
	c1, _ := Thumbprints(caLeaf.Raw)
	none := sasDevice("d", keyA, keyB)
	none.Authentication.Type = registry.AuthNone
	disabled := thumbDevice("d", &s1, nil)
	disabled.Status = registry.StatusDisabled
	tests := []struct {
		name   string
		device registry.Device
		leaf   *x509.Certificate
		err    error
	}{
		{"fail/sas-device-with-cert", sasDevice("d", keyA, keyB), ssLeaf, ErrAuthTypeMismatch},
		{"fail/none-device-with-cert", none, ssLeaf, ErrAuthTypeMismatch},
		// A CA-issued cert whose thumbprint is registered works as a thumbprint
		// device (DPS registers CA-enrolled devices that way, DESIGN.md rule 2)...
		{"ok/selfsigned-device-with-ca-issued-cert", thumbDevice("d", &c1, nil), caLeaf, nil},
		// ...but a CA device never falls back to thumbprints.
		{"fail/ca-device-with-untrusted-cert", caDevice("d"), ssLeaf, ErrUntrustedChain},
		{"fail/disabled", disabled, ssLeaf, ErrDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAuthenticator(t, &memDevices{devices: map[string]registry.Device{"d": tt.device}}, f.verified)
			_, err := a.Authenticate(t.Context(), Request{DeviceID: "d", PeerCertificates: []*x509.Certificate{tt.leaf}, Transport: TransportTLS})
			wantErr(t, err, tt.err)
		})
	}
	a := newTestAuthenticator(t, &memDevices{}, f.verified)
	_, err := a.Authenticate(t.Context(), Request{DeviceID: "ghost", PeerCertificates: []*x509.Certificate{ssLeaf}, Transport: TransportTLS})
	wantErr(t, err, ErrUnknownDevice)
}

func TestThumbprints(t *testing.T) {
	der := []byte("not really a certificate")
	s1, s256 := Thumbprints(der)
	w1, w256 := sha1.Sum(der), sha256.Sum256(der)
	if s1 != pki.SHA1Thumbprint(der) || s256 != pki.SHA256Thumbprint(der) || len(s1) != 40 || len(s256) != 64 {
		t.Fatalf("Thumbprints = %s %s", s1, s256)
	}
	for _, tp := range []string{s1, s256, strings.ToLower(s1), strings.ToLower(s256)} {
		if !thumbprintMatches(tp, &w1, &w256) {
			t.Errorf("ok/%s does not match", tp)
		}
	}
	for _, tp := range []string{"", s1[:38], s1 + "00", strings.Replace(s256, s256[:1], "G", 1), "0x" + s1[2:]} {
		if thumbprintMatches(tp, &w1, &w256) {
			t.Errorf("fail/%q matches", tp)
		}
	}
}

func TestStillAllowed(t *testing.T) {
	f := newCAFixture(t)
	kp := must[*pki.KeyPair](t)
	leaf := kp(pki.SelfSignedClient("ss", valid)).Cert
	other := kp(pki.SelfSignedClient("ss", valid)).Cert
	caLeaf := kp(f.root.IssueClient("ca", valid)).Cert
	s1, s256 := Thumbprints(leaf.Raw)
	o1, _ := Thumbprints(other.Raw)

	devs := sasDevices()
	devs.devices["ss"] = thumbDevice("ss", &s1, &o1)
	devs.devices["ca"] = caDevice("ca")
	a := newTestAuthenticator(t, devs, f.verified)
	auth := func(r Request) Identity {
		t.Helper()
		r.Transport = TransportTLS
		id, err := a.Authenticate(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	sasPrimary := auth(Request{DeviceID: "dev1", Token: deviceToken("dev1", keyA)})
	sasSecondary := auth(Request{DeviceID: "dev1", Token: deviceToken("dev1", keyB)})
	policy := auth(Request{DeviceID: "dev1", Token: Sign(testHost, keyP, t0.Add(time.Hour), "device")})
	thumb := auth(Request{DeviceID: "ss", PeerCertificates: []*x509.Certificate{leaf}})
	ca := auth(Request{DeviceID: "ca", PeerCertificates: []*x509.Certificate{caLeaf}})

	edit := func(d registry.Device, fn func(*registry.Device)) registry.Device {
		d.Etag += "-new"
		fn(&d)
		return d
	}
	sas, ss, cad := devs.devices["dev1"], devs.devices["ss"], devs.devices["ca"]
	disable := func(d *registry.Device) { d.Status = registry.StatusDisabled }
	tests := []struct {
		name string
		id   Identity
		d    registry.Device
		ok   bool
	}{
		{"ok/sas-unchanged", sasPrimary, sas, true},
		{"ok/sas-other-slot-rotated", sasPrimary, edit(sas, func(d *registry.Device) { d.Authentication.SymmetricKey.SecondaryKey = keyC }), true},
		{"ok/sas-other-field-changed", sasSecondary, edit(sas, func(d *registry.Device) { d.Capabilities.IoTEdge = true }), true},
		{"fail/sas-key-rotated", sasPrimary, edit(sas, func(d *registry.Device) { d.Authentication.SymmetricKey.PrimaryKey = keyC }), false},
		{"fail/sas-keys-swapped", sasSecondary, edit(sas, func(d *registry.Device) {
			k := &d.Authentication.SymmetricKey
			k.PrimaryKey, k.SecondaryKey = k.SecondaryKey, k.PrimaryKey
		}), false},
		{"fail/sas-key-removed", sasSecondary, edit(sas, func(d *registry.Device) { d.Authentication.SymmetricKey.SecondaryKey = "" }), false},
		{"fail/sas-disabled", sasPrimary, edit(sas, disable), false},
		{"fail/sas-type-changed", sasPrimary, edit(sas, func(d *registry.Device) { d.Authentication.Type = registry.AuthSelfSigned }), false},
		{"fail/other-device", sasPrimary, devs.devices["registered"], false},
		{"ok/policy-unchanged", policy, sas, true},
		{"ok/policy-keys-rotated", policy, edit(sas, func(d *registry.Device) { d.Authentication.SymmetricKey.PrimaryKey = keyC }), true},
		{"fail/policy-disabled", policy, edit(sas, disable), false},
		{"fail/policy-type-changed", policy, edit(sas, func(d *registry.Device) { d.Authentication.Type = registry.AuthCA }), false},
		{"ok/thumbprint-unchanged", thumb, ss, true},
		{"ok/thumbprint-case-changed", thumb, edit(ss, func(d *registry.Device) { d.Authentication.X509Thumbprint.PrimaryThumbprint = ptr(strings.ToLower(s1)) }), true},
		{"ok/thumbprint-sha1-to-sha256", thumb, edit(ss, func(d *registry.Device) { d.Authentication.X509Thumbprint.PrimaryThumbprint = &s256 }), true},
		{"ok/thumbprint-other-slot-changed", thumb, edit(ss, func(d *registry.Device) { d.Authentication.X509Thumbprint.SecondaryThumbprint = nil }), true},
		{"fail/thumbprint-changed", thumb, edit(ss, func(d *registry.Device) { d.Authentication.X509Thumbprint.PrimaryThumbprint = &o1 }), false},
		{"fail/thumbprint-removed", thumb, edit(ss, func(d *registry.Device) { d.Authentication.X509Thumbprint.PrimaryThumbprint = nil }), false},
		{"fail/thumbprint-disabled", thumb, edit(ss, disable), false},
		{"fail/thumbprint-type-changed", thumb, edit(ss, func(d *registry.Device) { d.Authentication.Type = registry.AuthCA }), false},
		{"ok/ca-unchanged", ca, cad, true},
		{"fail/ca-disabled", ca, edit(cad, disable), false},
		{"fail/ca-type-changed", ca, edit(cad, func(d *registry.Device) { d.Authentication.Type = registry.AuthSelfSigned }), false},
		{"fail/zero-identity", Identity{DeviceID: "dev1"}, sas, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.StillAllowed(tt.id, tt.d); got != tt.ok {
				t.Fatalf("StillAllowed = %v, want %v", got, tt.ok)
			}
		})
	}
}
