package authn

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/hubgate/hubgate/registry"
)

// Thumbprints returns the upper-case hex SHA-1 and SHA-256 of a DER
// certificate, the two forms IoT Hub accepts in a device's x509Thumbprint
// (reference §5).
func Thumbprints(der []byte) (sha1hex, sha256hex string) {
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s1[:])), strings.ToUpper(hex.EncodeToString(s256[:]))
}

// thumbprintMatches reports whether tp (hex, either case) is the SHA-1 or the
// SHA-256 of the certificate whose hashes are given. Thumbprints are public,
// so the comparison need not be constant-time.
func thumbprintMatches(tp string, s1 *[20]byte, s256 *[sha256.Size]byte) bool {
	switch len(tp) {
	case 2 * len(s1):
		return hexEqualFold(tp, s1[:])
	case 2 * len(s256):
		return hexEqualFold(tp, s256[:])
	}
	return false
}

func hexEqualFold(tp string, sum []byte) bool {
	const lower = "0123456789abcdef"
	for i, b := range sum {
		if lower2(tp[2*i]) != lower[b>>4] || lower2(tp[2*i+1]) != lower[b&15] {
			return false
		}
	}
	return true
}

func lower2(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func (a *Authenticator) authenticateX509(ctx context.Context, r Request) (Identity, error) {
	leaf := r.PeerCertificates[0]
	if leaf == nil {
		return Identity{}, errNoLeaf
	}
	d, err := a.device(ctx, r.DeviceID)
	if err != nil {
		return Identity{}, err
	}
	switch d.Authentication.Type {
	case registry.AuthSelfSigned:
		return a.authenticateThumbprint(d, leaf)
	case registry.AuthCA:
		return a.authenticateCA(d, r)
	case registry.AuthSAS:
		return Identity{}, errTypeSASCert
	default:
		return Identity{}, typeError(d.Authentication.Type)
	}
}

// authenticateThumbprint admits a selfSigned device whose leaf hashes to its
// primary or secondary thumbprint and is within its validity period. As in
// IoT Hub there is no chain and no CN check (reference §5): the TLS handshake
// already proved possession of the key. NotBefore gets ClockSkew leeway (a
// device may present a certificate minted moments ago on a clock ahead of
// ours); NotAfter does not, since the session ends at NotAfter anyway.
func (a *Authenticator) authenticateThumbprint(d registry.Device, leaf *x509.Certificate) (Identity, error) {
	tps := &d.Authentication.X509Thumbprint
	if (tps.PrimaryThumbprint == nil || *tps.PrimaryThumbprint == "") &&
		(tps.SecondaryThumbprint == nil || *tps.SecondaryThumbprint == "") {
		return Identity{}, errNoThumbprint
	}
	if err := a.checkValidity(leaf); err != nil {
		return Identity{}, err
	}
	id := Identity{
		DeviceID:   d.DeviceID,
		Method:     MethodX509Thumbprint,
		Expires:    leaf.NotAfter,
		Etag:       d.Etag,
		certSHA1:   sha1.Sum(leaf.Raw),
		certSHA256: sha256.Sum256(leaf.Raw),
	}
	switch {
	case tps.PrimaryThumbprint != nil && thumbprintMatches(*tps.PrimaryThumbprint, &id.certSHA1, &id.certSHA256):
		id.Slot = SlotPrimary
	case tps.SecondaryThumbprint != nil && thumbprintMatches(*tps.SecondaryThumbprint, &id.certSHA1, &id.certSHA256):
		id.Slot = SlotSecondary
	default:
		return Identity{}, ErrThumbprintMismatch
	}
	return id, nil
}

func (a *Authenticator) checkValidity(leaf *x509.Certificate) error {
	now := a.cfg.Now()
	if now.Add(a.cfg.ClockSkew).Before(leaf.NotBefore) {
		return errNotYetValid
	}
	if now.After(leaf.NotAfter) {
		return errLeafExpired
	}
	return nil
}

// authenticateCA admits a certificateAuthority device whose leaf has CN equal
// to the device id (ordinal) and chains, through the other presented
// certificates, to a verified CA, with the client-auth EKU. The cheap refusals
// (WebSocket transport, CN, validity) come before chain building. Chain
// verification uses Now without leeway: x509 checks every certificate of the
// chain against one instant.
func (a *Authenticator) authenticateCA(d registry.Device, r Request) (Identity, error) {
	if r.Transport == TransportWebSocket {
		return Identity{}, errCAOverWS // DESIGN.md rule 3
	}
	leaf := r.PeerCertificates[0]
	if leaf.Subject.CommonName != d.DeviceID {
		return Identity{}, ErrCommonNameMismatch
	}
	if err := a.checkValidity(leaf); err != nil {
		return Identity{}, err
	}
	roots := a.cfg.CAs.VerifiedCAPool()
	if roots == nil {
		return Identity{}, errNoVerifiedCA
	}
	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: a.cfg.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(r.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range r.PeerCertificates[1:] {
			if c != nil {
				opts.Intermediates.AddCert(c)
			}
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, chainError(err)
	}
	return Identity{
		DeviceID: d.DeviceID,
		Method:   MethodX509CA,
		Expires:  leaf.NotAfter,
		Etag:     d.Etag,
	}, nil
}

// chainError maps x509 verification failures to sentinels without quoting
// x509's text.
func chainError(err error) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			return errChainExpired
		case x509.IncompatibleUsage:
			return errNotClientAuth
		}
		return errChainInvalid
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return errUnknownCA
	}
	return errChainInvalid
}
