package authn

import "errors"

// Sentinel errors. Every refusal returned by this package wraps exactly one of
// them (errors.Is works); only the protocol edges map them to CONNACK codes,
// AMQP conditions or HTTP statuses. Error texts are static: they never contain
// a key, a signature or token text, so they are safe to log.
var (
	// Request shape.
	ErrNoCredential        = errors.New("authn: no credential (neither SAS token nor client certificate)")
	ErrModuleNotSupported  = errors.New("authn: module identities are not supported")
	ErrTransportNotAllowed = errors.New("authn: credential type not allowed over this transport")
	ErrIdentityMismatch    = errors.New("authn: identity mismatch")

	// Registry outcomes. ErrRegistryUnavailable is never a statement about the
	// credential: the edges report it as "server unavailable" (CONNACK 3).
	ErrUnknownDevice       = errors.New("authn: unknown device")
	ErrDisabled            = errors.New("authn: device disabled")
	ErrAuthTypeMismatch    = errors.New("authn: credential does not match the device's registered authentication type")
	ErrRegistryUnavailable = errors.New("authn: registry unavailable")

	// SAS tokens.
	ErrMalformedToken    = errors.New("authn: malformed SAS token")
	ErrMalformedUsername = errors.New("authn: malformed MQTT username")
	ErrBadSignature      = errors.New("authn: bad SAS signature")
	ErrExpiredToken      = errors.New("authn: SAS token expired")
	ErrWrongHost         = errors.New("authn: SAS token host is not this hub")
	ErrWrongAudience     = errors.New("authn: SAS token resource does not cover the device")
	ErrUnknownPolicy     = errors.New("authn: unknown shared access policy")
	ErrPolicyRights      = errors.New("authn: shared access policy lacks the required rights")

	// X.509.
	ErrThumbprintMismatch = errors.New("authn: certificate thumbprint does not match")
	ErrCertificateExpired = errors.New("authn: certificate expired or not yet valid")
	ErrUntrustedChain     = errors.New("authn: certificate chain not trusted")
	ErrCommonNameMismatch = errors.New("authn: certificate common name does not match the device id")
)

// reasonError refines a sentinel with a fixed, secret-free reason. All
// instances are package-level values, so refusing costs no allocation.
type reasonError struct {
	kind   error
	reason string
}

func (e *reasonError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.kind }

func refine(kind error, reason string) error { return &reasonError{kind: kind, reason: reason} }

// Refined errors, grouped by sentinel.
var (
	errTokenTooLong    = refine(ErrMalformedToken, "token too long")
	errNoPrefix        = refine(ErrMalformedToken, `missing "SharedAccessSignature " prefix`)
	errEmptyField      = refine(ErrMalformedToken, "empty field")
	errFieldNoValue    = refine(ErrMalformedToken, "field without '='")
	errDuplicateField  = refine(ErrMalformedToken, "duplicate field")
	errMissingSr       = refine(ErrMalformedToken, "missing or empty sr")
	errMissingSig      = refine(ErrMalformedToken, "missing or empty sig")
	errMissingSe       = refine(ErrMalformedToken, "missing or empty se")
	errEmptySkn        = refine(ErrMalformedToken, "empty skn")
	errMissingSkn      = refine(ErrMalformedToken, "missing skn (policy token required)")
	errBadSe           = refine(ErrMalformedToken, "se is not a decimal number of seconds")
	errSeRange         = refine(ErrMalformedToken, "se out of range")
	errBadEscapeSig    = refine(ErrMalformedToken, "invalid percent escape in sig")
	errBadEscapeSkn    = refine(ErrMalformedToken, "invalid percent escape in skn")
	errBadEscapeSr     = refine(ErrMalformedToken, "invalid percent escape in sr")
	errEmptyHost       = refine(ErrMalformedToken, "sr has an empty host")
	errEmptySegment    = refine(ErrMalformedToken, "sr has an empty path segment")
	errModuleAudience  = refine(ErrModuleNotSupported, "token is for a module")
	errModuleRequest   = refine(ErrModuleNotSupported, "request names a module")
	errAudienceDevice  = refine(ErrWrongAudience, "sr is not {host}/devices/{id} for a device key")
	errAudiencePolicy  = refine(ErrWrongAudience, "sr does not cover {host}/devices/{id}")
	errEmptyDeviceID   = refine(ErrUnknownDevice, "empty device id")
	errRecordMismatch  = refine(ErrIdentityMismatch, "registry returned a different device id")
	errTransportUnset  = refine(ErrTransportNotAllowed, "unknown transport")
	errCAOverWS        = refine(ErrTransportNotAllowed, "X.509 CA authentication over WebSockets")
	errNoLeaf          = refine(ErrNoCredential, "nil leaf certificate")
	errTypeSASCert     = refine(ErrAuthTypeMismatch, "device registered as sas presented a certificate")
	errTypeCertToken   = refine(ErrAuthTypeMismatch, "X.509 device presented a SAS token")
	errTypeNone        = refine(ErrAuthTypeMismatch, "device registered with type none")
	errTypeUnknown     = refine(ErrAuthTypeMismatch, "device registered with an unknown type")
	errTypePolicy      = refine(ErrAuthTypeMismatch, "policy token for a device not registered as sas")
	errNotYetValid     = refine(ErrCertificateExpired, "leaf not yet valid")
	errLeafExpired     = refine(ErrCertificateExpired, "leaf expired")
	errChainExpired    = refine(ErrCertificateExpired, "a certificate in the chain is expired or not yet valid")
	errNoVerifiedCA    = refine(ErrUntrustedChain, "no verified CA registered")
	errNotClientAuth   = refine(ErrUntrustedChain, "certificate not valid for client authentication")
	errUnknownCA       = refine(ErrUntrustedChain, "chain does not lead to a verified CA")
	errChainInvalid    = refine(ErrUntrustedChain, "chain verification failed")
	errNoThumbprint    = refine(ErrThumbprintMismatch, "device has no registered thumbprint")
	errNoDeviceKeys    = refine(ErrBadSignature, "device has no symmetric keys")
	errNoPolicyKeys    = refine(ErrBadSignature, "policy has no keys")
	errNoDeviceConnect = refine(ErrPolicyRights, "policy lacks DeviceConnect")
)
