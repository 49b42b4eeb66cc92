package e2e

import (
	"encoding/json"
	"testing"
)

// TestRegistrySDK drives the hub's registry REST API with the official
// azure-iothub Registry and checks that what it writes governs device access.
func TestRegistrySDK(t *testing.T) {
	t.Parallel()
	h := startHub(t, "hub-registry", ipRegistry)

	// createSAS creates a device through the SDK and returns its connection
	// string, built from the keys the hub generated.
	createSAS := func(t *testing.T, id string) string {
		t.Helper()
		r := h.registry(t, "create", id)
		if !r.OK {
			t.Fatalf("Registry.create %s: %s", id, r)
		}
		var d device
		if err := json.Unmarshal(r.Result, &d); err != nil {
			t.Fatalf("Registry.create %s: result is not a device: %v\n%s", id, err, r)
		}
		if d.DeviceID != id || d.Etag == "" || d.Authentication.Type != "sas" || d.Authentication.SymmetricKey.PrimaryKey == "" {
			t.Fatalf("Registry.create %s: want the device with an etag and generated keys, got %s", id, r)
		}
		return "HostName=" + h.Name + ";DeviceId=" + id + ";SharedAccessKey=" + d.Authentication.SymmetricKey.PrimaryKey
	}

	t.Run("ok/create-connect-delete-refused", func(t *testing.T) {
		t.Parallel()
		cs := createSAS(t, "reg-lifecycle")
		wantSent(t, h.connect(t, "mqtt", cs), 1)
		if r := h.registry(t, "delete", "reg-lifecycle"); !r.OK {
			t.Fatalf("Registry.delete: %s", r)
		}
		wantRefused(t, h.connect(t, "mqtt", cs))
	})
	t.Run("ok/disable-enable", func(t *testing.T) {
		t.Parallel()
		cs := createSAS(t, "reg-status")
		if r := h.registry(t, "update-status", "reg-status", "disabled"); !r.OK {
			t.Fatalf("Registry.update status=disabled: %s", r)
		}
		wantRefused(t, h.connect(t, "mqtt", cs))
		if r := h.registry(t, "update-status", "reg-status", "enabled"); !r.OK {
			t.Fatalf("Registry.update status=enabled: %s", r)
		}
		// Registry.update sends the device back with its keys: they must still work.
		wantSent(t, h.connect(t, "mqtt", cs), 1)
	})
	t.Run("ok/selfsigned-created-by-sdk", func(t *testing.T) {
		t.Parallel()
		cert := selfSigned(t, "reg-thumb")
		if r := h.registry(t, "create", "reg-thumb", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert)); !r.OK {
			t.Fatalf("Registry.create selfSigned: %s", r)
		}
		wantSent(t, h.connect(t, "mqttws", h.x509ConnString("reg-thumb"), cert.flags()...), 1)
	})
	t.Run("ok/id-with-special-characters", func(t *testing.T) {
		// Ids may hold - . + % _ # * ? ! ( ) , = @ $ ' (reference §7.3). The
		// SDKs escape them differently per place: encodeURIComponent in the
		// REST path, the strict variant (with '*' as lower-case %2a) in the
		// SAS sr, raw in the MQTT username and topic (reference §2.3).
		t.Parallel()
		id := "e2e.dev_(1)*@site!$,'"
		wantSent(t, h.connect(t, "mqtt", createSAS(t, id)), 1)
		wantSent(t, h.connect(t, "mqttws", createSAS(t, id+"-ws")), 1)
	})
	t.Run("ok/get", func(t *testing.T) {
		t.Parallel()
		createSAS(t, "reg-get")
		r := h.registry(t, "get", "reg-get")
		var d device
		if !r.OK || json.Unmarshal(r.Result, &d) != nil || d.DeviceID != "reg-get" || d.Status != "enabled" {
			t.Fatalf("Registry.get: want the enabled device reg-get, got %s", r)
		}
	})
	t.Run("ok/list", func(t *testing.T) {
		// azure-iothub's Registry.list sends GET /devices/?api-version=...
		// (devicePath('') has the trailing slash), not /devices.
		t.Parallel()
		createSAS(t, "reg-listed")
		r := h.registry(t, "list")
		var list []device
		if !r.OK || json.Unmarshal(r.Result, &list) != nil {
			t.Fatalf("Registry.list: want a JSON array of devices, got %s", r)
		}
		found := false
		for _, d := range list {
			found = found || d.DeviceID == "reg-listed"
		}
		if !found {
			t.Fatalf("Registry.list does not contain reg-listed: %s", r)
		}
	})
	t.Run("fail/get-missing", func(t *testing.T) {
		t.Parallel()
		if r := h.registry(t, "get", "reg-nobody"); r.OK || r.Error != "DeviceNotFoundError" {
			t.Fatalf("Registry.get of a missing device: want DeviceNotFoundError, got %s", r)
		}
	})
	t.Run("fail/create-twice", func(t *testing.T) {
		t.Parallel()
		createSAS(t, "reg-twice")
		if r := h.registry(t, "create", "reg-twice"); r.OK || r.Error != "DeviceAlreadyExistsError" {
			t.Fatalf("second Registry.create: want DeviceAlreadyExistsError, got %s", r)
		}
	})
	t.Run("fail/delete-missing", func(t *testing.T) {
		t.Parallel()
		if r := h.registry(t, "delete", "reg-nobody"); r.OK || r.Error != "DeviceNotFoundError" {
			t.Fatalf("Registry.delete of a missing device: want DeviceNotFoundError, got %s", r)
		}
	})
}
