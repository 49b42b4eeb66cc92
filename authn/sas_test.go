package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// stdSig is an independent signer (crypto/hmac) for test tokens: the
// URL-encoded base64 HMAC-SHA256 over sr + "\n" + se.
func stdSig(t testing.TB, sr, se, key string) string {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, k)
	h.Write([]byte(sr + "\n" + se))
	return EncodeResource(base64.StdEncoding.EncodeToString(h.Sum(nil)))
}

func tok(fields ...string) string { return sasPrefix + strings.Join(fields, "&") }

// Reference §2.6a: tokens captured from the Node SDK.
var vectors = []struct {
	name, sr, se, sig, skn string
}{
	{"device", "localhost%2Fdevices%2Fdev1", "1796304914", "Jyo1PkaW9EAEHlj0dFX7mTLKQq5+QHyCWR9WRi/xcMo=", ""},
	{"module", "localhost%2Fdevices%2Fdev1%2Fmodules%2Fmod1", "1796304935", "N9hCCRZ9+iPxj7K/pupJ3LkClEzcuJig9JuoKjh7ymA=", ""},
	{"dps", "0ne00000001/registrations/dev1", "1796305120", "k64eQluyJR0EqV6soOH3QSQrjWhbQkpkFkzXtrxp8yE=", "registration"},
	{"service", "localhost", "1796305150", "Y5zoV7FiFRtFwYJ1+W/HwMEEVOuEvMuB9rzWo/heTDM=", "iothubowner"},
}

func vectorToken(v struct{ name, sr, se, sig, skn string }) string {
	f := []string{"sr=" + v.sr, "sig=" + EncodeResource(v.sig)}
	if v.skn != "" {
		f = append(f, "skn="+v.skn)
	}
	return tok(append(f, "se="+v.se)...)
}

func TestReferenceVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run("ok/"+v.name, func(t *testing.T) {
			s, err := ParseSAS(vectorToken(v))
			if err != nil {
				t.Fatal(err)
			}
			if s.Resource != v.sr || s.Signature != v.sig || strconv.FormatInt(s.Expiry, 10) != v.se || s.KeyName != v.skn {
				t.Fatalf("parsed %+v", s)
			}
			if !s.Verify(keyA) {
				t.Fatal("reference vector does not verify")
			}
			if s.Verify(keyB) {
				t.Fatal("verifies with the wrong key")
			}
			se, _ := strconv.ParseInt(v.se, 10, 64)
			if got := Sign(v.sr, keyA, time.Unix(se, 0), v.skn); got != vectorToken(v) {
				t.Fatalf("Sign = %q\nwant   %q", got, vectorToken(v))
			}
		})
	}
	// The device vector exactly as Node sends it on the wire.
	const wire = "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=Jyo1PkaW9EAEHlj0dFX7mTLKQq5%2BQHyCWR9WRi%2FxcMo%3D&se=1796304914"
	if got := Sign("localhost%2Fdevices%2Fdev1", keyA, time.Unix(1796304914, 0), ""); got != wire {
		t.Fatalf("Sign = %q, want Node's %q", got, wire)
	}
}

