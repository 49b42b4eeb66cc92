package authn

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/registry"
)

func sasDevices() *memDevices {
	disabled := sasDevice("off", keyA, keyB)
	disabled.Status = registry.StatusDisabled
	none := sasDevice("none", keyA, keyB)
	none.Authentication.Type = registry.AuthNone
	weird := sasDevice("weird", keyA, keyB)
	weird.Authentication.Type = "symmetricKey"
	selfSigned := thumbDevice("ss", ptr("00"), nil)
	selfSigned.Authentication.SymmetricKey = registry.SymmetricKey{PrimaryKey: keyA, SecondaryKey: keyB}
	ca := caDevice("ca")
	ca.Authentication.SymmetricKey = registry.SymmetricKey{PrimaryKey: keyA}
	return &memDevices{devices: map[string]registry.Device{
		"dev1":       sasDevice("dev1", keyA, keyB),
		"dev":        sasDevice("dev", keyC, keyC),
		"only2":      sasDevice("only2", "", keyB),
		"nokeys":     sasDevice("nokeys", "", ""),
		"a+b%c":      sasDevice("a+b%c", keyA, keyB),
		"off":        disabled,
		"none":       none,
		"weird":      weird,
		"ss":         selfSigned,
		"ca":         ca,
		"registered": sasDevice("registered", keyA, keyB),
	}}
}

