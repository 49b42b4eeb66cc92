package amqp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/broker/amqp"
	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

const hubName = "hub.hubgate.test"

// hub is a real AMQP head (TLS listener and in-memory pipes) over a real
// registry, with a real MQTT head as its bus.
type hub struct {
	reg     *registry.Registry
	store   *registry.FileStore
	mqtt    *broker.MQTT
	head    *amqp.Head
	tlsAddr string
	roots   *x509.CertPool
	devSrc  *switchable
}

type switchable struct {
	mu  sync.Mutex // guards src
	src broker.DeviceSource
}

func (s *switchable) Device(ctx context.Context, id string) (registry.Device, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	return src.Device(ctx, id)
}

func (s *switchable) set(src broker.DeviceSource) { s.mu.Lock(); s.src = src; s.mu.Unlock() }

type nopInvalidator struct{}

func (nopInvalidator) Apply(registry.Change) {}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startHub(t testing.TB, clockSkew time.Duration, cfg amqp.Config) *hub {
	t.Helper()
	ctx := context.Background()
	store, err := registry.OpenFileStore(t.TempDir() + "/registry.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg, err := registry.New(ctx, store, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{reg: reg, store: store, devSrc: &switchable{src: reg}}
	if clockSkew == 0 {
		clockSkew = 5 * time.Minute
	}
	auth, err := authn.New(authn.Config{HostNames: []string{hubName}, ClockSkew: clockSkew, Devices: h.devSrc, Policies: reg, CAs: reg})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if h.mqtt, err = broker.NewMQTT(broker.Config{Auth: auth, Devices: h.devSrc, Logger: log}); err != nil {
		t.Fatal(err)
	}
	cfg.Auth, cfg.Devices, cfg.Bus, cfg.HostNames, cfg.Logger = auth, h.devSrc, h.mqtt, []string{hubName}, log
	if h.head, err = amqp.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Follow(reg, nopInvalidator{}, reg, h.head))

	serverCA, err := pki.NewRootCA("test server CA", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serverCA.IssueServer([]string{hubName, "127.0.0.1"}, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.roots = x509.NewCertPool()
	h.roots.AddCert(serverCA.Cert)
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}},
		ClientAuth:   tls.RequestClientCert,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.tlsAddr = ln.Addr().String()
	go func() { _ = h.head.Serve(tls.NewListener(ln, tlsConf)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.head.Shutdown(ctx); err != nil {
			t.Errorf("amqp shutdown: %v", err)
		}
		_ = h.mqtt.Shutdown(ctx)
	})
	return h
}

func (h *hub) createSAS(t testing.TB, id string) registry.Device {
	t.Helper()
	d, err := h.reg.CreateDevice(context.Background(), registry.Device{DeviceID: id})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deviceToken(id, key string, ttl time.Duration) string {
	return authn.Sign(authn.EncodeResource(hubName+"/devices/"+id), key, time.Now().Add(ttl), "")
}

// pipe connects a go-amqp client to the head through net.Pipe.
func (h *hub) pipe(t testing.TB, opts *goamqp.ConnOptions) (*goamqp.Conn, error) {
	t.Helper()
	srv, cli := net.Pipe()
	go h.head.Accept(srv, authn.TransportTLS)
	return newConn(t, cli, opts)
}

// dialTLS connects over the TLS listener, with a client certificate if given.
func (h *hub) dialTLS(t testing.TB, cert *pki.KeyPair, opts *goamqp.ConnOptions) (*goamqp.Conn, error) {
	t.Helper()
	tc := &tls.Config{RootCAs: h.roots, ServerName: hubName}
	if cert != nil {
		tc.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Cert.Raw}, PrivateKey: cert.Key}}
	}
	nc, err := tls.Dial("tcp", h.tlsAddr, tc)
	if err != nil {
		t.Fatal(err)
	}
	return newConn(t, nc, opts)
}

