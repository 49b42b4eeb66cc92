package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/internal/redistest"
	"github.com/hubgate/hubgate/registry"
)

// Two real `hubgate serve` nodes of one hub on one real redis-server
// (issue 3): what is written through node A is enforced on node B, live
// sessions follow, and a Redis outage is told apart from bad credentials.

const (
	ipNodeA = "127.0.0.2"
	ipNodeB = "127.0.0.3"
)

type cluster struct {
	redis *redistest.Server
	a, b  *hub
	api   *hubclient.Client // the registry REST API of node A
	roots *x509.CertPool
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{Persistence: true})
	a := startHubWith(t, "hub-multi", ipNodeA, "--redis-url", rs.URL(), "--node", "a")
	// Node B serves the same certificate (as behind one load balancer).
	b := startHubWith(t, "hub-multi", ipNodeB, "--redis-url", rs.URL(), "--node", "b",
		"--tls-cert", filepath.Join(a.DataDir, "server.pem"), "--tls-key", filepath.Join(a.DataDir, "server.key"))
	b.CAFile = a.CAFile
	if a.ConnStr != b.ConnStr {
		t.Fatal("the nodes of one hub disagree on the iothubowner key: policies are not shared")
	}
	api, err := hubclient.New(a.ConnStr, hubclient.Options{Address: a.addr(443), CAFile: a.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(a.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &cluster{redis: rs, a: a, b: b, api: api, roots: roots}
}

// mqttDevice is a Go MQTT 3.1.1 client of one device on one node.
type mqttDevice struct {
	cl   paho.Client
	lost chan error
}

// connect dials node h as device id with a fresh token; it returns the
// CONNACK code (0 = accepted) and, when accepted, the live client.
func (c *cluster) connect(t testing.TB, h *hub, id, key string) (*mqttDevice, byte) {
	t.Helper()
	d := &mqttDevice{lost: make(chan error, 1)}
	o := paho.NewClientOptions().AddBroker("ssl://" + h.addr(8883)).SetClientID(id).
		SetUsername(h.Name + "/" + id + "/?api-version=2021-04-12").
		SetPassword(sasToken(t, h.Name, id, key, time.Now().Add(time.Hour))).
		SetTLSConfig(&tls.Config{RootCAs: c.roots, ServerName: h.Name}).
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetProtocolVersion(4). // no silent retry as MQTT 3.1 after a refusal
		SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { d.lost <- err })
	d.cl = paho.NewClient(o)
	tok := d.cl.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatal("connect timed out")
	}
	rc := tok.(*paho.ConnectToken).ReturnCode()
	if tok.Error() != nil {
		if rc == 0 {
			t.Fatalf("connect to %s failed without a CONNACK: %v", h.IP, tok.Error())
		}
		return nil, rc
	}
	t.Cleanup(func() { d.cl.Disconnect(0) })
	return d, 0
}

func (c *cluster) mustConnect(t testing.TB, h *hub, id, key string) *mqttDevice {
	t.Helper()
	d, rc := c.connect(t, h, id, key)
	if rc != 0 {
		t.Fatalf("connect %s on %s: CONNACK %d, want 0", id, h.IP, rc)
	}
	return d
}

func (d *mqttDevice) waitClosed(t testing.TB, why string) {
	t.Helper()
	select {
	case <-d.lost:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: session still open after 15s", why)
	}
}

