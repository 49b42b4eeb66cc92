package authn

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// Transport is how a connection reached the gateway. It matters for one rule:
// X.509 CA authentication is refused over WebSockets (DESIGN.md rule 3).
type Transport uint8

const (
	TransportTLS       Transport = iota + 1 // MQTT or AMQP over TLS on TCP
	TransportWebSocket                      // MQTT or AMQP over WSS on 443
)

func (t Transport) String() string {
	switch t {
	case TransportTLS:
		return "tls"
	case TransportWebSocket:
		return "websocket"
	}
	return "unknown"
}

// Method is the attestation that admitted a session.
type Method uint8

const (
	MethodSAS            Method = iota + 1 // SAS token signed by the device key
	MethodSASPolicy                        // SAS token signed by a hub policy key (skn)
	MethodX509Thumbprint                   // client certificate with a registered thumbprint
	MethodX509CA                           // client certificate chaining to a verified CA
)

func (m Method) String() string {
	switch m {
	case MethodSAS:
		return "sas"
	case MethodSASPolicy:
		return "sas_policy"
	case MethodX509Thumbprint:
		return "x509_thumbprint"
	case MethodX509CA:
		return "x509_ca"
	}
	return "unknown"
}

// Slot is the credential slot of the device record that matched.
type Slot uint8

const (
	SlotNone      Slot = iota // policy token or CA chain: no per-device credential
	SlotPrimary               // primary key / primary thumbprint
	SlotSecondary             // secondary key / secondary thumbprint
)

func (s Slot) String() string {
	switch s {
	case SlotPrimary:
		return "primary"
	case SlotSecondary:
		return "secondary"
	}
	return "none"
}

// Request is what a protocol head extracts from a connect attempt.
type Request struct {
	DeviceID         string
	ModuleID         string              // non-empty → ErrModuleNotSupported (no module identities yet)
	Token            string              // SAS token (MQTT password, AMQP CBS/PLAIN); empty → X.509
	PeerCertificates []*x509.Certificate // as presented in TLS, leaf first
	Transport        Transport
}

// Identity is an admitted device. It holds no secret: StillAllowed works from
// hashes of the credential that matched.
type Identity struct {
	DeviceID   string
	Method     Method
	PolicyName string    // set for MethodSASPolicy
	Expires    time.Time // SAS: se + ClockSkew (the session must end then); X.509: leaf NotAfter
	Etag       string    // etag of the device record the decision was made on
	Slot       Slot      // which credential matched; SlotNone for CA and policy

	keyHash    [sha256.Size]byte // MethodSAS: SHA-256 of the matching base64 key
	certSHA1   [20]byte          // MethodX509Thumbprint: hashes of the leaf DER
	certSHA256 [sha256.Size]byte
}

// DeviceSource resolves device records, normally the registry cache. It returns
// registry.ErrDeviceNotFound for an unknown id and an error wrapping
// registry.ErrUnavailable when it cannot answer.
type DeviceSource interface {
	Device(ctx context.Context, id string) (registry.Device, error)
}

// PolicySource resolves hub shared access policies (held in memory).
type PolicySource interface {
	Policy(name string) (registry.Policy, bool)
}

// CASource gives the roots for X.509 CA authentication: the registered CAs
// whose status is verified. nil means none.
type CASource interface {
	VerifiedCAPool() *x509.CertPool
}

// DefaultClockSkew is the leeway on SAS expiry and certificate NotBefore:
// 5 minutes, the MaxClockSkew of edgeHub and the .NET device SDK (reference §2.5).
const DefaultClockSkew = 5 * time.Minute

// Config configures an Authenticator.
type Config struct {
	HostNames []string         // hub host names; a token's sr host must equal one (case-insensitive)
	ClockSkew time.Duration    // default DefaultClockSkew; a token is expired when se + ClockSkew < now
	Now       func() time.Time // default time.Now
	Devices   DeviceSource
	Policies  PolicySource
	CAs       CASource
}

func (c *Config) setDefaults() {
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	if len(c.HostNames) == 0 {
		return errors.New("authn: config: at least one host name is required")
	}
	for i, h := range c.HostNames {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("authn: config: host name %d (%q) is empty or contains '/' or a space", i, h)
		}
	}
	if c.ClockSkew < 0 {
		return fmt.Errorf("authn: config: negative clock skew %v", c.ClockSkew)
	}
	switch {
	case c.Devices == nil:
		return errors.New("authn: config: Devices source is required")
	case c.Policies == nil:
		return errors.New("authn: config: Policies source is required")
	case c.CAs == nil:
		return errors.New("authn: config: CAs source is required")
	}
	return nil
}

// Authenticator makes admission decisions. It is immutable after New and safe
// for concurrent use; all state it consults lives behind its sources.
type Authenticator struct {
	cfg Config
}

// New fills defaults and validates cfg.
func New(cfg Config) (*Authenticator, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.HostNames = append([]string(nil), cfg.HostNames...)
	return &Authenticator{cfg: cfg}, nil
}

