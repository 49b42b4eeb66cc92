package provisioning

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/registry"
)

// Credential is what a device presents to the service: the registration id
// it claims (MQTT username/client id, URL path), the ID scope, and a SAS
// token or a TLS client chain (leaf first).
type Credential struct {
	IDScope          string
	RegistrationID   string
	Token            string
	PeerCertificates []*x509.Certificate
}

// attestation is a successful attestation: the enrollment that admitted the
// device and the credential its hub identity gets.
type attestation struct {
	regID      string
	individual *IndividualEnrollment // exactly one of individual, group
	group      *EnrollmentGroup
	deviceID   string
	hubAuth    registry.Authentication
	kind       string // AttestationSymmetricKey or AttestationX509
}

func (a *attestation) enrollment() *Enrollment {
	if a.individual != nil {
		return &a.individual.Enrollment
	}
	return &a.group.Enrollment
}

func (a *attestation) groupID() string {
	if a.group != nil {
		return a.group.EnrollmentGroupID
	}
	return ""
}

// Refusal reasons, secret-free, for logs and metrics (STYLE rule 7).
var (
	errWrongScope    = fmt.Errorf("%w: wrong id scope", ErrUnauthorized)
	errNoCredential  = fmt.Errorf("%w: neither SAS token nor client certificate", ErrUnauthorized)
	errBadToken      = fmt.Errorf("%w: malformed SAS token", ErrUnauthorized)
	errWrongKeyName  = fmt.Errorf("%w: SAS skn is not \"registration\"", ErrUnauthorized)
	errWrongAudience = fmt.Errorf("%w: SAS sr is not {idScope}/registrations/{registrationId}", ErrUnauthorized)
	errExpired       = fmt.Errorf("%w: SAS token expired", ErrUnauthorized)
	errBadSignature  = fmt.Errorf("%w: no enrollment key verifies the SAS signature", ErrUnauthorized)
	errNoEnrollment  = fmt.Errorf("%w: no enrollment for this registration id", ErrUnauthorized)
	errWrongType     = fmt.Errorf("%w: the enrollment's attestation type differs from the credential", ErrUnauthorized)
	errCNMismatch    = fmt.Errorf("%w: certificate common name is not the registration id", ErrUnauthorized)
	errCertValidity  = fmt.Errorf("%w: certificate expired or not yet valid", ErrUnauthorized)
	errCertMismatch  = fmt.Errorf("%w: certificate does not match the enrollment", ErrUnauthorized)
	errIndividualOff = fmt.Errorf("%w: the individual enrollment is disabled", ErrDisabled)
	errGroupOff      = fmt.Errorf("%w: the enrollment group is disabled", ErrDisabled)
)

