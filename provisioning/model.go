package provisioning

import (
	"errors"
	"fmt"
	"github.com/hubgate/hubgate/registry"
	"strings"
	"time"
)

// The JSON shapes below follow the DPS service API 2021-10-01 as the
// azure-iot-provisioning-service Node client sends and reads them
// (reference §6.5, §7.6; sdk-node interfaces.d.ts).

// Attestation types.
const (
	AttestationSymmetricKey = "symmetricKey"
	AttestationX509         = "x509"
	AttestationTPM          = "tpm"
	AttestationNone         = "none"
)

// Allocation policies.
const (
	AllocationHashed     = "hashed"
	AllocationGeoLatency = "geoLatency"
	AllocationStatic     = "static"
	AllocationCustom     = "custom"
)

// Provisioning statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// Registration statuses and substatuses (reference §6.4).
const (
	RegAssigning  = "assigning"
	RegAssigned   = "assigned"
	RegFailed     = "failed"
	RegDisabled   = "disabled"
	RegUnassigned = "unassigned"

	SubInitialAssignment                = "initialAssignment"
	SubDeviceDataMigrated               = "deviceDataMigrated"
	SubDeviceDataReset                  = "deviceDataReset"
	SubReprovisionedToInitialAssignment = "reprovisionedToInitialAssignment"
)

// SymmetricKeyAttestation holds base64 keys.
type SymmetricKeyAttestation struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// X509CertificateInfo describes an uploaded certificate; the service fills it in.
type X509CertificateInfo struct {
	SubjectName      string    `json:"subjectName"`
	SHA1Thumbprint   string    `json:"sha1Thumbprint"`
	SHA256Thumbprint string    `json:"sha256Thumbprint"`
	IssuerName       string    `json:"issuerName"`
	NotBeforeUTC     time.Time `json:"notBeforeUtc"`
	NotAfterUTC      time.Time `json:"notAfterUtc"`
	SerialNumber     string    `json:"serialNumber"`
	Version          int       `json:"version"`
}

// X509CertificateWithInfo is a PEM (or base64 DER) certificate and its info.
type X509CertificateWithInfo struct {
	Certificate string               `json:"certificate,omitempty"`
	Info        *X509CertificateInfo `json:"info,omitempty"`
}

// X509Certificates is a primary and an optional secondary certificate.
type X509Certificates struct {
	Primary   *X509CertificateWithInfo `json:"primary,omitempty"`
	Secondary *X509CertificateWithInfo `json:"secondary,omitempty"`
}

// X509CAReferences name CA certificates registered with the service.
type X509CAReferences struct {
	Primary   string `json:"primary,omitempty"`
	Secondary string `json:"secondary,omitempty"`
}

// X509Attestation: client certificates (individual), signing certificates
// (group: a root or intermediate), or CA references.
type X509Attestation struct {
	ClientCertificates  *X509Certificates `json:"clientCertificates,omitempty"`
	SigningCertificates *X509Certificates `json:"signingCertificates,omitempty"`
	CAReferences        *X509CAReferences `json:"caReferences,omitempty"`
}

// TPMAttestation is accepted in the model but not supported for registration.
type TPMAttestation struct {
	EndorsementKey string `json:"endorsementKey"`
	StorageRootKey string `json:"storageRootKey,omitempty"`
}

// AttestationMechanism is an enrollment's credential.
type AttestationMechanism struct {
	Type         string                   `json:"type"`
	TPM          *TPMAttestation          `json:"tpm,omitempty"`
	X509         *X509Attestation         `json:"x509,omitempty"`
	SymmetricKey *SymmetricKeyAttestation `json:"symmetricKey,omitempty"`
}

// ReprovisionPolicy says what happens when a device's hub changes
// (reference §6.5): nil means the default, update and migrate.
type ReprovisionPolicy struct {
	UpdateHubAssignment bool `json:"updateHubAssignment"`
	MigrateDeviceData   bool `json:"migrateDeviceData"`
}

// CustomAllocationDefinition is the webhook of the custom allocation policy.
type CustomAllocationDefinition struct {
	WebhookURL string `json:"webhookUrl"`
	APIVersion string `json:"apiVersion"`
}

// Capabilities mirror the hub's device capabilities.
type Capabilities struct {
	IoTEdge bool `json:"iotEdge"`
}

// InitialTwin is kept verbatim (tags and desired properties).
type InitialTwin map[string]any

// Enrollment holds what individual enrollments and enrollment groups share.
type Enrollment struct {
	Attestation                AttestationMechanism        `json:"attestation"`
	IoTHubHostName             string                      `json:"iotHubHostName,omitempty"`
	InitialTwin                InitialTwin                 `json:"initialTwin,omitempty"`
	Etag                       string                      `json:"etag,omitempty"`
	ProvisioningStatus         string                      `json:"provisioningStatus"`
	CreatedDateTimeUTC         time.Time                   `json:"createdDateTimeUtc"`
	LastUpdatedDateTimeUTC     time.Time                   `json:"lastUpdatedDateTimeUtc"`
	Capabilities               *Capabilities               `json:"capabilities,omitempty"`
	ReprovisionPolicy          *ReprovisionPolicy          `json:"reprovisionPolicy,omitempty"`
	AllocationPolicy           string                      `json:"allocationPolicy,omitempty"`
	IoTHubs                    []string                    `json:"iotHubs"`
	CustomAllocationDefinition *CustomAllocationDefinition `json:"customAllocationDefinition,omitempty"`
}

