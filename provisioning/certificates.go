package provisioning

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/hubgate/hubgate/registry"
)

// CA certificates registered with the service: X.509 enrollment groups may
// name them in caReferences. Only a verified CA (proof of possession, or an
// operator who vouches at upload) attests devices — as for the hub's CAs,
// with the same JSON shape (registry.CA).

const kindCertificate = "certificate"

// AddCA registers (or replaces) a CA certificate.
func (s *Service) AddCA(ctx context.Context, name string, certPEM []byte, verified bool) (registry.CA, error) {
	if err := registry.ValidateCAName(name); err != nil {
		return registry.CA{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c, err := onePEMCert(certPEM)
	if err != nil {
		return registry.CA{}, err
	}
	if !c.IsCA {
		return registry.CA{}, fmt.Errorf("%w: %q is not a CA certificate (basicConstraints CA:false)", ErrInvalid, name)
	}
	sum := sha256.Sum256(c.Raw)
	now := s.now().UTC()
	ca := registry.CA{Name: name, CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
		Thumbprint: strings.ToUpper(hex.EncodeToString(sum[:])), Subject: c.Subject.String(), Expiry: c.NotAfter.UTC(),
		Status: registry.CAUnverified, Etag: newEtag(), Created: now, Updated: now}
	if verified {
		ca.Status = registry.CAVerified
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return ca, s.putCA(ctx, ca)
}

func (s *Service) putCA(ctx context.Context, ca registry.CA) error {
	b, _ := json.Marshal(ca)
	return s.cfg.Store.Put(ctx, kindCertificate, ca.Name, b)
}

// CA returns a registered CA.
func (s *Service) CA(ctx context.Context, name string) (registry.CA, error) {
	var ca registry.CA
	b, err := s.cfg.Store.Get(ctx, kindCertificate, name)
	if err != nil {
		return ca, err
	}
	return ca, json.Unmarshal(b, &ca)
}

// CAs lists the registered CAs.
func (s *Service) CAs(ctx context.Context) ([]registry.CA, error) {
	docs, err := s.cfg.Store.List(ctx, kindCertificate)
	if err != nil {
		return nil, err
	}
	out := make([]registry.CA, 0, len(docs))
	for _, b := range docs {
		var ca registry.CA
		if err := json.Unmarshal(b, &ca); err != nil {
			return nil, err
		}
		out = append(out, ca)
	}
	return out, nil
}

// DeleteCA removes a CA; groups naming it stop attesting through it.
func (s *Service) DeleteCA(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.cfg.Store.Delete(ctx, kindCertificate, name)
}

// VerificationCode stores a fresh code on the CA: the owner proves
// possession by signing a certificate whose CN is the code (VerifyCA).
func (s *Service) VerificationCode(ctx context.Context, name string) (registry.CA, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ca, err := s.CA(ctx, name)
	if err != nil {
		return ca, err
	}
	var b [20]byte
	rand.Read(b[:])
	ca.VerificationCode = strings.ToUpper(hex.EncodeToString(b[:]))
	ca.Etag, ca.Updated = newEtag(), s.now().UTC()
	return ca, s.putCA(ctx, ca)
}

// VerifyCA completes proof of possession.
func (s *Service) VerifyCA(ctx context.Context, name string, leafPEM []byte) (registry.CA, error) {
	leaf, err := onePEMCert(leafPEM)
	if err != nil {
		return registry.CA{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ca, err := s.CA(ctx, name)
	if err != nil {
		return ca, err
	}
	caCert, err := onePEMCert([]byte(ca.CertificatePEM))
	if err != nil {
		return ca, err
	}
	switch {
	case ca.VerificationCode == "":
		return ca, fmt.Errorf("%w: CA %q has no verification code; generate one first", ErrInvalid, name)
	case leaf.CheckSignatureFrom(caCert) != nil:
		return ca, fmt.Errorf("%w: the verification certificate is not signed by CA %q", ErrInvalid, name)
	case !strings.EqualFold(leaf.Subject.CommonName, ca.VerificationCode):
		return ca, fmt.Errorf("%w: the verification certificate's CN is not CA %q's verification code", ErrInvalid, name)
	case s.now().Before(leaf.NotBefore) || s.now().After(leaf.NotAfter):
		return ca, fmt.Errorf("%w: the verification certificate is not valid now", ErrInvalid)
	}
	ca.Status, ca.VerificationCode = registry.CAVerified, ""
	ca.Etag, ca.Updated = newEtag(), s.now().UTC()
	return ca, s.putCA(ctx, ca)
}

// verifiedCA returns the certificate of a verified CA, or nil.
func (s *Service) verifiedCA(ctx context.Context, name string) *x509.Certificate {
	if name == "" {
		return nil
	}
	ca, err := s.CA(ctx, name)
	if err != nil || ca.Status != registry.CAVerified {
		return nil
	}
	c, err := onePEMCert([]byte(ca.CertificatePEM))
	if err != nil {
		return nil
	}
	return c
}

func onePEMCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: not a PEM certificate", ErrInvalid)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrInvalid, err)
	}
	return c, nil
}