func TestAuthenticateSAS(t *testing.T) {
	a := newTestAuthenticator(t, sasDevices(), nil)
	exp := t0.Add(time.Hour)
	se := strconv.FormatInt(exp.Unix(), 10)
	// signed builds a token over the literal sr with extra fields appended.
	signed := func(sr, se, key string, extra ...string) string {
		return tok(append([]string{"sr=" + sr, "sig=" + stdSig(t, sr, se, key), "se=" + se}, extra...)...)
	}
	enc := func(s string) string { return EncodeResource(s) }
	ago := func(d time.Duration) string { return strconv.FormatInt(t0.Add(-d).Unix(), 10) }
	tests := []struct {
		name    string
		device  string
		token   string
		err     error
		slot    Slot
		method  Method
		policy  string
		expires time.Time
	}{
		// Device keys.
		{name: "ok/sas-primary", device: "dev1", token: deviceToken("dev1", keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/sas-secondary", device: "dev1", token: deviceToken("dev1", keyB), slot: SlotSecondary, method: MethodSAS},
		{name: "ok/sas-secondary-only", device: "only2", token: deviceToken("only2", keyB), slot: SlotSecondary, method: MethodSAS},
		{name: "ok/lower-hex-escapes", device: "dev1", token: signed("hub.example.com%2fdevices%2fdev1", se, keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/unencoded-sr", device: "dev1", token: signed("hub.example.com/devices/dev1", se, keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/special-chars-in-id", device: "a+b%c", token: deviceToken("a+b%c", keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/docs-field-order", device: "dev1", token: tok("sig="+stdSig(t, enc(testHost+"/devices/dev1"), se, keyA), "se="+se, "sr="+enc(testHost+"/devices/dev1")), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/field-names-upper-case", device: "dev1", token: tok("SR="+enc(testHost+"/devices/dev1"), "SIG="+stdSig(t, enc(testHost+"/devices/dev1"), se, keyA), "SE="+se), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/host-case-insensitive", device: "dev1", token: signed(enc("HUB.Example.COM/devices/dev1"), se, keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/second-host-name", device: "dev1", token: signed(enc("upstream.azure-devices.net/devices/dev1"), se, keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/host-with-port", device: "dev1", token: signed(enc(testHost+":8883/devices/dev1"), se, keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "ok/expired-within-leeway", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), ago(4*time.Minute), keyA), slot: SlotPrimary, method: MethodSAS, expires: t0.Add(time.Minute)},
		{name: "ok/expiry-boundary", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), ago(5*time.Minute), keyA), slot: SlotPrimary, method: MethodSAS, expires: t0},
		{name: "ok/decimal-se", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), se+".0", keyA), slot: SlotPrimary, method: MethodSAS},
		{name: "fail/expired", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), ago(5*time.Minute+time.Second), keyA), err: ErrExpiredToken},
		{name: "fail/expired-long-ago", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), "0", keyA), err: ErrExpiredToken},
		{name: "fail/bad-signature", device: "dev1", token: deviceToken("dev1", keyC), err: ErrBadSignature},
		{name: "fail/tampered-se", device: "dev1", token: strings.Replace(deviceToken("dev1", keyA), "&se="+se, "&se="+strconv.FormatInt(exp.Unix()+3600, 10), 1), err: ErrBadSignature},
		{name: "fail/re-encoded-sr", device: "dev1", token: strings.Replace(deviceToken("dev1", keyA), "%2F", "%2f", -1), err: ErrBadSignature},
		{name: "fail/no-keys", device: "nokeys", token: deviceToken("nokeys", keyA), err: ErrBadSignature},
		{name: "fail/wrong-host", device: "dev1", token: signed(enc("evil.example.com/devices/dev1"), se, keyA), err: ErrWrongHost},
		{name: "fail/host-suffix", device: "dev1", token: signed(enc("xhub.example.com/devices/dev1"), se, keyA), err: ErrWrongHost},
		{name: "fail/host-bad-port", device: "dev1", token: signed(enc(testHost+":88x/devices/dev1"), se, keyA), err: ErrWrongHost},
		{name: "fail/other-device", device: "dev1", token: deviceToken("dev", keyA), err: ErrWrongAudience},
		{name: "fail/id-case", device: "dev1", token: deviceToken("DEV1", keyA), err: ErrWrongAudience},
		{name: "fail/device-key-prefix", device: "dev1", token: signed(enc(testHost+"/devices"), se, keyA), err: ErrWrongAudience},
		{name: "fail/device-key-host-only", device: "dev1", token: signed(testHost, se, keyA), err: ErrWrongAudience},
		{name: "fail/device-key-longer-path", device: "dev1", token: signed(enc(testHost+"/devices/dev1/messages"), se, keyA), err: ErrWrongAudience},
		{name: "fail/device-key-string-prefix", device: "dev", token: deviceToken("dev1", keyC), err: ErrWrongAudience},
		{name: "fail/devices-case", device: "dev1", token: signed(enc(testHost+"/Devices/dev1"), se, keyA), err: ErrWrongAudience},
		{name: "fail/module-sr", device: "dev1", token: signed(enc(testHost+"/devices/dev1/modules/m1"), se, keyA), err: ErrModuleNotSupported},
		{name: "fail/malformed", device: "dev1", token: "SharedAccessSignature sr=x", err: ErrMalformedToken},
		{name: "fail/not-a-token", device: "dev1", token: "hunter2", err: ErrMalformedToken},
		{name: "fail/sr-bad-escape", device: "dev1", token: signed("hub.example.com%2Fdevices%2Fdev1%", se, keyA), err: ErrMalformedToken},
		{name: "fail/unknown", device: "ghost", token: deviceToken("ghost", keyA), err: ErrUnknownDevice},
		{name: "fail/disabled", device: "off", token: deviceToken("off", keyA), err: ErrDisabled},
		{name: "fail/type-selfsigned", device: "ss", token: deviceToken("ss", keyA), err: ErrAuthTypeMismatch},
		{name: "fail/type-ca", device: "ca", token: deviceToken("ca", keyA), err: ErrAuthTypeMismatch},
		{name: "fail/type-none", device: "none", token: deviceToken("none", keyA), err: ErrAuthTypeMismatch},
		{name: "fail/type-unknown", device: "weird", token: deviceToken("weird", keyA), err: ErrAuthTypeMismatch},

		// Hub policy keys (skn).
		{name: "ok/policy-device-path", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), se, keyP, "skn=device"), method: MethodSASPolicy, policy: "device"},
		{name: "ok/policy-devices-prefix", device: "dev1", token: signed(enc(testHost+"/devices"), se, keyP, "skn=device"), method: MethodSASPolicy, policy: "device"},
		{name: "ok/policy-host-prefix", device: "dev1", token: signed(testHost, se, keyP, "skn=device"), method: MethodSASPolicy, policy: "device"},
		{name: "ok/policy-host-prefix-any-case", device: "dev1", token: signed("Hub.Example.Com", se, keyP, "skn=device"), method: MethodSASPolicy, policy: "device"},
		{name: "ok/policy-secondary-key", device: "dev1", token: signed(enc(testHost+"/devices/dev1"), se, keyQ, "skn=device"), method: MethodSASPolicy, policy: "device"},
		{name: "ok/policy-iothubowner", device: "dev1", token: Sign(enc(testHost+"/devices/dev1"), keyP, exp, "iothubowner"), method: MethodSASPolicy, policy: "iothubowner"},
		{name: "fail/policy-bc-trap", device: "dev1", token: signed(enc(testHost+"/devices/dev"), se, keyP, "skn=device"), err: ErrWrongAudience},
		{name: "fail/policy-segment-trap", device: "dev1", token: signed(enc(testHost+"/dev"), se, keyP, "skn=device"), err: ErrWrongAudience},
		{name: "fail/policy-other-device", device: "dev1", token: signed(enc(testHost+"/devices/dev2"), se, keyP, "skn=device"), err: ErrWrongAudience},
		{name: "fail/policy-longer-path", device: "dev1", token: signed(enc(testHost+"/devices/dev1/messages"), se, keyP, "skn=device"), err: ErrWrongAudience},
		{name: "fail/policy-module-path", device: "dev1", token: signed(enc(testHost+"/devices/dev1/modules/m"), se, keyP, "skn=device"), err: ErrModuleNotSupported},
		{name: "fail/policy-no-deviceconnect", device: "dev1", token: signed(testHost, se, keyP, "skn=service"), err: ErrPolicyRights},
		{name: "fail/policy-unknown", device: "dev1", token: signed(testHost, se, keyP, "skn=nobody"), err: ErrUnknownPolicy},
		{name: "fail/policy-bad-signature", device: "dev1", token: signed(testHost, se, keyA, "skn=device"), err: ErrBadSignature},
		{name: "fail/policy-without-keys", device: "dev1", token: signed(testHost, se, keyP, "skn=nokeys"), err: ErrBadSignature},
		{name: "fail/policy-wrong-host", device: "dev1", token: signed("evil.example.com", se, keyP, "skn=device"), err: ErrWrongHost},
		{name: "fail/policy-expired", device: "dev1", token: signed(testHost, ago(time.Hour), keyP, "skn=device"), err: ErrExpiredToken},
		{name: "fail/policy-unknown-device", device: "ghost", token: signed(testHost, se, keyP, "skn=device"), err: ErrUnknownDevice},
		{name: "fail/policy-disabled", device: "off", token: signed(testHost, se, keyP, "skn=device"), err: ErrDisabled},
		{name: "fail/policy-type-selfsigned", device: "ss", token: signed(testHost, se, keyP, "skn=device"), err: ErrAuthTypeMismatch},
		{name: "fail/policy-type-ca", device: "ca", token: signed(testHost, se, keyP, "skn=device"), err: ErrAuthTypeMismatch},
		{name: "fail/policy-type-none", device: "none", token: signed(testHost, se, keyP, "skn=device"), err: ErrAuthTypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tr := range []Transport{TransportTLS, TransportWebSocket} {
				id, err := a.Authenticate(t.Context(), Request{DeviceID: tt.device, Token: tt.token, Transport: tr})
				wantErr(t, err, tt.err)
				if tt.err != nil {
					if id != (Identity{}) {
						t.Fatalf("refusal returned identity %+v", id)
					}
					continue
				}
				want := tt.expires
				if want.IsZero() {
					want = exp.Add(DefaultClockSkew)
				}
				if id.DeviceID != tt.device || id.Method != tt.method || id.Slot != tt.slot ||
					id.PolicyName != tt.policy || id.Etag != "etag-"+tt.device || !id.Expires.Equal(want) {
					t.Fatalf("identity %+v (expires %v), want method %v slot %v policy %q expires %v",
						id, id.Expires, tt.method, tt.slot, tt.policy, want)
				}
			}
		})
	}
}

