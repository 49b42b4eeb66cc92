package registry_test

import (
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

func TestAddCA(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	root, err := pki.NewRootCA("root", pki.Options{})
	must(t, err)
	inter, err := root.IssueIntermediate("inter", pki.Options{})
	must(t, err)
	leaf, err := root.IssueClient("dev1", pki.Options{})
	must(t, err)
	other, err := pki.NewRootCA("other", pki.Options{})
	must(t, err)

	ca, err := r.AddCA(ctx, "root", root.CertPEM(), false)
	must(t, err)
	if ca.Status != registry.CAUnverified || ca.Subject != "CN=root" || len(ca.Thumbprint) != 64 ||
		ca.Thumbprint != pki.SHA256Thumbprint(root.Cert.Raw) || ca.Etag == "" || ca.VerificationCode != "" {
		t.Fatalf("AddCA: %+v", ca)
	}

	tests := []struct {
		name, ca string
		pem      []byte
		want     error
		reason   string
	}{
		{"ok/intermediate", "inter", inter.CertPEM(), nil, ""},
		{"fail/exists", "root", other.CertPEM(), registry.ErrCAExists, ""},
		{"fail/bad-name", "a/b", other.CertPEM(), registry.ErrInvalid, "CA name"},
		{"fail/not-pem", "x", []byte("hello"), registry.ErrInvalid, "no PEM block"},
		{"fail/key-not-cert", "x", root.KeyPEM(), registry.ErrInvalid, "want CERTIFICATE"},
		{"fail/two-certs", "x", append(other.CertPEM(), root.CertPEM()...), registry.ErrInvalid, "more than one"},
		{"fail/trailing-junk", "x", append(other.CertPEM(), "junk"...), registry.ErrInvalid, "trailing data"},
		{"fail/garbage-der", "x", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), registry.ErrInvalid, "CA certificate"},
		{"fail/leaf-not-ca", "x", leaf.CertPEM(), registry.ErrInvalid, "not a CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.AddCA(ctx, tc.ca, tc.pem, false)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.reason)) {
				t.Fatalf("AddCA: %v, want %v containing %q", err, tc.want, tc.reason)
			}
		})
	}
	cas, err := r.CAs(ctx)
	must(t, err)
	if len(cas) != 2 || cas[0].Name != "inter" || cas[1].Name != "root" {
		t.Fatalf("CAs: %+v", cas)
	}
}

func TestCAProofOfPossession(t *testing.T) {
	r := fixture(t, registry.Options{})
	ctx := t.Context()
	root, err := pki.NewRootCA("root", pki.Options{})
	must(t, err)
	pre, err := pki.NewRootCA("pre-verified", pki.Options{})
	must(t, err)
	impostor, err := pki.NewRootCA("impostor", pki.Options{})
	must(t, err)

	_, err = r.AddCA(ctx, "root", root.CertPEM(), false)
	must(t, err)
	_, err = r.AddCA(ctx, "pre", pre.CertPEM(), true)
	must(t, err)

	if _, err := leafOf(t, root).Verify(verifyOpts(r)); err == nil {
		t.Fatal("an unverified CA is in the verified pool")
	}
	if _, err := leafOf(t, pre).Verify(verifyOpts(r)); err != nil {
		t.Fatalf("a CA verified at upload is not in the pool: %v", err)
	}

	issue := func(signer *pki.KeyPair, cn string) []byte {
		kp, err := signer.IssueClient(cn, pki.Options{})
		must(t, err)
		return kp.CertPEM()
	}
	if _, err := r.VerifyCA(ctx, "root", issue(root, "anything")); !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), "no verification code") {
		t.Fatalf("verify before a code exists: %v", err)
	}
	if _, err := r.VerificationCode(ctx, "root", `"stale"`); !errors.Is(err, registry.ErrPreconditionFailed) {
		t.Fatalf("code with stale etag: %v", err)
	}
	if _, err := r.VerificationCode(ctx, "missing", ""); !errors.Is(err, registry.ErrCANotFound) {
		t.Fatalf("code for missing CA: %v", err)
	}
	ca, err := r.VerificationCode(ctx, "root", "")
	must(t, err)
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(ca.VerificationCode) {
		t.Fatalf("verification code %q", ca.VerificationCode)
	}
	stored, err := r.CA(ctx, "root")
	must(t, err)
	if stored.VerificationCode != ca.VerificationCode {
		t.Fatal("verification code not stored")
	}
	code := ca.VerificationCode

	tests := []struct {
		name   string
		leaf   []byte
		reason string
	}{
		{"fail/wrong-cn", issue(root, "not-the-code"), "does not match the verification code"},
		{"fail/wrong-signer", issue(impostor, code), "not signed by CA"},
		{"fail/not-pem", []byte("nope"), "no PEM block"},
		{"fail/two-certs", append(issue(root, code), issue(root, code)...), "more than one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.VerifyCA(ctx, "root", tc.leaf)
			if !errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("VerifyCA: %v, want ErrInvalid with %q", err, tc.reason)
			}
			if got, _ := r.CA(ctx, "root"); got.Status != registry.CAUnverified {
				t.Fatal("a refused proof verified the CA")
			}
		})
	}
	if _, err := r.VerifyCA(ctx, "missing", issue(root, code)); !errors.Is(err, registry.ErrCANotFound) {
		t.Fatalf("verify missing CA: %v", err)
	}

	ca, err = r.VerifyCA(ctx, "root", issue(root, strings.ToLower(code)))
	must(t, err)
	if ca.Status != registry.CAVerified || ca.VerificationCode != "" {
		t.Fatalf("after verify: %+v", ca)
	}
	if _, err := leafOf(t, root).Verify(verifyOpts(r)); err != nil {
		t.Fatalf("verified CA not in pool: %v", err)
	}
	if _, err := leafOf(t, impostor).Verify(verifyOpts(r)); err == nil {
		t.Fatal("an unregistered CA verifies")
	}

	must(t, r.DeleteCA(ctx, "root", `"`+ca.Etag+`"`))
	if _, err := leafOf(t, root).Verify(verifyOpts(r)); err == nil {
		t.Fatal("a deleted CA is still in the pool")
	}
	if err := r.DeleteCA(ctx, "pre", "stale"); !errors.Is(err, registry.ErrPreconditionFailed) {
		t.Fatalf("delete stale: %v", err)
	}
	if err := r.DeleteCA(ctx, "root", ""); !errors.Is(err, registry.ErrCANotFound) {
		t.Fatalf("delete missing: %v", err)
	}
}
