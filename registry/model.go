package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuthType is a device's registered authentication type (reference §7.3).
// It alone decides which credential the device may present (DESIGN.md rule 2).
type AuthType string

const (
	AuthSAS        AuthType = "sas"
	AuthSelfSigned AuthType = "selfSigned"
	AuthCA         AuthType = "certificateAuthority"
	AuthNone       AuthType = "none"
)

// Status is a device's administrative status.
type Status string

const (
	StatusEnabled  Status = "enabled"
	StatusDisabled Status = "disabled"
)

// SymmetricKey holds a device's or policy's base64 keys.
type SymmetricKey struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509Thumbprint holds hex SHA-1 or SHA-256 thumbprints of a device's certificates.
// A nil pointer marshals as null, which is what the hub sends for an unset slot.
type X509Thumbprint struct {
	PrimaryThumbprint   *string `json:"primaryThumbprint"`
	SecondaryThumbprint *string `json:"secondaryThumbprint"`
}

// Authentication is the device's credential block as the hub serialises it.
type Authentication struct {
	SymmetricKey   SymmetricKey   `json:"symmetricKey"`
	X509Thumbprint X509Thumbprint `json:"x509Thumbprint"`
	Type           AuthType       `json:"type"`
}

// Capabilities mirrors the hub's device capabilities.
type Capabilities struct {
	IoTEdge bool `json:"iotEdge"`
}

// Device is a device identity with the JSON shape of IoT Hub's registry (reference §7.3).
type Device struct {
	DeviceID                   string         `json:"deviceId"`
	GenerationID               string         `json:"generationId"`
	Etag                       string         `json:"etag"`
	ConnectionState            string         `json:"connectionState"`
	Status                     Status         `json:"status"`
	StatusReason               *string        `json:"statusReason"`
	ConnectionStateUpdatedTime time.Time      `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          time.Time      `json:"statusUpdatedTime"`
	LastActivityTime           time.Time      `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int            `json:"cloudToDeviceMessageCount"`
	Authentication             Authentication `json:"authentication"`
	Capabilities               Capabilities   `json:"capabilities"`
	DeviceScope                string         `json:"deviceScope,omitempty"`
	ParentScopes               []string       `json:"parentScopes"`
}

// Rights are the permissions of a shared access policy.
type Rights uint8

const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

// Has reports whether r includes every right in want.
func (r Rights) Has(want Rights) bool { return r&want == want }

// Policy is a hub-level shared access policy (reference §2.4).
type Policy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       Rights `json:"rights"`
}

// DefaultPolicies are the hub's built-in policy names and rights; keys are
// generated on first start.
var DefaultPolicies = []Policy{
	{KeyName: "iothubowner", Rights: RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
	{KeyName: "service", Rights: ServiceConnect},
	{KeyName: "device", Rights: DeviceConnect},
	{KeyName: "registryRead", Rights: RegistryRead},
	{KeyName: "registryReadWrite", Rights: RegistryRead | RegistryWrite},
}

// CAStatus is the proof-of-possession state of a registered CA certificate.
type CAStatus string

const (
	CAUnverified CAStatus = "unverified"
	CAVerified   CAStatus = "verified"
)

// CA is a CA certificate registered with the hub's management plane.
// Only a verified CA can attest devices (DESIGN.md rule 1).
type CA struct {
	Name             string    `json:"name"`
	CertificatePEM   string    `json:"certificate"`
	Thumbprint       string    `json:"thumbprint"` // hex SHA-256 of the DER certificate
	Subject          string    `json:"subject"`
	Expiry           time.Time `json:"expiry"`
	Status           CAStatus  `json:"status"`
	VerificationCode string    `json:"verificationCode,omitempty"`
	Etag             string    `json:"etag"`
	Created          time.Time `json:"created"`
	Updated          time.Time `json:"updated"`
}

// Sentinel errors of the registry. Edges map them to HTTP statuses (reference §7.5).
var (
	ErrDeviceNotFound     = errors.New("registry: device not found")
	ErrDeviceExists       = errors.New("registry: device already exists")
	ErrCANotFound         = errors.New("registry: CA not found")
	ErrCAExists           = errors.New("registry: CA already exists")
	ErrPreconditionFailed = errors.New("registry: etag does not match")
	ErrInvalid            = errors.New("registry: invalid argument")
	// ErrUnavailable means the backing store could not answer; it is never
	// a statement about the device.
	ErrUnavailable = errors.New("registry: store unavailable")
)

// Clone returns a deep copy of d: pointer fields and slices are not shared.
func (d Device) Clone() Device {
	c := d
	c.StatusReason = cloneString(d.StatusReason)
	c.Authentication.X509Thumbprint.PrimaryThumbprint = cloneString(d.Authentication.X509Thumbprint.PrimaryThumbprint)
	c.Authentication.X509Thumbprint.SecondaryThumbprint = cloneString(d.Authentication.X509Thumbprint.SecondaryThumbprint)
	if d.ParentScopes != nil {
		c.ParentScopes = append([]string{}, d.ParentScopes...)
	}
	return c
}

func cloneString(p *string) *string {
	if p == nil {
		return nil
	}
	s := *p
	return &s
}

// MaxIDLength is the longest device id the hub accepts (reference §7.3).
const MaxIDLength = 128

// ValidateDeviceID checks a device id against the hub's rules (reference §7.3):
// 1..128 ASCII alphanumerics and - . + % _ # * ? ! ( ) , = @ $ ' ; ids are
// case-sensitive. The error wraps ErrInvalid.
func ValidateDeviceID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: device id is empty", ErrInvalid)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: device id is %d characters long, the limit is %d", ErrInvalid, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return fmt.Errorf("%w: device id contains %q at offset %d; allowed are ASCII letters, digits and - . + %% _ # * ? ! ( ) , = @ $ '", ErrInvalid, rune(id[i]), i)
		}
	}
	return nil
}

func idChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.+%_#*?!(),=@$'", c) >= 0
}