func TestAuthenticateRequestShape(t *testing.T) {
	a := newTestAuthenticator(t, sasDevices(), nil)
	tk := deviceToken("dev1", keyA)
	tests := []struct {
		name string
		r    Request
		err  error
	}{
		{"ok/tls", Request{DeviceID: "dev1", Token: tk, Transport: TransportTLS}, nil},
		{"ok/token-wins-over-cert", Request{DeviceID: "dev1", Token: tk, Transport: TransportTLS, PeerCertificates: []*x509.Certificate{{}}}, nil},
		{"fail/no-credential", Request{DeviceID: "dev1", Transport: TransportTLS}, ErrNoCredential},
		{"fail/module", Request{DeviceID: "dev1", ModuleID: "m1", Token: tk, Transport: TransportTLS}, ErrModuleNotSupported},
		{"fail/transport-unset", Request{DeviceID: "dev1", Token: tk}, ErrTransportNotAllowed},
		{"fail/transport-unknown", Request{DeviceID: "dev1", Token: tk, Transport: 7}, ErrTransportNotAllowed},
		{"fail/empty-device-id", Request{Token: tk, Transport: TransportTLS}, ErrUnknownDevice},
		{"fail/nil-leaf", Request{DeviceID: "dev1", Transport: TransportTLS, PeerCertificates: []*x509.Certificate{nil}}, ErrNoCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Authenticate(t.Context(), tt.r)
			wantErr(t, err, tt.err)
		})
	}
}

