// Package pki mints the ECDSA P-256 certificates hubgate needs for development
// and tests: a root CA, server certificates for the hub's host names, device
// (client) certificates and intermediates. It is used by `hubgate serve` to
// generate development certificates on first start, by `hubgate pki`, and by
// tests. It is not a production CA.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyPair is a certificate with its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Options tune a certificate. Zero values give sensible defaults.
type Options struct {
	NotBefore time.Time     // default: now - 1h (tolerates clock skew)
	Validity  time.Duration // default: 2 years
}

func (o Options) window() (time.Time, time.Time) {
	nb := o.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	v := o.Validity
	if v == 0 {
		v = 2 * 365 * 24 * time.Hour
	}
	return nb, nb.Add(v)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func create(tmpl *x509.Certificate, parent *KeyPair, o Options) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore, tmpl.NotAfter = o.window()
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: create %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// NewRootCA returns a self-signed CA certificate.
func NewRootCA(cn string, o Options) (*KeyPair, error) {
	return create(caTemplate(cn), nil, o)
}

// IssueIntermediate returns a CA certificate signed by ca.
func (ca *KeyPair) IssueIntermediate(cn string, o Options) (*KeyPair, error) {
	return create(caTemplate(cn), ca, o)
}

// IssueServer returns a TLS server certificate for hosts (DNS names or IPs).
func (ca *KeyPair) IssueServer(hosts []string, o Options) (*KeyPair, error) {
	if len(hosts) == 0 {
		return nil, errors.New("pki: server certificate needs at least one host")
	}
	t := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	return create(t, ca, o)
}

func clientTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// IssueClient returns a client (device) certificate with CN = cn signed by ca.
func (ca *KeyPair) IssueClient(cn string, o Options) (*KeyPair, error) {
	return create(clientTemplate(cn), ca, o)
}

// SelfSignedClient returns a self-signed client certificate with CN = cn, the
// kind a thumbprint ("selfSigned") device presents.
func SelfSignedClient(cn string, o Options) (*KeyPair, error) {
	return create(clientTemplate(cn), nil, o)
}

// CertPEM returns the certificate in PEM.
func (kp *KeyPair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Cert.Raw})
}

// KeyPEM returns the private key in PKCS#8 PEM.
func (kp *KeyPair) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(kp.Key)
	if err != nil {
		panic(err) // an ECDSA P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes the certificate (followed by chain, PEM) and key (mode 0600).
func (kp *KeyPair) WriteFiles(certFile, keyFile string, chain ...*KeyPair) error {
	certPEM := kp.CertPEM()
	for _, c := range chain {
		certPEM = append(certPEM, c.CertPEM()...)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, kp.KeyPEM(), 0o600)
}

// SHA1Thumbprint is the upper-case hex SHA-1 of the DER certificate.
func SHA1Thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return fmt.Sprintf("%X", s[:])
}

// SHA256Thumbprint is the upper-case hex SHA-256 of the DER certificate.
func SHA256Thumbprint(der []byte) string {
	s := sha256.Sum256(der)
	return fmt.Sprintf("%X", s[:])
}

// DevCerts are the development certificate files in a data directory.
type DevCerts struct {
	CAFile, CertFile, KeyFile string
	Created                   bool // generated by this call
}

// EnsureDevCerts returns the development CA and server certificate under dir,
// generating them once: a root CA and an ECDSA P-256 server certificate for
// hosts plus 127.0.0.1 and ::1. Existing files are kept as they are.
func EnsureDevCerts(dir string, hosts []string) (DevCerts, error) {
	dc := DevCerts{
		CAFile:   filepath.Join(dir, "dev-ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server.key"),
	}
	if _, err := os.Stat(dc.CertFile); err == nil {
		return dc, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dc, err
	}
	ca, err := NewRootCA("hubgate development CA", Options{Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		return dc, err
	}
	all := append(append([]string{}, hosts...), "127.0.0.1", "::1")
	srv, err := ca.IssueServer(all, Options{})
	if err != nil {
		return dc, err
	}
	if err := os.WriteFile(dc.CAFile, ca.CertPEM(), 0o644); err != nil {
		return dc, err
	}
	if err := os.WriteFile(filepath.Join(dir, "dev-ca.key"), ca.KeyPEM(), 0o600); err != nil {
		return dc, err
	}
	if err := srv.WriteFiles(dc.CertFile, dc.KeyFile); err != nil {
		return dc, err
	}
	dc.Created = true
	return dc, nil
}
