package broker

import (
	"errors"

	"github.com/hubgate/hubgate/authn"
)

// reasons names authn's refusals for logs and metrics: a bounded label set,
// never credential material. The edges map errors; authn only returns them.
var reasons = []struct {
	err  error
	name string
}{
	{authn.ErrRegistryUnavailable, "registry_unavailable"},
	{authn.ErrNoCredential, "no_credential"},
	{authn.ErrModuleNotSupported, "module_not_supported"},
	{authn.ErrTransportNotAllowed, "transport_not_allowed"},
	{authn.ErrIdentityMismatch, "identity_mismatch"},
	{authn.ErrUnknownDevice, "unknown_device"},
	{authn.ErrDisabled, "device_disabled"},
	{authn.ErrAuthTypeMismatch, "auth_type_mismatch"},
	{authn.ErrMalformedToken, "malformed_token"},
	{authn.ErrMalformedUsername, "malformed_username"},
	{authn.ErrBadSignature, "bad_signature"},
	{authn.ErrExpiredToken, "expired_token"},
	{authn.ErrWrongHost, "wrong_host"},
	{authn.ErrWrongAudience, "wrong_audience"},
	{authn.ErrUnknownPolicy, "unknown_policy"},
	{authn.ErrPolicyRights, "policy_rights"},
	{authn.ErrThumbprintMismatch, "thumbprint_mismatch"},
	{authn.ErrCertificateExpired, "certificate_expired"},
	{authn.ErrUntrustedChain, "untrusted_chain"},
	{authn.ErrCommonNameMismatch, "common_name_mismatch"},
	{errClientIDMismatch, "client_id_mismatch"},
	{errWillTopic, "will_topic_not_allowed"},
	{ErrRevokedDuringConnect, "revoked_during_connect"},
}

// reasonOf names a refusal; "internal" for anything unexpected.
func reasonOf(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "internal"
}

// ReasonOf names a refusal for the logs and metrics of other heads (AMQP),
// with the same bounded label set as MQTT.
func ReasonOf(err error) string { return reasonOf(err) }
