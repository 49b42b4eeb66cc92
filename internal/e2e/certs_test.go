package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
)

// certFiles is a device certificate (with its chain) and key on disk.
type certFiles struct {
	Cert, Key string
	KP        *pki.KeyPair
}

// writeCert writes kp (followed by chain) into a fresh temporary directory.
func writeCert(t testing.TB, name string, kp *pki.KeyPair, chain ...*pki.KeyPair) certFiles {
	t.Helper()
	dir := t.TempDir()
	f := certFiles{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"), KP: kp}
	if err := kp.WriteFiles(f.Cert, f.Key, chain...); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f certFiles) flags() []string { return []string{"--cert", f.Cert, "--key", f.Key} }

func selfSigned(t testing.TB, cn string) certFiles {
	t.Helper()
	kp, err := pki.SelfSignedClient(cn, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return writeCert(t, cn, kp)
}

func rootCA(t testing.TB, cn string) (*pki.KeyPair, string) {
	t.Helper()
	ca, err := pki.NewRootCA(cn, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := writeCert(t, "ca", ca)
	return ca, f.Cert
}

// issue signs a client certificate with CN = cn by ca; the file carries chain after the leaf.
func issue(t testing.TB, ca *pki.KeyPair, cn string, chain ...*pki.KeyPair) certFiles {
	t.Helper()
	kp, err := ca.IssueClient(cn, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return writeCert(t, "leaf", kp, chain...)
}

func sha256Thumb(f certFiles) string { return pki.SHA256Thumbprint(f.KP.Cert.Raw) }
func sha1Thumb(f certFiles) string   { return pki.SHA1Thumbprint(f.KP.Cert.Raw) }

// randomKey is a well-formed device key that no device has.
func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// sasToken signs a device token the way the SDKs do (reference §2.2),
// independently of the binary, so the suite can mint tokens the CLI will
// not (an expiry in the past).
func sasToken(t testing.TB, host, deviceID, key string, expiry time.Time) string {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatalf("device key %q: %v", key, err)
	}
	sr := strings.ReplaceAll(url.QueryEscape(host+"/devices/"+deviceID), "+", "%20")
	se := fmt.Sprint(expiry.Unix())
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(sr + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + se
}

// keyFromConnString returns the SharedAccessKey of a device connection string.
func keyFromConnString(t testing.TB, cs string) string {
	t.Helper()
	for _, part := range strings.Split(cs, ";") {
		if v, ok := strings.CutPrefix(part, "SharedAccessKey="); ok {
			return v
		}
	}
	t.Fatalf("no SharedAccessKey in %q", cs)
	return ""
}

// withKey replaces the SharedAccessKey of a device connection string.
func withKey(t testing.TB, cs, key string) string {
	t.Helper()
	return strings.Replace(cs, "SharedAccessKey="+keyFromConnString(t, cs), "SharedAccessKey="+key, 1)
}

func TestSASTokenMatchesReferenceVector(t *testing.T) {
	// Reference §2.6a, device row: the suite's own signer must agree with
	// the captured Node token, or the expired-token cases prove nothing.
	got := sasToken(t, "localhost", "dev1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", time.Unix(1796304914, 0))
	want := "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=" + url.QueryEscape("Jyo1PkaW9EAEHlj0dFX7mTLKQq5+QHyCWR9WRi/xcMo=") + "&se=1796304914"
	if got != want {
		t.Fatalf("sasToken:\n got %s\nwant %s", got, want)
	}
}
