package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxCANameLength bounds a CA name.
const MaxCANameLength = 128

// ValidateCAName checks a CA name: 1..128 ASCII letters, digits and - . _
// (names appear in URL paths and logs). The error wraps ErrInvalid.
func ValidateCAName(name string) error {
	if name == "" || len(name) > MaxCANameLength {
		return fmt.Errorf("%w: CA name must be 1 to %d characters long", ErrInvalid, MaxCANameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("%w: CA name contains %q; allowed are ASCII letters, digits and - . _", ErrInvalid, rune(c))
		}
	}
	return nil
}

// parseOneCert parses PEM holding exactly one CERTIFICATE block (what names
// the certificate in errors). Errors wrap ErrInvalid.
func parseOneCert(what string, data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: %s: no PEM block found", ErrInvalid, what)
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s: PEM block is %q, want CERTIFICATE", ErrInvalid, what, block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("%w: %s: more than one PEM block; upload exactly one certificate", ErrInvalid, what)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: %s: trailing data after the PEM block", ErrInvalid, what)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return cert, nil
}

// AddCA registers a CA certificate (PEM, exactly one certificate with the CA
// basic constraint). verified=true registers it as already verified (the
// hub's "set as verified on upload"); otherwise it must pass proof of
// possession (VerificationCode, VerifyCA) before it attests devices.
func (r *Registry) AddCA(ctx context.Context, name string, certPEM []byte, verified bool) (CA, error) {
	if err := ValidateCAName(name); err != nil {
		return CA{}, err
	}
	cert, err := parseOneCert("CA certificate", certPEM)
	if err != nil {
		return CA{}, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return CA{}, fmt.Errorf("%w: CA certificate %q is not a CA (basic constraints CA:TRUE missing)", ErrInvalid, cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return CA{}, fmt.Errorf("%w: CA certificate %q lacks the keyCertSign key usage", ErrInvalid, cert.Subject)
	}
	now := r.now().UTC()
	if now.After(cert.NotAfter) {
		return CA{}, fmt.Errorf("%w: CA certificate %q expired at %s", ErrInvalid, cert.Subject, cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	etag, err := r.newEtag("")
	if err != nil {
		return CA{}, err
	}
	sum := sha256.Sum256(cert.Raw)
	ca := CA{
		Name:           name,
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Thumbprint:     strings.ToUpper(hex.EncodeToString(sum[:])),
		Subject:        cert.Subject.String(),
		Expiry:         cert.NotAfter.UTC(),
		Status:         CAUnverified,
		Etag:           etag,
		Created:        now,
		Updated:        now,
	}
	if verified {
		ca.Status = CAVerified
	}
	if err := r.store.CreateCA(ctx, ca); err != nil {
		return CA{}, err
	}
	r.caChanged(ctx, Change{Kind: ChangeCA, ID: name, Etag: ca.Etag})
	return ca, nil
}

// CA returns the named CA (ErrCANotFound).
func (r *Registry) CA(ctx context.Context, name string) (CA, error) {
	if err := ValidateCAName(name); err != nil {
		return CA{}, fmt.Errorf("%w: %w", ErrCANotFound, err)
	}
	return r.store.CA(ctx, name)
}

// CAs lists all registered CAs.
func (r *Registry) CAs(ctx context.Context) ([]CA, error) { return r.store.CAs(ctx) }

// DeleteCA removes a CA; ifMatch as for UpdateDevice.
func (r *Registry) DeleteCA(ctx context.Context, name, ifMatch string) error {
	if err := ValidateCAName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrCANotFound, err)
	}
	want, conditional := parseIfMatch(ifMatch)
	if !conditional {
		want = ""
	}
	if err := r.store.DeleteCA(ctx, name, want); err != nil {
		return err
	}
	r.caChanged(ctx, Change{Kind: ChangeCA, ID: name, Deleted: true})
	return nil
}

// VerificationCode stores a new random verification code (40 upper-case hex
// digits) on the CA and returns the CA with it. The owner proves possession
// of the CA key by signing a certificate whose CN is the code (VerifyCA).
// A verified CA stays verified. ifMatch as for UpdateDevice.
func (r *Registry) VerificationCode(ctx context.Context, name, ifMatch string) (CA, error) {
	var b [20]byte
	if err := r.read(b[:]); err != nil {
		return CA{}, err
	}
	code := strings.ToUpper(hex.EncodeToString(b[:]))
	return r.updateCA(ctx, name, ifMatch, func(ca *CA) error {
		ca.VerificationCode = code
		return nil
	})
}

// VerifyCA completes proof of possession: leafPEM must hold one certificate
// signed by the CA's key whose subject CN equals the CA's current
// verification code. On success the CA becomes verified and the code is
// cleared. Each refusal is an ErrInvalid with its own reason.
func (r *Registry) VerifyCA(ctx context.Context, name string, leafPEM []byte) (CA, error) {
	leaf, err := parseOneCert("verification certificate", leafPEM)
	if err != nil {
		return CA{}, err
	}
	return r.updateCA(ctx, name, "", func(ca *CA) error {
		if ca.VerificationCode == "" {
			return fmt.Errorf("%w: CA %q has no verification code; generate one first", ErrInvalid, ca.Name)
		}
		caCert, err := parseOneCert("stored CA certificate", []byte(ca.CertificatePEM))
		if err != nil {
			return err
		}
		if err := leaf.CheckSignatureFrom(caCert); err != nil {
			return fmt.Errorf("%w: verification certificate is not signed by CA %q: %v", ErrInvalid, ca.Name, err)
		}
		if !strings.EqualFold(leaf.Subject.CommonName, ca.VerificationCode) {
			return fmt.Errorf("%w: verification certificate CN %q does not match the verification code of CA %q", ErrInvalid, leaf.Subject.CommonName, ca.Name)
		}
		now := r.now()
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return fmt.Errorf("%w: verification certificate is not valid now (valid %s to %s)", ErrInvalid,
				leaf.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		}
		ca.Status = CAVerified
		ca.VerificationCode = ""
		return nil
	})
}

// updateCA is a compare-and-set read-modify-write of one CA; an
// unconditional one retries when it loses to a concurrent writer.
func (r *Registry) updateCA(ctx context.Context, name, ifMatch string, mutate func(*CA) error) (CA, error) {
	if err := ValidateCAName(name); err != nil {
		return CA{}, fmt.Errorf("%w: %w", ErrCANotFound, err)
	}
	want, conditional := parseIfMatch(ifMatch)
	for range maxCASRetries {
		cur, err := r.store.CA(ctx, name)
		if err != nil {
			return CA{}, err
		}
		if conditional && cur.Etag != want {
			return CA{}, fmt.Errorf("%w: CA %q has etag %q, If-Match was %q", ErrPreconditionFailed, name, cur.Etag, want)
		}
		next := cur
		if err := mutate(&next); err != nil {
			return CA{}, err
		}
		if next.Etag, err = r.newEtag(cur.Etag); err != nil {
			return CA{}, err
		}
		next.Updated = r.now().UTC()
		err = r.store.ReplaceCA(ctx, next, cur.Etag)
		switch {
		case err == nil:
			r.caChanged(ctx, Change{Kind: ChangeCA, ID: name, Etag: next.Etag})
			return next, nil
		case errors.Is(err, ErrPreconditionFailed) && !conditional:
			continue
		default:
			return CA{}, err
		}
	}
	return CA{}, fmt.Errorf("%w: CA %q: too many concurrent updates", ErrUnavailable, name)
}

// caChanged rebuilds the verified pool and publishes ch. A failed rebuild
// leaves the previous pool in place (logged); the write itself succeeded.
func (r *Registry) caChanged(ctx context.Context, ch Change) {
	if err := r.RefreshCAs(ctx); err != nil {
		r.log.Warn("registry: rebuild verified CA pool failed; keeping the previous one", "ca", ch.ID, "err", err)
	}
	r.publish(ch)
}

// RefreshCAs rebuilds the verified CA pool from the store. Registry calls it
// after its own CA writes; a node that learns of a CA change made elsewhere
// (e.g. over Redis pub/sub) calls it too.
func (r *Registry) RefreshCAs(ctx context.Context) error {
	r.poolMu.Lock()
	defer r.poolMu.Unlock()
	cas, err := r.store.CAs(ctx)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		if ca.Status != CAVerified {
			continue
		}
		cert, err := parseOneCert("stored CA certificate", []byte(ca.CertificatePEM))
		if err != nil {
			r.log.Error("registry: stored CA certificate does not parse; left out of the verified pool", "ca", ca.Name, "err", err)
			continue
		}
		pool.AddCert(cert)
	}
	r.pool.Store(pool)
	return nil
}

// VerifiedCAPool returns the pool of verified CA certificates. It is an
// atomic load, cheap enough for every connect. The pool is shared: callers
// must not modify it.
func (r *Registry) VerifiedCAPool() *x509.CertPool { return r.pool.Load() }
