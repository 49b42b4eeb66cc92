package e2e

import (
	"strings"
	"testing"
)

// TestSASDevice: devices created with the admin CLI connect with the
// connection string the CLI hands out, over MQTT and MQTT over WebSockets,
// and every credential or identity refusal reaches the SDK as
// UnauthorizedError (CONNACK 5), at once, without retries.
func TestSASDevice(t *testing.T) {
	t.Parallel()
	h := startHub(t, "hub-sas", ipSAS)

	t.Run("ok/mqtt", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "mqtt", h.sasConnString(t, "sas-mqtt"), "--send", "3"), 3)
	})
	t.Run("ok/mqttws", func(t *testing.T) {
		t.Parallel()
		wantSent(t, h.connect(t, "mqttws", h.sasConnString(t, "sas-ws"), "--send", "3"), 3)
	})
	t.Run("ok/secondary-key", func(t *testing.T) {
		t.Parallel()
		d := h.createDevice(t, "sas-secondary")
		if d.Authentication.Type != "sas" || d.Authentication.SymmetricKey.PrimaryKey == "" || d.Authentication.SymmetricKey.SecondaryKey == "" {
			t.Fatalf("device create: want type sas with both keys generated, got %+v", d.Authentication)
		}
		cs := withKey(t, h.connString(t, "sas-secondary"), d.Authentication.SymmetricKey.SecondaryKey)
		wantSent(t, h.connect(t, "mqtt", cs), 1)
	})
	t.Run("ok/hub-policy-key", func(t *testing.T) {
		// DESIGN rule 1: a token for the device signed by a hub policy key
		// with DeviceConnect (iothubowner has every right). Node signs the
		// device URI with the policy key and adds skn (reference §2.4).
		t.Parallel()
		h.createDevice(t, "sas-policy")
		ownerKey := keyFromConnString(t, h.ConnStr)
		cs := "HostName=" + h.Name + ";DeviceId=sas-policy;SharedAccessKeyName=iothubowner;SharedAccessKey=" + ownerKey
		wantSent(t, h.connect(t, "mqtt", cs), 1)
	})
	t.Run("ok/sas-token-connection-string", func(t *testing.T) {
		// The control for fail/expired-token: the same kind of connection
		// string with a token that is still valid.
		t.Parallel()
		wantSent(t, h.connect(t, "mqtt", h.sasConnString(t, "sas-token"), "--sas-ttl", "3600"), 1)
	})

	t.Run("fail/wrong-key", func(t *testing.T) {
		t.Parallel()
		cs := withKey(t, h.sasConnString(t, "sas-wrongkey"), randomKey(t))
		wantRefused(t, h.connect(t, "mqtt", cs))
	})
	t.Run("fail/wrong-key-mqttws", func(t *testing.T) {
		t.Parallel()
		cs := withKey(t, h.sasConnString(t, "sas-wrongkey-ws"), randomKey(t))
		wantRefused(t, h.connect(t, "mqttws", cs))
	})
	t.Run("fail/expired-token", func(t *testing.T) {
		// Signed with the right key by the SDK's own SharedAccessSignature.create,
		// expired an hour ago (well past any clock-skew leeway).
		t.Parallel()
		wantRefused(t, h.connect(t, "mqtt", h.sasConnString(t, "sas-expired"), "--sas-ttl", "-3600"))
	})
	t.Run("fail/unknown-device", func(t *testing.T) {
		t.Parallel()
		cs := "HostName=" + h.Name + ";DeviceId=sas-nobody;SharedAccessKey=" + randomKey(t)
		wantRefused(t, h.connect(t, "mqtt", cs))
	})
	t.Run("fail/disabled-at-create", func(t *testing.T) {
		t.Parallel()
		cs := h.sasConnString(t, "sas-born-disabled", "--disabled")
		var d device
		h.cli(t, &d, "device", "get", "sas-born-disabled")
		if d.Status != "disabled" {
			t.Fatalf("device create --disabled: status %q, want disabled", d.Status)
		}
		wantRefused(t, h.connect(t, "mqtt", cs))
	})
	t.Run("fail/disabled-later", func(t *testing.T) {
		t.Parallel()
		cs := h.sasConnString(t, "sas-disabled")
		var d device
		h.cli(t, &d, "device", "disable", "sas-disabled")
		if d.Status != "disabled" {
			t.Fatalf("device disable: status %q, want disabled", d.Status)
		}
		wantRefused(t, h.connect(t, "mqttws", cs))
		h.cli(t, &d, "device", "enable", "sas-disabled")
		if d.Status != "enabled" {
			t.Fatalf("device enable: status %q, want enabled", d.Status)
		}
		wantSent(t, h.connect(t, "mqtt", cs), 1)
	})
	t.Run("fail/deleted", func(t *testing.T) {
		t.Parallel()
		cs := h.sasConnString(t, "sas-deleted")
		h.cli(t, nil, "device", "delete", "sas-deleted")
		if r := h.cliFails(t, "device", "get", "sas-deleted"); !saysNotFound(r.Stderr) {
			t.Errorf("device get of a deleted device: stderr %q, want it to say not found", r.Stderr)
		}
		wantRefused(t, h.connect(t, "mqtt", cs))
	})
}

// saysNotFound reports whether a CLI error names the missing device
// ("not found", "DeviceNotFound", ...).
func saysNotFound(stderr []byte) bool {
	return strings.Contains(strings.ReplaceAll(strings.ToLower(string(stderr)), " ", ""), "notfound")
}
