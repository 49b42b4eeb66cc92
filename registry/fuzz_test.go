package registry_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

// FuzzAddCA feeds untrusted PEM to the CA intake: it must never panic and
// must refuse with ErrInvalid unless the input is one CA certificate.
func FuzzAddCA(f *testing.F) {
	root, err := pki.NewRootCA("root", pki.Options{})
	if err != nil {
		f.Fatal(err)
	}
	leaf, _ := root.IssueClient("dev1", pki.Options{})
	f.Add(root.CertPEM())
	f.Add(leaf.CertPEM())
	f.Add(append(root.CertPEM(), root.CertPEM()...))
	f.Add(root.KeyPEM())
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	s, err := registry.OpenFileStoreWith(filepath.Join(f.TempDir(), "r.jsonl"), registry.FileStoreOptions{Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	r, err := registry.New(f.Context(), s, registry.Options{Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		name := "fuzz" + strconv.FormatInt(n.Add(1), 10)
		ca, err := r.AddCA(t.Context(), name, data, false)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("AddCA: %v, want ErrInvalid", err)
			}
			return
		}
		if _, err := r.VerifyCA(t.Context(), name, data); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("VerifyCA without a code: %v", err)
		}
		if ca.Status != registry.CAUnverified {
			t.Fatalf("status %q", ca.Status)
		}
	})
}

// FuzzValidateDeviceID checks the id rule against a direct statement of it.
func FuzzValidateDeviceID(f *testing.F) {
	for _, s := range []string{"dev1", "", "a/b", "we!rd(id)=$@'#*?,", "dév", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		want := len(id) >= 1 && len(id) <= 128
		for i := 0; i < len(id) && want; i++ {
			c := id[i]
			want = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '-' || c == '.' || c == '+' || c == '%' || c == '_' || c == '#' || c == '*' || c == '?' ||
				c == '!' || c == '(' || c == ')' || c == ',' || c == '=' || c == '@' || c == '$' || c == '\''
		}
		if err := registry.ValidateDeviceID(id); (err == nil) != want || (err != nil && !errors.Is(err, registry.ErrInvalid)) {
			t.Fatalf("ValidateDeviceID(%q) = %v, want ok=%v", id, err, want)
		}
	})
}