// attest decides who the device is (reference §6.5): an individual
// enrollment for the registration id comes first and, when present, alone
// decides (a disabled one blocks a device of a group); otherwise the groups.
// Signatures are checked before the enabled flag, so a stranger learns
// nothing about enrollment states.
func (s *Service) attest(ctx context.Context, c Credential) (*attestation, error) {
	if !strings.EqualFold(c.IDScope, s.cfg.IDScope) {
		return nil, errWrongScope
	}
	if err := ValidateRegistrationID(c.RegistrationID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	switch {
	case c.Token != "":
		return s.attestSAS(ctx, c)
	case len(c.PeerCertificates) > 0:
		return s.attestX509(ctx, c)
	}
	return nil, errNoCredential
}

func (s *Service) attestSAS(ctx context.Context, c Credential) (*attestation, error) {
	tok, err := authn.ParseSAS(c.Token)
	if err != nil {
		return nil, errBadToken
	}
	if tok.KeyName != "registration" {
		return nil, errWrongKeyName
	}
	host, path, err := tok.Audience()
	if err != nil || !strings.EqualFold(host, s.cfg.IDScope) || len(path) != 2 ||
		path[0] != "registrations" || !strings.EqualFold(path[1], c.RegistrationID) {
		return nil, errWrongAudience
	}
	if s.now().After(time.Unix(tok.Expiry, 0).Add(s.cfg.ClockSkew)) {
		return nil, errExpired
	}
	ind, err := s.individual(ctx, c.RegistrationID)
	switch {
	case err == nil:
		if ind.Attestation.Type != AttestationSymmetricKey || ind.Attestation.SymmetricKey == nil {
			return nil, errWrongType
		}
		k := ind.Attestation.SymmetricKey
		if !tok.Verify(k.PrimaryKey) && !tok.Verify(k.SecondaryKey) {
			return nil, errBadSignature
		}
		if !ind.enabled() {
			return nil, errIndividualOff
		}
		return &attestation{regID: c.RegistrationID, individual: &ind, deviceID: deviceIDOf(&ind),
			kind: AttestationSymmetricKey,
			hubAuth: registry.Authentication{Type: registry.AuthSAS,
				SymmetricKey: registry.SymmetricKey{PrimaryKey: k.PrimaryKey, SecondaryKey: k.SecondaryKey}}}, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	groups, err := s.groups(ctx)
	if err != nil {
		return nil, err
	}
	for i := range groups {
		g := &groups[i]
		if g.Attestation.Type != AttestationSymmetricKey || g.Attestation.SymmetricKey == nil {
			continue
		}
		// Only derived keys verify: the group key itself is never a device key.
		p := DeriveDeviceKey(g.Attestation.SymmetricKey.PrimaryKey, c.RegistrationID)
		sec := DeriveDeviceKey(g.Attestation.SymmetricKey.SecondaryKey, c.RegistrationID)
		if !tok.Verify(p) && !tok.Verify(sec) {
			continue
		}
		if !g.enabled() {
			return nil, errGroupOff
		}
		return &attestation{regID: c.RegistrationID, group: g, deviceID: c.RegistrationID,
			kind: AttestationSymmetricKey,
			hubAuth: registry.Authentication{Type: registry.AuthSAS,
				SymmetricKey: registry.SymmetricKey{PrimaryKey: p, SecondaryKey: sec}}}, nil
	}
	return nil, errBadSignature
}

func (s *Service) attestX509(ctx context.Context, c Credential) (*attestation, error) {
	leaf := c.PeerCertificates[0]
	if !strings.EqualFold(leaf.Subject.CommonName, c.RegistrationID) {
		return nil, errCNMismatch
	}
	now := s.now()
	if now.Add(s.cfg.ClockSkew).Before(leaf.NotBefore) || now.Add(-s.cfg.ClockSkew).After(leaf.NotAfter) {
		return nil, errCertValidity
	}
	tp := sha256.Sum256(leaf.Raw)
	thumb := strings.ToUpper(hex.EncodeToString(tp[:]))
	// DESIGN rule 2: whatever attested it, the hub identity is selfSigned
	// with the presented leaf's SHA-256 in both slots (reference §6.6).
	hubAuth := registry.Authentication{Type: registry.AuthSelfSigned,
		X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &thumb, SecondaryThumbprint: ptr(thumb)}}

	ind, err := s.individual(ctx, c.RegistrationID)
	switch {
	case err == nil:
		x := ind.Attestation.X509
		if ind.Attestation.Type != AttestationX509 || x == nil || x.ClientCertificates == nil {
			return nil, errWrongType
		}
		if !certMatches(x.ClientCertificates.Primary, leaf) && !certMatches(x.ClientCertificates.Secondary, leaf) {
			return nil, errCertMismatch
		}
		if !ind.enabled() {
			return nil, errIndividualOff
		}
		return &attestation{regID: c.RegistrationID, individual: &ind, deviceID: deviceIDOf(&ind),
			kind: AttestationX509, hubAuth: hubAuth}, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	groups, err := s.groups(ctx)
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range c.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	// The group whose certificate sits closest to the leaf wins
	// (reference §6.5: from the first intermediate up to the root).
	var best *EnrollmentGroup
	bestLen := 0
	for i := range groups {
		g := &groups[i]
		x := g.Attestation.X509
		if g.Attestation.Type != AttestationX509 || x == nil {
			continue
		}
		var anchors []*x509.Certificate
		switch {
		case x.SigningCertificates != nil:
			for _, cw := range []*X509CertificateWithInfo{x.SigningCertificates.Primary, x.SigningCertificates.Secondary} {
				if c, err := parseCert(cw); err == nil && c != nil {
					anchors = append(anchors, c)
				}
			}
		case x.CAReferences != nil: // only verified CAs attest (DESIGN rule 1)
			for _, n := range []string{x.CAReferences.Primary, x.CAReferences.Secondary} {
				if c := s.verifiedCA(ctx, n); c != nil {
					anchors = append(anchors, c)
				}
			}
		}
		for _, anchor := range anchors {
			roots := x509.NewCertPool()
			roots.AddCert(anchor)
			chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
				CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			if err != nil {
				continue
			}
			for _, ch := range chains {
				if best == nil || len(ch) < bestLen {
					best, bestLen = g, len(ch)
				}
			}
		}
	}
	if best == nil {
		return nil, errCertMismatch
	}
	if !best.enabled() {
		return nil, errGroupOff
	}
	return &attestation{regID: c.RegistrationID, group: best, deviceID: c.RegistrationID,
		kind: AttestationX509, hubAuth: hubAuth}, nil
}

func ptr[T any](v T) *T { return &v }

func deviceIDOf(e *IndividualEnrollment) string {
	if e.DeviceID != "" {
		return e.DeviceID
	}
	return e.RegistrationID
}

// certMatches reports whether the enrollment certificate is leaf.
func certMatches(cw *X509CertificateWithInfo, leaf *x509.Certificate) bool {
	c, err := parseCert(cw)
	return err == nil && c != nil && c.Equal(leaf)
}

// parseCert reads an enrollment certificate: PEM, or base64 DER as some
// tools send it. A nil or empty entry is (nil, nil).
func parseCert(cw *X509CertificateWithInfo) (*x509.Certificate, error) {
	if cw == nil || strings.TrimSpace(cw.Certificate) == "" {
		return nil, nil
	}
	raw := []byte(cw.Certificate)
	if b, _ := pem.Decode(raw); b != nil {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: PEM block %q is not a CERTIFICATE", ErrInvalid, b.Type)
		}
		raw = b.Bytes
	} else if der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cw.Certificate)); err == nil {
		raw = der
	} else {
		return nil, fmt.Errorf("%w: certificate is neither PEM nor base64 DER", ErrInvalid)
	}
	c, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrInvalid, err)
	}
	return c, nil
}