func newConn(t testing.TB, nc net.Conn, opts *goamqp.ConnOptions) (*goamqp.Conn, error) {
	if opts == nil {
		opts = &goamqp.ConnOptions{}
	}
	if opts.HostName == "" {
		opts.HostName = hubName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := goamqp.NewConn(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

func mustSession(t testing.TB, c *goamqp.Conn) *goamqp.Session {
	t.Helper()
	s, err := c.NewSession(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cbs is a client's CBS link pair.
type cbs struct {
	snd *goamqp.Sender
	rcv *goamqp.Receiver
}

func newCBS(t testing.TB, s *goamqp.Session) *cbs {
	t.Helper()
	snd, err := s.NewSender(context.Background(), "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := s.NewReceiver(context.Background(), "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cbs{snd, rcv}
}

// putToken sends a put-token request as Node does (reference §4.3) and
// returns the answer's status code after checking the correlation id.
func (c *cbs) putToken(t testing.TB, msgID any, token, audience string) int32 {
	t.Helper()
	m := &goamqp.Message{
		Properties:            &goamqp.MessageProperties{MessageID: msgID, To: ptr("$cbs"), ReplyTo: ptr("cbs")},
		ApplicationProperties: map[string]any{"operation": "put-token", "type": "servicebus.windows.net:sastoken", "name": audience},
		Value:                 token,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.snd.Send(ctx, m, nil); err != nil {
		t.Fatalf("put-token send: %v", err)
	}
	r, err := c.rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("put-token answer: %v", err)
	}
	_ = c.rcv.AcceptMessage(ctx, r)
	if r.Properties == nil || r.Properties.CorrelationID != msgID {
		t.Fatalf("correlation-id %#v, want %#v (same AMQP type)", r.Properties.CorrelationID, msgID)
	}
	code, ok := r.ApplicationProperties["status-code"].(int32)
	if !ok {
		t.Fatalf("status-code %#v is not an AMQP int", r.ApplicationProperties["status-code"])
	}
	if _, ok := r.ApplicationProperties["status-description"].(string); !ok {
		t.Fatal("no status-description")
	}
	return code
}

func ptr[T any](v T) *T { return &v }

func eventsAddr(id string) string { return "/devices/" + id + "/messages/events" }

// subscribe collects bus messages on filter.
func (h *hub) subscribe(t testing.TB, filter string) <-chan [2]string {
	t.Helper()
	ch := make(chan [2]string, 100)
	cancel, err := h.mqtt.Subscribe(filter, func(topic string, payload []byte) { ch <- [2]string{topic, string(payload)} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return ch
}

func recv(t testing.TB, ch <-chan [2]string) [2]string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the bus")
	}
	return [2]string{}
}

func wantCondition(t testing.TB, err error, cond goamqp.ErrCond) {
	t.Helper()
	var ae *goamqp.Error
	var le *goamqp.LinkError
	var ce *goamqp.ConnError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &le) && le.RemoteErr != nil:
		ae = le.RemoteErr
	case errors.As(err, &ce) && ce.RemoteErr != nil:
		ae = ce.RemoteErr
	default:
		t.Fatalf("want %s, got %v", cond, err)
	}
	if ae.Condition != cond {
		t.Fatalf("want %s, got %s (%s)", cond, ae.Condition, ae.Description)
	}
}

func send(t testing.TB, s *goamqp.Session, addr string, m *goamqp.Message) error {
	t.Helper()
	snd, err := s.NewSender(context.Background(), addr, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return snd.Send(ctx, m, nil)
}

// TestPlain: SASL PLAIN with device, module and hub-policy usernames.
func TestPlain(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	d := h.createSAS(t, "plain1")
	h.createSAS(t, "plain2")
	events := h.subscribe(t, "devices/+/messages/events/#")
	owner, _ := h.reg.Policy("iothubowner")
	policyToken := authn.Sign(authn.EncodeResource(hubName), owner.PrimaryKey, time.Now().Add(time.Hour), "iothubowner")
	cases := []struct {
		name, user, pass string
		ok               bool
	}{
		{"ok/device", "plain1@sas.hub", deviceToken("plain1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour), true},
		{"ok/hub-name-any-case", "plain1@sas.HUB", deviceToken("plain1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour), true},
		{"ok/policy", "iothubowner@sas.root.hub", policyToken, true},
		{"fail/wrong-key", "plain1@sas.hub", deviceToken("plain1", d.Authentication.SymmetricKey.SecondaryKey+"x", time.Hour), false},
		{"fail/expired", "plain1@sas.hub", deviceToken("plain1", d.Authentication.SymmetricKey.PrimaryKey, -time.Hour), false},
		{"fail/other-hub", "plain1@sas.otherhub", deviceToken("plain1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour), false},
		{"fail/module", "plain1/modules/m1@sas.hub", deviceToken("plain1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour), false},
		{"fail/malformed-username", "plain1", "x", false},
		{"fail/policy-name-mismatch", "service@sas.root.hub", policyToken, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.pipe(t, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain(tc.user, tc.pass)})
			if !tc.ok {
				if err == nil {
					t.Fatal("admitted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := mustSession(t, c)
			if err := send(t, s, eventsAddr("plain1"), goamqp.NewMessage([]byte(tc.name))); err != nil {
				t.Fatal(err)
			}
			if m := recv(t, events); m[1] != tc.name || !strings.HasPrefix(m[0], "devices/plain1/messages/events/") {
				t.Fatalf("bus got %v", m)
			}
			// A device username admits only that device.
			err = send(t, s, eventsAddr("plain2"), goamqp.NewMessage([]byte("x")))
			if strings.HasPrefix(tc.name, "ok/device") || strings.HasPrefix(tc.name, "ok/hub-name") {
				wantCondition(t, err, goamqp.ErrCondUnauthorizedAccess)
			} else if err != nil {
				t.Fatalf("policy connection, other device: %v", err)
			}
		})
	}
}

// TestCBS: ANONYMOUS (and no SASL, as Node) then put-token: typed
// correlation ids, int status codes, 401 for bad tokens, links refused
// without a token and for other devices; renewal on the same connection.
func TestCBS(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	d := h.createSAS(t, "cbs1")
	h.createSAS(t, "cbs2")
	key := d.Authentication.SymmetricKey.PrimaryKey
	events := h.subscribe(t, "devices/cbs1/messages/events/#")
	aud := authn.EncodeResource(hubName + "/devices/cbs1")
	for _, sasl := range []struct {
		name string
		t    goamqp.SASLType
	}{{"anonymous", goamqp.SASLTypeAnonymous()}, {"no-sasl", nil}} {
		t.Run("ok/"+sasl.name, func(t *testing.T) {
			c, err := h.pipe(t, &goamqp.ConnOptions{SASLType: sasl.t})
			if err != nil {
				t.Fatal(err)
			}
			s := mustSession(t, c)
			// Before any token: refused.
			wantCondition(t, send(t, s, eventsAddr("cbs1"), goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
			cb := newCBS(t, s)
			if code := cb.putToken(t, "7c1a4b36-5b53-4a1b-9c1e-1a2b3c4d5e6f", deviceToken("cbs1", key, time.Hour), aud); code != 200 {
				t.Fatalf("put-token: %d", code)
			}
			if code := cb.putToken(t, uint64(42), deviceToken("cbs1", key, 2*time.Hour), aud); code != 200 {
				t.Fatalf("renewal put-token (ulong id): %d", code)
			}
			if code := cb.putToken(t, goamqp.UUID{1, 2, 3}, deviceToken("cbs1", key, 2*time.Hour), aud); code != 200 {
				t.Fatalf("put-token (uuid id): %d", code)
			}
			m := &goamqp.Message{
				Data:                  [][]byte{[]byte(`{"t":1}`)},
				Properties:            &goamqp.MessageProperties{MessageID: "mid 1", CorrelationID: "cid/1", ContentType: ptr("application/json"), ContentEncoding: ptr("utf-8")},
				ApplicationProperties: map[string]any{"k 1": "v/1"},
			}
			if err := send(t, s, eventsAddr("cbs1"), m); err != nil {
				t.Fatal(err)
			}
			got := recv(t, events)
			if got[1] != `{"t":1}` {
				t.Fatalf("payload %q", got[1])
			}
			for _, want := range []string{"%24.mid=mid%201", "%24.cid=cid%2F1", "%24.ct=application%2Fjson", "%24.ce=utf-8", "k%201=v%2F1"} {
				if !strings.Contains(got[0], want) {
					t.Errorf("topic %q lacks %q", got[0], want)
				}
			}
			wantCondition(t, send(t, s, eventsAddr("cbs2"), goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
			wantCondition(t, send(t, s, "/devices/cbs1/modules/m/messages/events", goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
		})
	}
	t.Run("fail/bad-token", func(t *testing.T) {
		c, err := h.pipe(t, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()})
		if err != nil {
			t.Fatal(err)
		}
		s := mustSession(t, c)
		cb := newCBS(t, s)
		for _, tok := range []string{
			deviceToken("cbs1", "AAAA"+key[4:], time.Hour),
			deviceToken("cbs1", key, -time.Hour),
			deviceToken("nobody", key, time.Hour),
			"SharedAccessSignature garbage",
		} {
			if code := cb.putToken(t, "id", tok, aud); code != 401 {
				t.Fatalf("put-token %q: %d, want 401", tok[:30], code)
			}
		}
		wantCondition(t, send(t, s, eventsAddr("cbs1"), goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
	})
	t.Run("fail/registry-unavailable", func(t *testing.T) {
		c, err := h.pipe(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		cb := newCBS(t, mustSession(t, c))
		h.devSrc.set(downSource{})
		defer h.devSrc.set(h.reg)
		if code := cb.putToken(t, "id", deviceToken("cbs1", key, time.Hour), aud); code != 503 {
			t.Fatalf("registry down: %d, want 503 (never a credential failure)", code)
		}
	})
}

type downSource struct{}

func (downSource) Device(context.Context, string) (registry.Device, error) {
	return registry.Device{}, registry.ErrUnavailable
}

// TestC2D: a receiver on /devices/{id}/messages/devicebound gets what is
// published on the bus for the device, with the bag mapped to properties.
func TestC2D(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	d := h.createSAS(t, "c2d1")
	c, err := h.pipe(t, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("c2d1@sas.hub", deviceToken("c2d1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	r, err := mustSession(t, c).NewReceiver(context.Background(), "/devices/c2d1/messages/devicebound", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.mqtt.Publish("devices/c2d1/messages/devicebound/%24.mid=m1&%24.ct=text%2Fplain&iothub-ack=full&k=v%2F1", []byte("hello"), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.GetData()) != "hello" || m.Properties.MessageID != "m1" || *m.Properties.ContentType != "text/plain" ||
		m.ApplicationProperties["k"] != "v/1" || m.ApplicationProperties["iothub-ack"] != "full" {
		t.Fatalf("message %+v %+v %v", m.Properties, m.ApplicationProperties, string(m.GetData()))
	}
	if err := r.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// TestX509: over TLS with a client certificate and no SASL (Node) or SASL
// EXTERNAL, the link's device id and the certificate decide.
func TestX509(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	cert, err := pki.SelfSignedClient("x1", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, tp := authn.Thumbprints(cert.Cert.Raw)
	if _, err := h.reg.CreateDevice(context.Background(), registry.Device{DeviceID: "x1", Authentication: registry.Authentication{
		Type: registry.AuthSelfSigned, X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &tp}}}); err != nil {
		t.Fatal(err)
	}
	h.createSAS(t, "x2")
	events := h.subscribe(t, "devices/x1/messages/events/#")
	for _, tc := range []struct {
		name string
		sasl goamqp.SASLType
	}{{"ok/no-sasl", nil}, {"ok/external", goamqp.SASLTypeExternal("")}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.dialTLS(t, cert, &goamqp.ConnOptions{SASLType: tc.sasl})
			if err != nil {
				t.Fatal(err)
			}
			s := mustSession(t, c)
			if err := send(t, s, "amqps://"+hubName+"/devices/x1/messages/events", goamqp.NewMessage([]byte("x509"))); err != nil {
				t.Fatal(err)
			}
			if m := recv(t, events); m[1] != "x509" {
				t.Fatalf("bus got %v", m)
			}
			wantCondition(t, send(t, s, eventsAddr("x2"), goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
		})
	}
	t.Run("fail/other-certificate", func(t *testing.T) {
		other, _ := pki.SelfSignedClient("x1", pki.Options{})
		c, err := h.dialTLS(t, other, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantCondition(t, send(t, mustSession(t, c), eventsAddr("x1"), goamqp.NewMessage([]byte("x"))), goamqp.ErrCondUnauthorizedAccess)
	})
}

// TestRecheck: disabling a device closes its live AMQP connection.
func TestRecheck(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	d := h.createSAS(t, "rc1")
	c, err := h.pipe(t, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("rc1@sas.hub", deviceToken("rc1", d.Authentication.SymmetricKey.PrimaryKey, time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if err := send(t, mustSession(t, c), eventsAddr("rc1"), goamqp.NewMessage([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	d.Status = registry.StatusDisabled
	if _, err := h.reg.UpdateDevice(context.Background(), d, "*"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		wantCondition(t, c.Err(), goamqp.ErrCondUnauthorizedAccess)
	case <-time.After(10 * time.Second):
		t.Fatal("connection of a disabled device stays open")
	}
}

// TestTokenExpiry: a connection whose last token expires is closed.
func TestTokenExpiry(t *testing.T) {
	h := startHub(t, time.Millisecond, amqp.Config{})
	d := h.createSAS(t, "exp1")
	c, err := h.pipe(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := newCBS(t, mustSession(t, c))
	if code := cb.putToken(t, "1", deviceToken("exp1", d.Authentication.SymmetricKey.PrimaryKey, 2*time.Second), authn.EncodeResource(hubName+"/devices/exp1")); code != 200 {
		t.Fatalf("put-token: %d", code)
	}
	select {
	case <-c.Done():
		wantCondition(t, c.Err(), goamqp.ErrCondUnauthorizedAccess)
	case <-time.After(15 * time.Second):
		t.Fatal("connection outlived its token")
	}
}

// TestGarbageOverTLS: bytes that are not AMQP end the connection.
func TestGarbageOverTLS(t *testing.T) {
	h := startHub(t, 0, amqp.Config{})
	nc, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{RootCAs: h.roots, ServerName: hubName})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("AMQP\x00\x01\x00\x00\x00\x00\x00\x0c\x02\x00\x00\x00\xde\xad\xbe\xef"))
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(nc)
	if !strings.HasPrefix(string(b), "AMQP") || !strings.Contains(string(b), "amqp:decode-error") {
		t.Fatalf("answer %q, want header and close with amqp:decode-error", b)
	}
}