// Authenticate decides a connect attempt. The returned error wraps one of the
// package's sentinels; see doc.go for the order of checks.
func (a *Authenticator) Authenticate(ctx context.Context, r Request) (Identity, error) {
	if r.Transport != TransportTLS && r.Transport != TransportWebSocket {
		return Identity{}, errTransportUnset
	}
	if r.ModuleID != "" {
		return Identity{}, errModuleRequest
	}
	if r.DeviceID == "" {
		return Identity{}, errEmptyDeviceID
	}
	if r.Token != "" {
		return a.authenticateSAS(ctx, r)
	}
	if len(r.PeerCertificates) > 0 {
		return a.authenticateX509(ctx, r)
	}
	return Identity{}, ErrNoCredential
}

func (a *Authenticator) authenticateSAS(ctx context.Context, r Request) (Identity, error) {
	s, err := ParseSAS(r.Token)
	if err != nil {
		return Identity{}, err
	}
	expires, err := a.checkExpiry(s)
	if err != nil {
		return Identity{}, err
	}
	host, rest, hasPath, err := splitAudience(s.Resource)
	if err != nil {
		return Identity{}, err
	}
	if !a.ourHost(host) {
		return Identity{}, ErrWrongHost
	}
	policy := s.KeyName != ""
	if err := checkDeviceAudience(rest, hasPath, r.DeviceID, policy); err != nil {
		return Identity{}, err
	}
	if policy {
		return a.authenticatePolicy(ctx, r, s, expires)
	}

	d, err := a.device(ctx, r.DeviceID)
	if err != nil {
		return Identity{}, err
	}
	switch d.Authentication.Type {
	case registry.AuthSAS:
	case registry.AuthSelfSigned, registry.AuthCA:
		return Identity{}, errTypeCertToken
	default:
		return Identity{}, typeError(d.Authentication.Type)
	}
	keys := &d.Authentication.SymmetricKey
	if keys.PrimaryKey == "" && keys.SecondaryKey == "" {
		return Identity{}, errNoDeviceKeys
	}
	slot, key := SlotPrimary, keys.PrimaryKey
	if !s.Verify(key) {
		slot, key = SlotSecondary, keys.SecondaryKey
		if !s.Verify(key) {
			return Identity{}, ErrBadSignature
		}
	}
	return Identity{
		DeviceID: d.DeviceID,
		Method:   MethodSAS,
		Expires:  expires,
		Etag:     d.Etag,
		Slot:     slot,
		keyHash:  sha256.Sum256([]byte(key)),
	}, nil
}

// authenticatePolicy admits a device by a hub policy token (skn). The
// signature is checked before the device is looked up, so forged tokens never
// cost a registry round trip.
func (a *Authenticator) authenticatePolicy(ctx context.Context, r Request, s SAS, expires time.Time) (Identity, error) {
	p, err := a.verifyPolicy(s)
	if err != nil {
		return Identity{}, err
	}
	if !p.Rights.Has(registry.DeviceConnect) {
		return Identity{}, errNoDeviceConnect
	}
	d, err := a.device(ctx, r.DeviceID)
	if err != nil {
		return Identity{}, err
	}
	if d.Authentication.Type != registry.AuthSAS {
		return Identity{}, errTypePolicy
	}
	return Identity{
		DeviceID:   d.DeviceID,
		Method:     MethodSASPolicy,
		PolicyName: p.KeyName,
		Expires:    expires,
		Etag:       d.Etag,
	}, nil
}

// verifyPolicy finds the token's policy and checks the signature with its
// primary, then secondary key.
func (a *Authenticator) verifyPolicy(s SAS) (registry.Policy, error) {
	p, ok := a.cfg.Policies.Policy(s.KeyName)
	if !ok {
		return registry.Policy{}, ErrUnknownPolicy
	}
	if p.PrimaryKey == "" && p.SecondaryKey == "" {
		return registry.Policy{}, errNoPolicyKeys
	}
	if !s.Verify(p.PrimaryKey) && !s.Verify(p.SecondaryKey) {
		return registry.Policy{}, ErrBadSignature
	}
	if p.KeyName == "" {
		p.KeyName = s.KeyName
	}
	return p, nil
}

// AuthorizePolicy verifies a service or registry token: skn names a hub
// policy, sr is one of our host names or any path under it, the signature is
// made with the policy's primary or secondary key, the token is not expired,
// and the policy has every right in want. The signature is checked before the
// rights, so an unauthenticated caller cannot probe a policy's rights.
// expires is se + ClockSkew, like Identity.Expires.
func (a *Authenticator) AuthorizePolicy(token string, want registry.Rights) (policy string, expires time.Time, err error) {
	s, err := ParseSAS(token)
	if err != nil {
		return "", time.Time{}, err
	}
	if s.KeyName == "" {
		return "", time.Time{}, errMissingSkn
	}
	if expires, err = a.checkExpiry(s); err != nil {
		return "", time.Time{}, err
	}
	host, rest, hasPath, err := splitAudience(s.Resource)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, _, err := pathSegments(rest, hasPath); err != nil {
		return "", time.Time{}, err
	}
	if !a.ourHost(host) {
		return "", time.Time{}, ErrWrongHost
	}
	p, err := a.verifyPolicy(s)
	if err != nil {
		return "", time.Time{}, err
	}
	if !p.Rights.Has(want) {
		return "", time.Time{}, ErrPolicyRights
	}
	return p.KeyName, expires, nil
}

