package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
)

// caInfo is the part of the CLI's CA JSON the suite reads.
type caInfo struct {
	VerificationCode string `json:"verificationCode"`
}

// addVerifiedCA registers caFile as name and proves possession of its key
// the way IoT Hub asks for it (reference §5): verification code → a leaf
// with CN = code signed by the CA → verify.
func (h *hub) addVerifiedCA(t *testing.T, name string, ca *pki.KeyPair, caFile string) {
	t.Helper()
	h.cli(t, nil, "ca", "add", name, caFile)
	var info caInfo
	h.cli(t, &info, "ca", "verification-code", name)
	if info.VerificationCode == "" {
		t.Fatalf("ca verification-code %s: no verificationCode in the answer", name)
	}
	proof := issue(t, ca, info.VerificationCode)
	h.cli(t, nil, "ca", "verify", name, "--cert", proof.Cert)
}

// TestX509Device: selfSigned devices registered with a SHA-256 or SHA-1
// thumbprint connect over MQTT and MQTT over WebSockets with their
// certificate, and a certificate with another thumbprint is refused; devices
// under a verified CA connect over MQTT with a leaf whose CN is their id,
// and are refused over WebSockets, under an unverified or unknown CA, or
// with another device's CN.
func TestX509Device(t *testing.T) {
	t.Parallel()
	h := startHub(t, "hub-x509", ipX509)

	// Setup that the subtests share: a verified CA with a device under it,
	// and an unverified CA with a device under it.
	verified, verifiedFile := rootCA(t, "e2e verified CA")
	h.addVerifiedCA(t, "e2e-verified", verified, verifiedFile)
	unverified, unverifiedFile := rootCA(t, "e2e unverified CA")
	h.cli(t, nil, "ca", "add", "e2e-unverified", unverifiedFile)
	var cas json.RawMessage
	h.cli(t, &cas, "ca", "list")
	for _, name := range []string{"e2e-verified", "e2e-unverified"} {
		if !strings.Contains(string(cas), name) {
			t.Fatalf("ca list does not show %s: %s", name, cas)
		}
	}
	h.createDevice(t, "ca-dev", "--auth", "ca")
	h.createDevice(t, "ca-dev-unverified", "--auth", "ca")

	thumbprintCases := []struct {
		name, transport string
		thumb           func(certFiles) string
		slot            string
	}{
		{"ok/sha256-mqtt", "mqtt", sha256Thumb, "--primary-thumbprint"},
		{"ok/sha256-mqttws", "mqttws", sha256Thumb, "--primary-thumbprint"},
		{"ok/sha1-mqtt", "mqtt", sha1Thumb, "--primary-thumbprint"},
		{"ok/sha1-mqttws", "mqttws", sha1Thumb, "--primary-thumbprint"},
		{"ok/sha256-secondary-slot", "mqtt", sha256Thumb, "--secondary-thumbprint"},
		{"ok/sha1-lower-case", "mqtt", func(f certFiles) string { return strings.ToLower(sha1Thumb(f)) }, "--primary-thumbprint"},
	}
	for _, tc := range thumbprintCases {
		t.Run("thumbprint/"+tc.name, func(t *testing.T) {
			t.Parallel()
			id := "tp-" + strings.TrimPrefix(tc.name, "ok/")
			cert := selfSigned(t, id)
			flags := []string{"--auth", "selfsigned", tc.slot, tc.thumb(cert)}
			if tc.slot == "--secondary-thumbprint" {
				flags = append(flags, "--primary-thumbprint", sha256Thumb(selfSigned(t, id)))
			}
			d := h.createDevice(t, id, flags...)
			if d.Authentication.Type != "selfSigned" {
				t.Fatalf("device create --auth selfsigned: authentication.type %q, want selfSigned", d.Authentication.Type)
			}
			wantSent(t, h.connect(t, tc.transport, h.x509ConnString(id), cert.flags()...), 1)
		})
	}
	t.Run("thumbprint/fail/other-certificate", func(t *testing.T) {
		t.Parallel()
		registered, presented := selfSigned(t, "tp-mismatch"), selfSigned(t, "tp-mismatch")
		h.createDevice(t, "tp-mismatch", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(registered))
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("tp-mismatch"), presented.flags()...))
	})
	t.Run("thumbprint/fail/expired-certificate", func(t *testing.T) {
		// The hub checks a thumbprint certificate's validity period, nothing
		// else about it (reference §5); this one expired an hour ago.
		t.Parallel()
		kp, err := pki.SelfSignedClient("tp-expired", expiredOptions())
		if err != nil {
			t.Fatal(err)
		}
		cert := writeCert(t, "tp-expired", kp)
		h.createDevice(t, "tp-expired", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert))
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("tp-expired"), cert.flags()...))
	})
	t.Run("thumbprint/fail/no-certificate", func(t *testing.T) {
		t.Parallel()
		cert := selfSigned(t, "tp-nocert")
		h.createDevice(t, "tp-nocert", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert))
		// A SAS connection string for a selfSigned device: the registered type decides.
		cs := "HostName=" + h.Name + ";DeviceId=tp-nocert;SharedAccessKey=" + randomKey(t)
		wantRefused(t, h.connect(t, "mqtt", cs))
	})

	t.Run("ca/ok/mqtt", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev"), append(issue(t, verified, "ca-dev").flags(), "--send", "2")...), 2)
	})
	t.Run("ca/ok/mqtt-via-intermediate", func(t *testing.T) {
		// The device sends its leaf and the intermediate; the hub has the root.
		t.Parallel()
		inter, err := verified.IssueIntermediate("e2e intermediate", pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h.createDevice(t, "ca-dev-inter", "--auth", "ca")
		cert := issue(t, inter, "ca-dev-inter", inter)
		wantSent(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev-inter"), cert.flags()...), 1)
	})
	t.Run("ca/ok/added-verified", func(t *testing.T) {
		// `ca add --verified`: the operator vouches for possession at upload.
		t.Parallel()
		ca, caFile := rootCA(t, "e2e vouched CA")
		h.cli(t, nil, "ca", "add", "e2e-vouched", caFile, "--verified")
		h.createDevice(t, "ca-dev-vouched", "--auth", "ca")
		wantSent(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev-vouched"), issue(t, ca, "ca-dev-vouched").flags()...), 1)
	})
	t.Run("ca/fail/expired-leaf", func(t *testing.T) {
		t.Parallel()
		kp, err := verified.IssueClient("ca-dev", expiredOptions())
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev"), writeCert(t, "leaf", kp).flags()...))
	})
	t.Run("ca/fail/unverified-ca", func(t *testing.T) {
		t.Parallel()
		cert := issue(t, unverified, "ca-dev-unverified")
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev-unverified"), cert.flags()...))
	})
	t.Run("ca/fail/mqttws", func(t *testing.T) {
		// DESIGN rule 3: X.509 CA over WebSockets is refused.
		t.Parallel()
		wantRefused(t, h.connect(t, "mqttws", h.x509ConnString("ca-dev"), issue(t, verified, "ca-dev").flags()...))
	})
	t.Run("ca/fail/cn-is-another-device", func(t *testing.T) {
		t.Parallel()
		cert := issue(t, verified, "ca-dev-unverified")
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev"), cert.flags()...))
	})
	t.Run("ca/fail/unregistered-ca", func(t *testing.T) {
		t.Parallel()
		stranger, _ := rootCA(t, "e2e stranger CA")
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev"), issue(t, stranger, "ca-dev").flags()...))
	})
	t.Run("ca/fail/verify-with-wrong-proof", func(t *testing.T) {
		// Proof of possession must be the verification code signed by the
		// CA's own key: a leaf with the right CN from another CA is refused,
		// and the CA stays unverified.
		t.Parallel()
		ca, caFile := rootCA(t, "e2e pop CA")
		h.cli(t, nil, "ca", "add", "e2e-pop", caFile)
		var info caInfo
		h.cli(t, &info, "ca", "verification-code", "e2e-pop")
		other, _ := rootCA(t, "e2e other CA")
		forged := issue(t, other, info.VerificationCode)
		h.cliFails(t, "ca", "verify", "e2e-pop", "--cert", forged.Cert)
		h.createDevice(t, "ca-dev-pop", "--auth", "ca")
		wantRefused(t, h.connect(t, "mqtt", h.x509ConnString("ca-dev-pop"), issue(t, ca, "ca-dev-pop").flags()...))
	})
}

// expiredOptions is a validity window that ended an hour ago (beyond any
// clock-skew leeway).
func expiredOptions() pki.Options {
	return pki.Options{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 47 * time.Hour}
}
