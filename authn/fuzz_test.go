package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseSAS: no panics; a parsed token re-signed with Sign over the same
// sr and se parses back to the same fields and verifies; Verify agrees with
// crypto/hmac.
func FuzzParseSAS(f *testing.F) {
	for _, v := range vectors {
		f.Add(vectorToken(v))
	}
	for _, s := range []string{
		"SharedAccessSignature sr=h%2fdevices%2fd&SIG=abc%3D&se=1796304914.0&skn=device",
		"SharedAccessSignature sig=x&se=1&skn=p&sr=h",
		"SharedAccessSignature sr=&sig=&se=",
		"SharedAccessSignature sr=h&sr=h&sig=a&se=1",
		"SharedAccessSignature sr=h&sig=%zz&se=1",
		"SharedAccessSignature sr=h&sig=a&se=99999999999999999999",
		"SharedAccessSignature ",
		"SharedAccessSignature &&&",
		"sr=h&sig=a&se=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		s, err := ParseSAS(token)
		if err != nil {
			if s != (SAS{}) {
				t.Fatalf("error %v with non-zero SAS %+v", err, s)
			}
			return
		}
		if s.Resource == "" || s.Signature == "" || s.Expiry < 0 || s.Expiry > maxExpiry {
			t.Fatalf("accepted %+v", s)
		}
		// Verify agrees with crypto/hmac over the literal sr and se.
		h := hmac.New(sha256.New, []byte("0123456789abcdef0123456789abcdef"))
		h.Write([]byte(s.Resource + "\n" + s.rawExpiry))
		want := base64.StdEncoding.EncodeToString(h.Sum(nil)) == s.Signature
		if got := s.Verify(keyA); got != want {
			t.Fatalf("Verify = %v, crypto/hmac says %v", got, want)
		}
		// Sign → ParseSAS → Verify round trip over the same resource, when
		// sr is a value Sign can carry (no '&'; ParseSAS already cut at it).
		if s.rawExpiry != strconv.FormatInt(s.Expiry, 10) {
			return // Sign emits integer seconds only
		}
		tk := Sign(s.Resource, keyB, time.Unix(s.Expiry, 0), s.KeyName)
		r, err := ParseSAS(tk)
		if err != nil {
			if len(tk) > maxTokenLen {
				return
			}
			t.Fatalf("ParseSAS(Sign(...)) = %v for %q", err, tk)
		}
		if r.Resource != s.Resource || r.Expiry != s.Expiry || r.KeyName != s.KeyName || !r.Verify(keyB) || r.Verify(keyA) {
			t.Fatalf("round trip %+v → %+v", s, r)
		}
	})
}

// FuzzParseMQTTUsername: no panics; accepted usernames satisfy the documented
// invariants.
func FuzzParseMQTTUsername(f *testing.F) {
	for _, s := range []string{
		"localhost/dev1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.4%20(node%20v20.20.2%3B%20Debian%2012%3B%20x64)",
		"localhost/dev1/mod1/?api-version=2021-04-12&DeviceClientType=x",
		"h/d/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3BThermostat%3B1",
		"h/d/api-version=2018-06-30&DeviceClientType=c",
		"h/d/?&api-version=1&api-version=2&x",
		"h/d/m/x/?api-version=1",
		"h//?api-version=1",
		"h/d/?api-version=1&DeviceClientType=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		m, err := ParseMQTTUsername(u)
		if err != nil {
			if m != (MQTTUsername{}) {
				t.Fatalf("error %v with non-zero result %+v", err, m)
			}
			return
		}
		if m.Host == "" || m.DeviceID == "" || strings.TrimSpace(m.APIVersion) == "" {
			t.Fatalf("accepted %q as %+v", u, m)
		}
		for _, s := range []string{m.Host, m.DeviceID, m.ModuleID} {
			if strings.Contains(s, "/") {
				t.Fatalf("segment with '/' in %+v", m)
			}
		}
		prefix := m.Host + "/" + m.DeviceID + "/"
		if m.ModuleID != "" {
			prefix += m.ModuleID + "/"
		}
		if !strings.HasPrefix(u, prefix) {
			t.Fatalf("%q does not start with %q", u, prefix)
		}
	})
}

// FuzzAudience: no panics; Audience agrees with the allocation-free hot-path
// split; a successful decode re-encodes (EncodeResource) to an sr that
// decodes to the same audience.
func FuzzAudience(f *testing.F) {
	for _, s := range []string{
		"localhost%2Fdevices%2Fdev1",
		"localhost%2fdevices%2fdev1%2fmodules%2fmod1",
		"0ne00000001/registrations/dev1",
		"localhost",
		"localhost%3A8883%2Fdevices%2Fa%2Bb%2525",
		"h%2Fdevices%2F",
		"%2F",
		"h%zz",
		"h%2",
	} {
		f.Add(s, "dev1")
	}
	f.Fuzz(func(t *testing.T, sr, deviceID string) {
		host, path, err := SAS{Resource: sr}.Audience()
		h2, rest, hasPath, err2 := splitAudience(sr)
		var n int
		if err2 == nil {
			_, n, err2 = pathSegments(rest, hasPath)
		}
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Audience err %v, hot path err %v", err, err2)
		}
		// The device decision never panics and never admits a path other
		// than the documented ones.
		for _, prefix := range []bool{false, true} {
			if checkDeviceAudience(rest, hasPath, deviceID, prefix) == nil && err2 == nil {
				full := len(path) == 2 && path[0] == "devices" && path[1] == deviceID
				if !prefix && !full {
					t.Fatalf("device key admitted %q for %q", sr, deviceID)
				}
				if prefix && !(len(path) == 0 || (len(path) == 1 && path[0] == "devices") || full) {
					t.Fatalf("policy admitted %q for %q", sr, deviceID)
				}
			}
		}
		if err != nil {
			return
		}
		if host != h2 || len(path) != n || host == "" {
			t.Fatalf("Audience %q %q vs hot path %q (%d segments)", host, path, h2, n)
		}
		re := EncodeResource(host + "/" + strings.Join(path, "/"))
		if len(path) == 0 {
			re = EncodeResource(host)
		}
		host2, path2, err := SAS{Resource: re}.Audience()
		if err != nil || host2 != host || strings.Join(path2, "/") != strings.Join(path, "/") {
			t.Fatalf("re-encoded %q → %q %q %v", re, host2, path2, err)
		}
	})
}