// The vectors through the whole decision, with Now injected before their expiry.
func TestReferenceVectorsAuthenticate(t *testing.T) {
	devs := &memDevices{devices: map[string]registry.Device{"dev1": sasDevice("dev1", keyA, keyB)}}
	a, err := New(Config{
		HostNames: []string{"localhost"},
		Now:       func() time.Time { return time.Unix(1796304000, 0) },
		Devices:   devs,
		Policies:  memPolicies{"iothubowner": {KeyName: "iothubowner", PrimaryKey: keyA, Rights: 15}},
		CAs:       fixedPool{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	id, err := a.Authenticate(ctx, Request{DeviceID: "dev1", Token: vectorToken(vectors[0]), Transport: TransportTLS})
	wantErr(t, err, nil)
	if id.Method != MethodSAS || id.Slot != SlotPrimary || !id.Expires.Equal(time.Unix(1796304914, 0).Add(DefaultClockSkew)) {
		t.Fatalf("identity %+v", id)
	}
	_, err = a.Authenticate(ctx, Request{DeviceID: "dev1", Token: vectorToken(vectors[1]), Transport: TransportTLS})
	wantErr(t, err, ErrModuleNotSupported)
	p, _, err := a.AuthorizePolicy(vectorToken(vectors[3]), 15)
	wantErr(t, err, nil)
	if p != "iothubowner" {
		t.Fatalf("policy %q", p)
	}
}

func TestParseSAS(t *testing.T) {
	const sig = "Jyo1PkaW9EAEHlj0dFX7mTLKQq5%2BQHyCWR9WRi%2FxcMo%3D"
	const dsig = "Jyo1PkaW9EAEHlj0dFX7mTLKQq5+QHyCWR9WRi/xcMo="
	tests := []struct {
		name  string
		token string
		want  SAS // compared on exported fields
		err   error
	}{
		{"ok/node-order", tok("sr=h%2Fdevices%2Fd", "sig="+sig, "se=1796304914"), SAS{Resource: "h%2Fdevices%2Fd", Signature: dsig, Expiry: 1796304914}, nil},
		{"ok/node-order-skn", tok("sr=h", "sig="+sig, "skn=device", "se=1"), SAS{Resource: "h", Signature: dsig, Expiry: 1, KeyName: "device"}, nil},
		{"ok/docs-order", tok("sig="+sig, "se=17", "skn=p", "sr=h"), SAS{Resource: "h", Signature: dsig, Expiry: 17, KeyName: "p"}, nil},
		{"ok/python-order", tok("sr=h", "sig="+sig, "se=17", "skn=p"), SAS{Resource: "h", Signature: dsig, Expiry: 17, KeyName: "p"}, nil},
		{"ok/field-names-case-insensitive", tok("SR=h", "Sig="+sig, "sE=17", "SKN=p"), SAS{Resource: "h", Signature: dsig, Expiry: 17, KeyName: "p"}, nil},
		{"ok/unknown-field-ignored", tok("sr=h", "sig="+sig, "foo=bar", "se=17"), SAS{Resource: "h", Signature: dsig, Expiry: 17}, nil},
		{"ok/unencoded-sig", tok("sr=h", "sig="+dsig, "se=17"), SAS{Resource: "h", Signature: dsig, Expiry: 17}, nil},
		{"ok/lower-case-escapes-in-sig", tok("sr=h", "sig=Jyo1PkaW9EAEHlj0dFX7mTLKQq5%2bQHyCWR9WRi%2fxcMo%3d", "se=17"), SAS{Resource: "h", Signature: dsig, Expiry: 17}, nil},
		{"ok/decimal-se", tok("sr=h", "sig="+sig, "se=1796304914.0"), SAS{Resource: "h", Signature: dsig, Expiry: 1796304914}, nil},
		{"ok/decimal-se-fraction-dropped", tok("sr=h", "sig="+sig, "se=1796304914.75"), SAS{Resource: "h", Signature: dsig, Expiry: 1796304914}, nil},
		{"ok/encoded-skn", tok("sr=h", "sig="+sig, "skn=my%20policy", "se=1"), SAS{Resource: "h", Signature: dsig, Expiry: 1, KeyName: "my policy"}, nil},
		{"ok/max-se", tok("sr=h", "sig="+sig, "se=253402300799"), SAS{Resource: "h", Signature: dsig, Expiry: 253402300799}, nil},
		{"fail/empty", "", SAS{}, ErrMalformedToken},
		{"fail/no-prefix", "sr=h&sig=" + sig + "&se=1", SAS{}, ErrMalformedToken},
		{"fail/prefix-case", "sharedaccesssignature sr=h&sig=" + sig + "&se=1", SAS{}, ErrMalformedToken},
		{"fail/prefix-only", sasPrefix, SAS{}, ErrMalformedToken},
		{"fail/missing-sr", tok("sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
		{"fail/missing-sig", tok("sr=h", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/missing-se", tok("sr=h", "sig="+sig), SAS{}, ErrMalformedToken},
		{"fail/empty-sr", tok("sr=", "sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
		{"fail/empty-skn", tok("sr=h", "sig="+sig, "skn=", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/duplicate-sr", tok("sr=h", "sr=g", "sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
		{"fail/duplicate-any-case", tok("sr=h", "SR=h", "sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
		{"fail/duplicate-skn", tok("sr=h", "skn=a", "sig="+sig, "skn=b", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/trailing-ampersand", tok("sr=h", "sig="+sig, "se=1") + "&", SAS{}, ErrMalformedToken},
		{"fail/double-ampersand", tok("sr=h", "", "sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
		{"fail/field-without-equals", tok("sr=h", "sig="+sig, "se=1", "x"), SAS{}, ErrMalformedToken},
		{"fail/se-negative", tok("sr=h", "sig="+sig, "se=-1"), SAS{}, ErrMalformedToken},
		{"fail/se-plus", tok("sr=h", "sig="+sig, "se=+1"), SAS{}, ErrMalformedToken},
		{"fail/se-alpha", tok("sr=h", "sig="+sig, "se=tomorrow"), SAS{}, ErrMalformedToken},
		{"fail/se-exponent", tok("sr=h", "sig="+sig, "se=1e9"), SAS{}, ErrMalformedToken},
		{"fail/se-trailing-dot", tok("sr=h", "sig="+sig, "se=1."), SAS{}, ErrMalformedToken},
		{"fail/se-leading-dot", tok("sr=h", "sig="+sig, "se=.5"), SAS{}, ErrMalformedToken},
		{"fail/se-past-9999", tok("sr=h", "sig="+sig, "se=253402300800"), SAS{}, ErrMalformedToken},
		{"fail/se-overflow", tok("sr=h", "sig="+sig, "se=99999999999999999999999"), SAS{}, ErrMalformedToken},
		{"fail/bad-escape-sig", tok("sr=h", "sig=abc%zz", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/truncated-escape-sig", tok("sr=h", "sig=abc%2", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/bad-escape-skn", tok("sr=h", "sig="+sig, "skn=%", "se=1"), SAS{}, ErrMalformedToken},
		{"fail/too-long", tok("sr="+strings.Repeat("a", maxTokenLen), "sig="+sig, "se=1"), SAS{}, ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSAS(tt.token)
			wantErr(t, err, tt.err)
			got.rawExpiry = ""
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The signature covers se exactly as written: "1796304914.0" and
// "1796304914" are different strings-to-sign.
func TestVerifyLiteralExpiry(t *testing.T) {
	sr := "h%2Fdevices%2Fd"
	s, err := ParseSAS(tok("sr="+sr, "sig="+stdSig(t, sr, "1796304914.0", keyA), "se=1796304914.0"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verify(keyA) {
		t.Fatal("ok/decimal-se: does not verify over the literal se")
	}
	s.rawExpiry = ""
	if s.Verify(keyA) {
		t.Fatal("fail/reformatted-se: verifies over a reformatted se")
	}
	// A SAS built by hand signs over the decimal Expiry.
	hand := SAS{Resource: sr, Expiry: 1796304914}
	hand.Signature, _ = pctDecode(stdSig(t, sr, "1796304914", keyA))
	if !hand.Verify(keyA) {
		t.Fatal("ok/hand-built: does not verify")
	}
}

func TestVerify(t *testing.T) {
	sr := "hub%2Fdevices%2Fd"
	good, err := ParseSAS(tok("sr="+sr, "sig="+stdSig(t, sr, "100", keyA), "se=100"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    func() SAS
		key  string
		ok   bool
	}{
		{"ok/right-key", func() SAS { return good }, keyA, true},
		{"fail/wrong-key", func() SAS { return good }, keyB, false},
		{"fail/empty-key", func() SAS { return good }, "", false},
		{"fail/key-not-base64", func() SAS { return good }, "not base64!", false},
		{"fail/lower-case-sr-escapes", func() SAS { s := good; s.Resource = "hub%2fdevices%2fd"; return s }, keyA, false},
		{"fail/decoded-sr", func() SAS { s := good; s.Resource = "hub/devices/d"; return s }, keyA, false},
		{"fail/other-expiry", func() SAS { s := good; s.rawExpiry = "101"; return s }, keyA, false},
		{"fail/short-signature", func() SAS { s := good; s.Signature = s.Signature[:40]; return s }, keyA, false},
		{"fail/signature-not-base64", func() SAS { s := good; s.Signature = strings.Repeat("!", 44); return s }, keyA, false},
		{"fail/signature-flipped", func() SAS { s := good; s.Signature = "A" + s.Signature[1:]; return s }, keyA, false},
		{"fail/empty-signature", func() SAS { s := good; s.Signature = ""; return s }, keyA, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s().Verify(tt.key); got != tt.ok {
				t.Fatalf("Verify = %v, want %v", got, tt.ok)
			}
		})
	}
	// The empty-key HMAC is computable by anyone: it must never verify.
	empty := hmac.New(sha256.New, nil)
	empty.Write([]byte(sr + "\n100"))
	s := good
	s.Signature = base64.StdEncoding.EncodeToString(empty.Sum(nil))
	if s.Verify("") {
		t.Fatal("fail/empty-key-hmac verifies")
	}
}

// hmacSHA256 replaces crypto/hmac on the hot path; it must agree with it for
// every key length (shorter, equal to and longer than the 64-byte block) and
// message length (around the stack buffer's size).
func TestHMACMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kl := range []int{1, 16, 32, 63, 64, 65, 100, 200} {
		for _, ml := range []int{0, 1, 55, 56, 64, 200, 446, 447, 448, 1000} {
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			res := make([]byte, ml)
			for i := range res {
				res[i] = byte(rng.Uint32())
			}
			se := []byte(strconv.Itoa(rng.IntN(1 << 30)))
			h := hmac.New(sha256.New, key)
			h.Write(append(append(append([]byte{}, res...), '\n'), se...))
			want := h.Sum(nil)
			got := hmacSHA256(key, string(res), se)
			if !slices.Equal(got[:], want) {
				t.Fatalf("key %d bytes, resource %d bytes: mismatch", kl, ml)
			}
		}
	}
}

func TestAudience(t *testing.T) {
	tests := []struct {
		name string
		sr   string
		host string
		path []string
		err  error
	}{
		{"ok/upper-escapes", "hub.example.com%2Fdevices%2Fdev1", "hub.example.com", []string{"devices", "dev1"}, nil},
		{"ok/lower-escapes", "hub.example.com%2fdevices%2fdev1", "hub.example.com", []string{"devices", "dev1"}, nil},
		{"ok/unencoded", "hub.example.com/devices/dev1", "hub.example.com", []string{"devices", "dev1"}, nil},
		{"ok/module", "h%2Fdevices%2Fd%2Fmodules%2Fm", "h", []string{"devices", "d", "modules", "m"}, nil},
		{"ok/host-only", "h", "h", nil, nil},
		{"ok/port", "localhost%3A8883%2Fdevices%2Fd", "localhost:8883", []string{"devices", "d"}, nil},
		{"ok/plus-kept", "h%2Fdevices%2Fa+b", "h", []string{"devices", "a+b"}, nil},
		{"ok/escaped-percent", "h%2Fdevices%2Fa%2525", "h", []string{"devices", "a%25"}, nil},
		{"ok/star-lower", "h%2Fdevices%2Fa%2a", "h", []string{"devices", "a*"}, nil},
		{"ok/dps", "0ne00000001/registrations/dev1", "0ne00000001", []string{"registrations", "dev1"}, nil},
		{"fail/bad-escape", "h%2Fdevices%2Fd%zz", "", nil, ErrMalformedToken},
		{"fail/truncated-escape", "h%2Fdevices%2Fd%2", "", nil, ErrMalformedToken},
		{"fail/empty-host", "%2Fdevices%2Fd", "", nil, ErrMalformedToken},
		{"fail/trailing-slash", "h%2Fdevices%2F", "", nil, ErrMalformedToken},
		{"fail/double-slash", "h//devices", "", nil, ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, path, err := SAS{Resource: tt.sr}.Audience()
			wantErr(t, err, tt.err)
			if host != tt.host || !slices.Equal(path, tt.path) {
				t.Fatalf("Audience = %q %q, want %q %q", host, path, tt.host, tt.path)
			}
		})
	}
}

func TestEncodeResource(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hub/devices/dev1", "hub%2Fdevices%2Fdev1"},
		{"localhost:8883/devices/d", "localhost%3A8883%2Fdevices%2Fd"},
		{"AZaz09-_.~", "AZaz09-_.~"},
		{"!'()*", "%21%27%28%29%2a"},
		{"a b+c=d&e%f", "a%20b%2Bc%3Dd%26e%25f"},
		{"é", "%C3%A9"},
		{"Jyo1PkaW9EAEHlj0dFX7mTLKQq5+QHyCWR9WRi/xcMo=", "Jyo1PkaW9EAEHlj0dFX7mTLKQq5%2BQHyCWR9WRi%2FxcMo%3D"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := EncodeResource(tt.in); got != tt.want {
			t.Errorf("EncodeResource(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if dec, ok := pctDecode(EncodeResource(tt.in)); !ok || dec != tt.in {
			t.Errorf("decode(EncodeResource(%q)) = %q", tt.in, dec)
		}
	}
}

func TestSign(t *testing.T) {
	exp := time.Unix(1796304914, 0)
	t.Run("ok/round-trip", func(t *testing.T) {
		tk := Sign(EncodeResource("hub/devices/dev1"), keyB, exp, "my policy")
		s, err := ParseSAS(tk)
		if err != nil {
			t.Fatal(err)
		}
		if s.Expiry != exp.Unix() || s.KeyName != "my policy" || s.Resource != "hub%2Fdevices%2Fdev1" || !s.Verify(keyB) {
			t.Fatalf("round trip %+v", s)
		}
	})
	t.Run("fail/bad-key", func(t *testing.T) {
		if got := Sign("h", "%%%", exp, ""); got != "" {
			t.Fatalf("Sign with a bad key = %q", got)
		}
		if got := Sign("h", "", exp, ""); got != "" {
			t.Fatalf("Sign with an empty key = %q", got)
		}
	})
}