// IndividualEnrollment enrolls one device.
type IndividualEnrollment struct {
	RegistrationID    string                   `json:"registrationId"`
	DeviceID          string                   `json:"deviceId,omitempty"`
	RegistrationState *DeviceRegistrationState `json:"registrationState,omitempty"`
	Enrollment
}

// EnrollmentGroup enrolls every device attested by its group credential.
type EnrollmentGroup struct {
	EnrollmentGroupID string `json:"enrollmentGroupId"`
	Enrollment
}

// DeviceRegistrationState is the outcome of a device's last registration.
type DeviceRegistrationState struct {
	RegistrationID         string    `json:"registrationId"`
	CreatedDateTimeUTC     time.Time `json:"createdDateTimeUtc"`
	AssignedHub            string    `json:"assignedHub,omitempty"`
	DeviceID               string    `json:"deviceId,omitempty"`
	Status                 string    `json:"status"`
	Substatus              string    `json:"substatus,omitempty"`
	ErrorCode              int       `json:"errorCode,omitempty"`
	ErrorMessage           string    `json:"errorMessage,omitempty"`
	LastUpdatedDateTimeUTC time.Time `json:"lastUpdatedDateTimeUtc"`
	Etag                   string    `json:"etag,omitempty"`
	Payload                any       `json:"payload,omitempty"`

	// The attestation block of the wire result: {"enrollmentGroupId": ...}
	// under the attestation type's name.
	SymmetricKey map[string]string `json:"symmetricKey,omitempty"`
	X509         map[string]string `json:"x509,omitempty"`
}

// registrationRecord is what the store keeps per registration id: the
// public state plus what re-provisioning needs.
type registrationRecord struct {
	State             DeviceRegistrationState `json:"state"`
	EnrollmentGroupID string                  `json:"enrollmentGroupId,omitempty"`
	PreviousHubs      []string                `json:"previousHubs,omitempty"` // hubs it was assigned to before, oldest first
	// MovedBy is set when an operator's enrollment change moved the device;
	// the next registration reports the move's substatus.
	MovedBy string `json:"movedBy,omitempty"`
	// HubAuth is the credential the hub identity got, so an operator's move
	// can recreate it without the device.
	HubAuth registry.Authentication `json:"hubAuth"`
	// OperationID is the registration operation that wrote this record, so
	// any node sharing the store can answer a poll for it.
	OperationID string `json:"operationId,omitempty"`
}

// LinkedHub is a hub the service assigns devices to. ConnectionString is a
// secret: it is never returned by the API.
type LinkedHub struct {
	Name                  string `json:"name"`
	HostName              string `json:"hostName"`
	ConnectionString      string `json:"connectionString,omitempty"`
	AllocationWeight      int    `json:"allocationWeight"`
	ApplyAllocationPolicy bool   `json:"applyAllocationPolicy"`
	// Address and CAFile override how the hub's registry API is reached
	// (HOST:PORT and a PEM root); tests run hubs on loopback addresses.
	Address string `json:"address,omitempty"`
	CAPEM   string `json:"caPem,omitempty"`
	Etag    string `json:"etag,omitempty"`
}

// Redacted is h without its secret.
func (h LinkedHub) Redacted() LinkedHub {
	h.ConnectionString = ""
	return h
}

// Sentinel errors; the HTTP and MQTT edges map them to statuses.
var (
	ErrNotFound           = errors.New("provisioning: not found")
	ErrExists             = errors.New("provisioning: already exists")
	ErrPreconditionFailed = errors.New("provisioning: etag does not match")
	ErrInvalid            = errors.New("provisioning: invalid argument")
	ErrUnavailable        = errors.New("provisioning: store unavailable")

	// Attestation outcomes. All but ErrDisabled are "unauthorized" to the device.
	ErrUnauthorized = errors.New("provisioning: attestation failed")
	ErrDisabled     = errors.New("provisioning: enrollment disabled")

	// Assignment outcomes.
	ErrNoHub           = errors.New("provisioning: no linked hub available for the enrollment")
	ErrHubUnauthorized = errors.New("provisioning: the linked hub refused the service's credentials")
	ErrHubUnavailable  = errors.New("provisioning: the linked hub is unavailable")
)

// maxRegistrationIDLen is the DPS limit (reference §6).
const maxRegistrationIDLen = 128

// ValidateRegistrationID checks the DPS rules: 1..128 of alphanumerics and
// - . _ : , the last one alphanumeric or '-'.
func ValidateRegistrationID(id string) error {
	if id == "" || len(id) > maxRegistrationIDLen {
		return fmt.Errorf("%w: registration id must be 1 to %d characters", ErrInvalid, maxRegistrationIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !alnum(c) && strings.IndexByte("-._:", c) < 0 {
			return fmt.Errorf("%w: registration id contains %q; allowed are letters, digits and - . _ :", ErrInvalid, rune(c))
		}
	}
	if last := id[len(id)-1]; !alnum(last) && last != '-' {
		return fmt.Errorf("%w: registration id must end with a letter, a digit or '-'", ErrInvalid)
	}
	return nil
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// reprovision returns the effective policy (default: update and migrate).
func (e *Enrollment) reprovision() ReprovisionPolicy {
	if e.ReprovisionPolicy == nil {
		return ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: true}
	}
	return *e.ReprovisionPolicy
}

func (e *Enrollment) enabled() bool { return !strings.EqualFold(e.ProvisioningStatus, StatusDisabled) }