// credentialErrors are the sentinels that speak about the credential; a
// registry outage must never look like one of them (DESIGN.md rule 6).
var credentialErrors = []error{
	ErrUnknownDevice, ErrDisabled, ErrBadSignature, ErrExpiredToken, ErrMalformedToken, ErrWrongHost,
	ErrWrongAudience, ErrUnknownPolicy, ErrPolicyRights, ErrAuthTypeMismatch, ErrNoCredential,
	ErrThumbprintMismatch, ErrCertificateExpired, ErrUntrustedChain, ErrCommonNameMismatch,
	ErrTransportNotAllowed, ErrModuleNotSupported, ErrIdentityMismatch,
}

func TestRegistryUnavailable(t *testing.T) {
	ss, err := selfSignedFixture()
	if err != nil {
		t.Fatal(err)
	}
	sources := []struct {
		name string
		err  error
	}{
		{"store-down", fmt.Errorf("redis: dial: %w", registry.ErrUnavailable)},
		{"deadline", context.DeadlineExceeded},
		{"other-error", errors.New("cache: poisoned")},
	}
	for _, src := range sources {
		a := newTestAuthenticator(t, &memDevices{err: src.err}, nil)
		reqs := map[string]Request{
			"sas":    {DeviceID: "dev1", Token: deviceToken("dev1", keyA), Transport: TransportTLS},
			"policy": {DeviceID: "dev1", Token: Sign(testHost, keyP, t0.Add(time.Hour), "device"), Transport: TransportTLS},
			"x509":   {DeviceID: "dev1", PeerCertificates: ss, Transport: TransportTLS},
		}
		for name, r := range reqs {
			t.Run("fail/"+src.name+"/"+name, func(t *testing.T) {
				_, err := a.Authenticate(t.Context(), r)
				wantErr(t, err, ErrRegistryUnavailable)
				wantErr(t, err, src.err) // the cause stays visible
				for _, c := range credentialErrors {
					if errors.Is(err, c) {
						t.Fatalf("registry outage reported as %v: %v", c, err)
					}
				}
			})
		}
	}
	// A forged policy token is refused before the registry is consulted.
	a := newTestAuthenticator(t, &memDevices{err: registry.ErrUnavailable}, nil)
	_, err = a.Authenticate(t.Context(), Request{DeviceID: "dev1", Token: Sign(testHost, keyA, t0.Add(time.Hour), "device"), Transport: TransportTLS})
	wantErr(t, err, ErrBadSignature)
}

