package e2e

import (
	"strings"
	"testing"
	"time"
)

// Loopback address of the AMQP suite's hub (127.0.0.10–19 are taken).
const ipAMQP = "127.0.0.20"

// wantAMQPRefused requires the Node AMQP SDK's verdict for a refused
// device: UnauthorizedError (a 401 put-token answer, or a link detached
// with amqp:unauthorized-access), at open or at the first send (X.509
// devices attach their first link there), without a timeout.
func wantAMQPRefused(t *testing.T, r nodeResult) {
	t.Helper()
	if r.OK {
		t.Fatalf("want the hub to refuse the device, but it was admitted: %s", r)
	}
	if r.Error != "UnauthorizedError" {
		t.Fatalf("want UnauthorizedError, got %s", r)
	}
	if r.Stage != "open" && r.Stage != "send" {
		t.Fatalf("want the refusal at open or send, got stage %q: %s", r.Stage, r)
	}
}

// TestAMQPDevice: the official azure-iot-device-amqp SDK over AMQP (TLS
// 5671, no SASL, CBS put-token) and AMQP over WebSockets (AmqpWs on 443),
// with SAS and X.509; refusals reach it as UnauthorizedError; a short token
// lifetime is renewed on the live connection. rhea, an independent client,
// connects with SASL PLAIN and with ANONYMOUS + CBS.
func TestAMQPDevice(t *testing.T) {
	if !serveFlags.amqpAddr {
		t.Fatal("hubgate serve has no --amqp-addr")
	}
	t.Parallel()
	h := startHub(t, "hub-amqp", ipAMQP)

	t.Run("sas/ok/amqp", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "amqp", h.sasConnString(t, "amqp-sas"), "--send", "3"), 3)
	})
	t.Run("sas/ok/amqpws", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "amqpws", h.sasConnString(t, "amqpws-sas"), "--send", "3"), 3)
	})
	t.Run("sas/ok/hub-policy-key", func(t *testing.T) {
		t.Parallel()
		h.createDevice(t, "amqp-policy")
		cs := "HostName=" + h.Name + ";DeviceId=amqp-policy;SharedAccessKeyName=iothubowner;SharedAccessKey=" + keyFromConnString(t, h.ConnStr)
		wantSent(t, h.connect(t, "amqp", cs), 1)
	})
	t.Run("sas/ok/token-renewal", func(t *testing.T) {
		// 10 s tokens renewed 5 s before expiry (the hub's clock skew is
		// 5 min, so without renewal it would still hold; this proves the
		// renewals are accepted on the same connection, reference §4.3).
		t.Parallel()
		r := h.connect(t, "amqp", h.sasConnString(t, "amqp-renew"), "--token-ttl", "10", "--token-margin", "5", "--hold", "12000")
		wantSent(t, r, 2)
	})
	t.Run("sas/fail/wrong-key", func(t *testing.T) {
		t.Parallel()
		wantAMQPRefused(t, h.connect(t, "amqp", withKey(t, h.sasConnString(t, "amqp-wrongkey"), randomKey(t))))
	})
	t.Run("sas/fail/wrong-key-amqpws", func(t *testing.T) {
		t.Parallel()
		wantAMQPRefused(t, h.connect(t, "amqpws", withKey(t, h.sasConnString(t, "amqpws-wrongkey"), randomKey(t))))
	})
	t.Run("sas/fail/expired-token", func(t *testing.T) {
		t.Parallel()
		wantAMQPRefused(t, h.connect(t, "amqp", h.sasConnString(t, "amqp-expired"), "--sas-ttl", "-3600"))
	})
	t.Run("sas/fail/disabled", func(t *testing.T) {
		t.Parallel()
		cs := h.sasConnString(t, "amqp-disabled")
		h.cli(t, nil, "device", "disable", "amqp-disabled")
		wantAMQPRefused(t, h.connect(t, "amqp", cs))
	})
	t.Run("sas/fail/deleted", func(t *testing.T) {
		t.Parallel()
		cs := h.sasConnString(t, "amqp-deleted")
		h.cli(t, nil, "device", "delete", "amqp-deleted")
		wantAMQPRefused(t, h.connect(t, "amqp", cs))
	})

	t.Run("x509/ok/thumbprint-amqp", func(t *testing.T) {
		t.Parallel()
		cert := selfSigned(t, "amqp-tp")
		h.createDevice(t, "amqp-tp", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert))
		wantSent(t, h.connect(t, "amqp", h.x509ConnString("amqp-tp"), append(cert.flags(), "--send", "2")...), 2)
	})
	t.Run("x509/ok/thumbprint-amqpws", func(t *testing.T) {
		t.Parallel()
		cert := selfSigned(t, "amqpws-tp")
		h.createDevice(t, "amqpws-tp", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert))
		wantSent(t, h.connect(t, "amqpws", h.x509ConnString("amqpws-tp"), cert.flags()...), 1)
	})
	t.Run("x509/fail/other-certificate", func(t *testing.T) {
		t.Parallel()
		registered, presented := selfSigned(t, "amqp-tp-bad"), selfSigned(t, "amqp-tp-bad")
		h.createDevice(t, "amqp-tp-bad", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(registered))
		wantAMQPRefused(t, h.connect(t, "amqp", h.x509ConnString("amqp-tp-bad"), presented.flags()...))
	})
	t.Run("x509/ca", func(t *testing.T) {
		t.Parallel()
		ca, caFile := rootCA(t, "e2e amqp CA")
		h.addVerifiedCA(t, "e2e-amqp", ca, caFile)
		h.createDevice(t, "amqp-ca", "--auth", "ca")
		cert := issue(t, ca, "amqp-ca")
		wantSent(t, h.connect(t, "amqp", h.x509ConnString("amqp-ca"), cert.flags()...), 1)
		// DESIGN rule 3: X.509 CA over WebSockets is refused.
		wantAMQPRefused(t, h.connect(t, "amqpws", h.x509ConnString("amqp-ca"), cert.flags()...))
	})

	t.Run("rhea/ok/plain", func(t *testing.T) {
		t.Parallel()
		d := h.createDevice(t, "rhea-plain")
		tok := sasToken(t, h.Name, "rhea-plain", d.Authentication.SymmetricKey.PrimaryKey, time.Now().Add(time.Hour))
		r := h.node(t, "rhea.js", "--mode", "plain", "--host", h.Name, "--device", "rhea-plain", "--token", tok)
		wantSent(t, r, 1)
	})
	t.Run("rhea/ok/anonymous-cbs", func(t *testing.T) {
		t.Parallel()
		d := h.createDevice(t, "rhea-cbs")
		tok := sasToken(t, h.Name, "rhea-cbs", d.Authentication.SymmetricKey.PrimaryKey, time.Now().Add(time.Hour))
		r := h.node(t, "rhea.js", "--mode", "cbs", "--host", h.Name, "--device", "rhea-cbs", "--token", tok)
		wantSent(t, r, 1)
		if r.StatusCode != 200 {
			t.Fatalf("put-token status %d: %s", r.StatusCode, r)
		}
	})
	t.Run("rhea/fail/plain-wrong-key", func(t *testing.T) {
		t.Parallel()
		h.createDevice(t, "rhea-bad")
		tok := sasToken(t, h.Name, "rhea-bad", randomKey(t), time.Now().Add(time.Hour))
		r := h.node(t, "rhea.js", "--mode", "plain", "--host", h.Name, "--device", "rhea-bad", "--token", tok)
		if r.OK || r.Stage != "open" || !strings.Contains(r.String(), "\"ok\":false") {
			t.Fatalf("want a refusal at open, got %s", r)
		}
	})
}