// StillAllowed re-checks a live session against a new record of its device,
// after a registry change event. It is false when the record is for another
// id, the device is disabled, its authentication type no longer allows the
// method, or the slot that matched no longer holds the same key (SAS) or a
// thumbprint of the same certificate (X.509 thumbprint). A policy session
// needs only an enabled sas device (the policy key is hub-level; policy
// changes are a separate event); a CA session an enabled certificateAuthority
// device. Expiry is not checked here: the session table ends sessions at
// Identity.Expires.
func (a *Authenticator) StillAllowed(id Identity, d registry.Device) bool {
	if d.DeviceID != id.DeviceID || d.Status != registry.StatusEnabled {
		return false
	}
	auth := &d.Authentication
	switch id.Method {
	case MethodSAS:
		if auth.Type != registry.AuthSAS {
			return false
		}
		var key string
		switch id.Slot {
		case SlotPrimary:
			key = auth.SymmetricKey.PrimaryKey
		case SlotSecondary:
			key = auth.SymmetricKey.SecondaryKey
		default:
			return false
		}
		return key != "" && sha256.Sum256([]byte(key)) == id.keyHash
	case MethodSASPolicy:
		return auth.Type == registry.AuthSAS
	case MethodX509Thumbprint:
		if auth.Type != registry.AuthSelfSigned {
			return false
		}
		var tp *string
		switch id.Slot {
		case SlotPrimary:
			tp = auth.X509Thumbprint.PrimaryThumbprint
		case SlotSecondary:
			tp = auth.X509Thumbprint.SecondaryThumbprint
		default:
			return false
		}
		return tp != nil && thumbprintMatches(*tp, &id.certSHA1, &id.certSHA256)
	case MethodX509CA:
		return auth.Type == registry.AuthCA
	}
	return false
}

// checkExpiry refuses a token whose se + ClockSkew is before now and returns
// that instant, which is when the session must end.
func (a *Authenticator) checkExpiry(s SAS) (time.Time, error) {
	expires := time.Unix(s.Expiry, 0).Add(a.cfg.ClockSkew)
	if expires.Before(a.cfg.Now()) {
		return time.Time{}, ErrExpiredToken
	}
	return expires, nil
}

// ourHost matches a token's host against the configured hub host names,
// case-insensitively. A ":port" suffix is ignored: SDKs put the port of a
// custom-port HostName into sr (reference §1, "Custom ports").
func (a *Authenticator) ourHost(h string) bool {
	for _, n := range a.cfg.HostNames {
		if strings.EqualFold(h, n) {
			return true
		}
	}
	i := strings.LastIndexByte(h, ':')
	if i <= 0 || i == len(h)-1 || !allDigits(h[i+1:]) {
		return false
	}
	base := h[:i]
	if strings.IndexByte(base, ':') >= 0 && !strings.HasSuffix(base, "]") {
		return false // a bare IPv6 address, not host:port
	}
	for _, n := range a.cfg.HostNames {
		if strings.EqualFold(base, n) {
			return true
		}
	}
	return false
}

// device looks the device up and applies the checks every method shares:
// known, the record is for this id, enabled. Source failures other than
// "not found" are reported as ErrRegistryUnavailable, never as a credential
// problem (DESIGN.md rule 6).
func (a *Authenticator) device(ctx context.Context, id string) (registry.Device, error) {
	d, err := a.cfg.Devices.Device(ctx, id)
	switch {
	case errors.Is(err, registry.ErrDeviceNotFound):
		return registry.Device{}, ErrUnknownDevice
	case err != nil:
		return registry.Device{}, &unavailableError{cause: err}
	case d.DeviceID != id:
		return registry.Device{}, errRecordMismatch
	case d.Status != registry.StatusEnabled:
		return registry.Device{}, ErrDisabled
	}
	return d, nil
}

// unavailableError is ErrRegistryUnavailable carrying the source's error, so
// callers can still see a context deadline or registry.ErrUnavailable.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string {
	return ErrRegistryUnavailable.Error() + ": " + e.cause.Error()
}
func (e *unavailableError) Unwrap() []error { return []error{ErrRegistryUnavailable, e.cause} }

func typeError(t registry.AuthType) error {
	if t == registry.AuthNone {
		return errTypeNone
	}
	return errTypeUnknown
}