// A DeviceSource that returns another id's record (a broken cache) is refused.
func TestRecordMismatch(t *testing.T) {
	devs := sasDevices()
	devs.devices["alias"] = devs.devices["dev1"]
	a := newTestAuthenticator(t, devs, nil)
	_, err := a.Authenticate(t.Context(), Request{DeviceID: "alias", Token: deviceToken("alias", keyA), Transport: TransportTLS})
	wantErr(t, err, ErrIdentityMismatch)
}

func TestAuthorizePolicy(t *testing.T) {
	a := newTestAuthenticator(t, sasDevices(), nil)
	exp := t0.Add(time.Hour)
	all := registry.RegistryRead | registry.RegistryWrite | registry.ServiceConnect | registry.DeviceConnect
	tests := []struct {
		name   string
		token  string
		want   registry.Rights
		policy string
		err    error
	}{
		{"ok/host", Sign(testHost, keyP, exp, "registryRead"), registry.RegistryRead, "registryRead", nil},
		{"ok/host-any-case", Sign("HUB.EXAMPLE.COM", keyP, exp, "registryRead"), registry.RegistryRead, "registryRead", nil},
		{"ok/path-under-host", Sign(EncodeResource(testHost+"/devices"), keyP, exp, "service"), registry.ServiceConnect, "service", nil},
		{"ok/secondary-key", Sign(testHost, keyQ, exp, "iothubowner"), all, "iothubowner", nil},
		{"ok/no-rights-wanted", Sign(testHost, keyP, exp, "service"), 0, "service", nil},
		{"fail/rights", Sign(testHost, keyP, exp, "registryRead"), registry.RegistryRead | registry.RegistryWrite, "", ErrPolicyRights},
		{"fail/service-for-registry", Sign(testHost, keyP, exp, "service"), registry.RegistryRead, "", ErrPolicyRights},
		{"fail/no-skn", Sign(testHost, keyP, exp, ""), registry.RegistryRead, "", ErrMalformedToken},
		{"fail/device-token", deviceToken("dev1", keyA), registry.RegistryRead, "", ErrMalformedToken},
		{"fail/wrong-host", Sign("evil.example.com", keyP, exp, "iothubowner"), registry.RegistryRead, "", ErrWrongHost},
		{"fail/expired", Sign(testHost, keyP, t0.Add(-time.Hour), "iothubowner"), registry.RegistryRead, "", ErrExpiredToken},
		{"fail/unknown-policy", Sign(testHost, keyP, exp, "nobody"), registry.RegistryRead, "", ErrUnknownPolicy},
		{"fail/bad-signature", Sign(testHost, keyA, exp, "iothubowner"), registry.RegistryRead, "", ErrBadSignature},
		{"fail/bad-signature-before-rights", Sign(testHost, keyA, exp, "registryRead"), registry.RegistryWrite, "", ErrBadSignature},
		{"fail/empty-segment", Sign(testHost+"//x", keyP, exp, "iothubowner"), registry.RegistryRead, "", ErrMalformedToken},
		{"fail/malformed", "SharedAccessSignature x", registry.RegistryRead, "", ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, e, err := a.AuthorizePolicy(tt.token, tt.want)
			wantErr(t, err, tt.err)
			if p != tt.policy {
				t.Fatalf("policy %q, want %q", p, tt.policy)
			}
			if err == nil && !e.Equal(exp.Add(DefaultClockSkew)) {
				t.Fatalf("expires %v", e)
			}
		})
	}
}