// fillInfo validates an uploaded certificate and fills in its info block.
func fillInfo(cw *X509CertificateWithInfo) error {
	c, err := parseCert(cw)
	if err != nil || c == nil {
		return err
	}
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	cw.Info = &X509CertificateInfo{
		SubjectName:      c.Subject.String(),
		SHA1Thumbprint:   strings.ToUpper(hex.EncodeToString(s1[:])),
		SHA256Thumbprint: strings.ToUpper(hex.EncodeToString(s256[:])),
		IssuerName:       c.Issuer.String(),
		NotBeforeUTC:     c.NotBefore.UTC(),
		NotAfterUTC:      c.NotAfter.UTC(),
		SerialNumber:     strings.ToUpper(c.SerialNumber.Text(16)),
		Version:          c.Version,
	}
	return nil
}

func (s *Service) individual(ctx context.Context, regID string) (IndividualEnrollment, error) {
	var e IndividualEnrollment
	b, err := s.cfg.Store.Get(ctx, kindIndividual, strings.ToLower(regID))
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(b, &e)
}

func (s *Service) groups(ctx context.Context) ([]EnrollmentGroup, error) {
	docs, err := s.cfg.Store.List(ctx, kindGroup)
	if err != nil {
		return nil, err
	}
	out := make([]EnrollmentGroup, 0, len(docs))
	for _, b := range docs {
		var g EnrollmentGroup
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