func (c *cluster) create(t testing.TB, id string) registry.Device {
	t.Helper()
	d, err := c.api.CreateDevice(t.Context(), registry.Device{DeviceID: id})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *cluster) update(t testing.TB, d registry.Device) registry.Device {
	t.Helper()
	var out registry.Device
	if err := c.api.Do(t.Context(), "PUT", hubclient.DevicePath(d.DeviceID), d.Etag, d, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTwoNodes(t *testing.T) {
	c := startCluster(t)
	key := func(d registry.Device) string { return d.Authentication.SymmetricKey.PrimaryKey }

	t.Run("ok/created-on-a-connects-on-b", func(t *testing.T) {
		d := c.create(t, "n-create")
		c.mustConnect(t, c.b, "n-create", key(d))
	})
	t.Run("fail/deleted-on-a-closed-and-refused-on-b", func(t *testing.T) {
		d := c.create(t, "n-delete")
		live := c.mustConnect(t, c.b, "n-delete", key(d))
		if err := c.api.DeleteDevice(t.Context(), "n-delete"); err != nil {
			t.Fatal(err)
		}
		live.waitClosed(t, "delete on A")
		if _, rc := c.connect(t, c.b, "n-delete", key(d)); rc != 5 {
			t.Fatalf("reconnect on B after delete on A: CONNACK %d, want 5", rc)
		}
	})
	t.Run("fail/disabled-on-a-closed-and-refused-on-b", func(t *testing.T) {
		d := c.create(t, "n-disable")
		live := c.mustConnect(t, c.b, "n-disable", key(d))
		d.Status = registry.StatusDisabled
		c.update(t, d)
		live.waitClosed(t, "disable on A")
		if _, rc := c.connect(t, c.b, "n-disable", key(d)); rc != 5 {
			t.Fatalf("reconnect on B after disable on A: CONNACK %d, want 5", rc)
		}
	})
	t.Run("fail/keys-rotated-on-a-closed-and-refused-on-b", func(t *testing.T) {
		d := c.create(t, "n-rotate")
		live := c.mustConnect(t, c.b, "n-rotate", key(d))
		old := key(d)
		d.Authentication.SymmetricKey = registry.SymmetricKey{PrimaryKey: randomKey(t), SecondaryKey: randomKey(t)}
		d = c.update(t, d)
		live.waitClosed(t, "key rotation on A")
		if _, rc := c.connect(t, c.b, "n-rotate", old); rc != 5 {
			t.Fatalf("old key on B after rotation on A: CONNACK %d, want 5", rc)
		}
		c.mustConnect(t, c.b, "n-rotate", key(d))
	})
	t.Run("ok/connect-on-a-closes-session-on-b", func(t *testing.T) {
		d := c.create(t, "n-move")
		onB := c.mustConnect(t, c.b, "n-move", key(d))
		onA := c.mustConnect(t, c.a, "n-move", key(d))
		onB.waitClosed(t, "the same device connected on A")
		if !onA.cl.IsConnectionOpen() {
			t.Fatal("the newer session on A was closed too")
		}
	})
}

// TestRedisOutage: Redis killed mid-run and restarted.
func TestRedisOutage(t *testing.T) {
	c := startCluster(t)
	cached := c.create(t, "o-cached")
	// Warm node B's cache for o-cached.
	first := c.mustConnect(t, c.b, "o-cached", cached.Authentication.SymmetricKey.PrimaryKey)
	first.cl.Disconnect(0)
	wrongKey := randomKey(t)

	c.redis.Kill()
	t.Run("ok/cached-device-still-connects", func(t *testing.T) {
		c.mustConnect(t, c.b, "o-cached", cached.Authentication.SymmetricKey.PrimaryKey)
	})
	t.Run("fail/cached-device-wrong-key-still-5", func(t *testing.T) {
		if _, rc := c.connect(t, c.b, "o-cached", wrongKey); rc != 5 {
			t.Fatalf("wrong key during outage: CONNACK %d, want 5", rc)
		}
	})
	t.Run("fail/unknown-device-gets-3-not-5", func(t *testing.T) {
		if _, rc := c.connect(t, c.b, "o-unknown", wrongKey); rc != 3 {
			t.Fatalf("unknown device during outage: CONNACK %d, want 3 (server unavailable)", rc)
		}
	})
	t.Run("fail/registry-write-503", func(t *testing.T) {
		_, err := c.api.CreateDevice(t.Context(), registry.Device{DeviceID: "o-new"})
		var he *hubclient.Error
		if !errors.As(err, &he) || he.Status != 503 {
			t.Fatalf("create during outage: %v, want 503", err)
		}
	})
	t.Run("fail/readyz-reports-redis", func(t *testing.T) {
		if code := getStatus(t, "http://"+c.b.addr(9090)+"/readyz"); code != 503 {
			t.Fatalf("/readyz during outage: %d, want 503", code)
		}
	})

	c.redis.Restart()
	// Full recovery without a restart of either node: a device created
	// after the outage connects on the other node.
	deadline := time.Now().Add(20 * time.Second)
	var fresh registry.Device
	for {
		var err error
		fresh, err = c.api.CreateDevice(t.Context(), registry.Device{DeviceID: "o-after"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry writes did not recover after Redis restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.mustConnect(t, c.b, "o-after", fresh.Authentication.SymmetricKey.PrimaryKey)
	if code := getStatus(t, "http://"+c.b.addr(9090)+"/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery: %d, want 200", code)
	}
	// The unknown device is still refused (now as unknown, 5).
	if _, rc := c.connect(t, c.b, "o-unknown", wrongKey); rc != 5 {
		t.Fatalf("unknown device after recovery: CONNACK %d, want 5", rc)
	}
}

func getStatus(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := newRequest(ctx, url)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func newRequest(ctx context.Context, url string) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
}