func TestNew(t *testing.T) {
	devs, pols, cas := &memDevices{}, memPolicies{}, fixedPool{}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok/defaults", Config{HostNames: []string{"h"}, Devices: devs, Policies: pols, CAs: cas}, true},
		{"fail/no-host", Config{Devices: devs, Policies: pols, CAs: cas}, false},
		{"fail/empty-host", Config{HostNames: []string{""}, Devices: devs, Policies: pols, CAs: cas}, false},
		{"fail/host-with-path", Config{HostNames: []string{"h/x"}, Devices: devs, Policies: pols, CAs: cas}, false},
		{"fail/negative-skew", Config{HostNames: []string{"h"}, ClockSkew: -1, Devices: devs, Policies: pols, CAs: cas}, false},
		{"fail/no-devices", Config{HostNames: []string{"h"}, Policies: pols, CAs: cas}, false},
		{"fail/no-policies", Config{HostNames: []string{"h"}, Devices: devs, CAs: cas}, false},
		{"fail/no-cas", Config{HostNames: []string{"h"}, Devices: devs, Policies: pols}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v", err)
			}
			if tt.ok && (a.cfg.ClockSkew != DefaultClockSkew || a.cfg.Now == nil) {
				t.Fatalf("defaults not filled: %+v", a.cfg)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		TransportTLS: "tls", TransportWebSocket: "websocket", Transport(0): "unknown",
		MethodSAS: "sas", MethodSASPolicy: "sas_policy", MethodX509Thumbprint: "x509_thumbprint", MethodX509CA: "x509_ca", Method(0): "unknown",
		SlotNone: "none", SlotPrimary: "primary", SlotSecondary: "secondary",
	} {
		if v.String() != want {
			t.Errorf("%#v.String() = %q, want %q", v, v.String(), want)
		}
	}
}

// Errors must never carry a key, a signature or token text: they are logged.
func TestErrorsCarryNoSecrets(t *testing.T) {
	ss, err := selfSignedFixture()
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAuthenticator(t, sasDevices(), nil)
	exp := t0.Add(time.Hour)
	secrets := []string{keyA, keyB, keyC, keyP, keyQ}
	var reqs []Request
	for _, tk := range []string{
		deviceToken("dev1", keyC),
		deviceToken("dev", keyA),
		deviceToken("off", keyA),
		deviceToken("ss", keyA),
		Sign(testHost, keyA, exp, "device"),
		Sign(testHost, keyP, exp, "service"),
		Sign(testHost, keyP, exp, "nobody"),
		Sign("evil.example.com", keyA, exp, ""),
		Sign(EncodeResource(testHost+"/devices/dev1"), keyA, t0.Add(-time.Hour), ""),
		Sign(EncodeResource(testHost+"/devices/dev1/modules/m"), keyA, exp, ""),
		deviceToken("dev1", keyA) + "&sig=dup",
		deviceToken("dev1", keyA) + "&&",
		"SharedAccessSignature sr=" + keyA + "%zz&sig=" + keyB + "&se=1",
	} {
		reqs = append(reqs, Request{DeviceID: "dev1", Token: tk, Transport: TransportTLS})
		s, _ := ParseSAS(tk)
		if s.Signature != "" {
			secrets = append(secrets, s.Signature, EncodeResource(s.Signature))
		}
	}
	reqs = append(reqs, Request{DeviceID: "dev1", PeerCertificates: ss, Transport: TransportTLS})
	var failures int
	for _, r := range reqs {
		_, err := a.Authenticate(t.Context(), r)
		if err == nil {
			t.Fatalf("request %d unexpectedly admitted", failures)
		}
		_, _, perr := a.AuthorizePolicy(r.Token, registry.RegistryWrite)
		for _, e := range []error{err, perr} {
			if e == nil {
				continue
			}
			failures++
			msg := e.Error()
			if r.Token != "" && strings.Contains(msg, r.Token) {
				t.Errorf("error %q contains the token", msg)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains secret %q", msg, s)
				}
			}
		}
	}
	if failures < 20 {
		t.Fatalf("only %d failures sampled", failures)
	}
}
