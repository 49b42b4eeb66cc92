package provisioning

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubgate/hubgate/authn"
)

// MQTT is the DPS MQTT head (reference §6.1): devices connect with
// username {idScope}/registrations/{registrationId}/api-version=..., a SAS
// password or a client certificate, subscribe to $dps/registrations/res/#,
// publish register and status requests, and get a JSON answer for every
// request on the response topic, written to that client only.
type MQTT struct {
	svc *Service
	log *slog.Logger
	srv *mqtt.Server

	// ConnectTimeout bounds the TLS handshake and CONNECT.
	connectTimeout time.Duration

	cmu     sync.Mutex // guards clients
	clients map[*mqtt.Client]Credential

	mu     sync.Mutex // guards closed, lns
	closed bool
	lns    []net.Listener
	wg     sync.WaitGroup // accept loops and request handlers
}

const (
	listenerTLS = "dps-mqtt-tls"
	listenerWS  = "dps-mqtt-ws"
)

// NewMQTT builds the DPS MQTT head; give it connections with Serve or Accept.
func NewMQTT(svc *Service, log *slog.Logger) (*MQTT, error) {
	if log == nil {
		log = slog.Default()
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1                   // QoS 2 subscriptions are granted 1 [docs]
	caps.RetainAvailable = 0              // nothing is retained
	caps.MaximumPacketSize = 64 << 10     // a register body with a payload is small
	caps.MaximumSessionExpiryInterval = 0 // DPS ignores persistent sessions [reference §6.1]
	srv := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		Logger:                   log.With("component", "dps-mochi"),
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 1024,
		SysTopicResendInterval:   3600,
	})
	m := &MQTT{svc: svc, log: log, srv: srv, connectTimeout: 10 * time.Second, clients: map[*mqtt.Client]Credential{}}
	if err := srv.AddHook(&dpsHook{m: m}, nil); err != nil {
		return nil, err
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return m, nil
}

// Serve accepts TLS connections (tls.NewListener) from ln until it is closed.
func (m *MQTT) Serve(ln net.Listener) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return net.ErrClosed
	}
	m.lns = append(m.lns, ln)
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			_ = c.SetDeadline(time.Now().Add(m.connectTimeout))
			if tc, ok := c.(*tls.Conn); ok {
				ctx, cancel := context.WithTimeout(context.Background(), m.connectTimeout)
				err := tc.HandshakeContext(ctx)
				cancel()
				if err != nil {
					_ = c.Close()
					return
				}
			}
			m.Accept(c, authn.TransportTLS)
		}()
	}
}

// Accept runs one connection to its end (the WebSocket handler calls it).
func (m *MQTT) Accept(c net.Conn, transport authn.Transport) {
	_ = c.SetDeadline(time.Now().Add(m.connectTimeout))
	l := listenerTLS
	if transport == authn.TransportWebSocket {
		l = listenerWS
	}
	_ = m.srv.EstablishConnection(l, c)
}

// Shutdown stops accepting and disconnects every client.
func (m *MQTT) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	for _, ln := range m.lns {
		_ = ln.Close()
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { _ = m.srv.Close(); m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type dpsHook struct {
	mqtt.HookBase
	m *MQTT
}

func (h *dpsHook) ID() string { return "hubgate-dps" }

func (h *dpsHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect, mqtt.OnPublish}, []byte{b})
}

// OnConnect attests the device. A disabled enrollment is admitted so that
// the register request can answer it with a JSON error the SDK reports.
func (h *dpsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	m := h.m
	u, err := ParseUsername(string(cl.Properties.Username))
	if err == nil && cl.ID != u.RegistrationID {
		err = errClientID
	}
	var cred Credential
	if err == nil {
		cred = Credential{IDScope: u.IDScope, RegistrationID: u.RegistrationID}
		if pk.Connect.PasswordFlag {
			cred.Token = string(pk.Connect.Password)
		} else {
			cred.PeerCertificates = peerCertificates(cl.Net.Conn)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = m.svc.attest(ctx, cred)
		cancel()
		if errors.Is(err, ErrDisabled) {
			err = nil
		}
	}
	if err != nil {
		code := packets.ErrNotAuthorized
		if errors.Is(err, ErrUnavailable) {
			code = packets.ErrServerUnavailable
		} else if cl.Properties.ProtocolVersion < 5 {
			code = packets.ErrBadUsernameOrPassword // mochi maps it to v3 return code 5, as the hub head does
		}
		m.log.Info("dps connect refused", "registration_id", cl.ID, "remote", cl.Net.Remote, "reason", reasonOf(err), "error", err)
		_ = m.srv.SendConnack(cl, code, false, nil)
		return code
	}
	m.cmu.Lock()
	m.clients[cl] = cred
	m.cmu.Unlock()
	return nil
}

var errClientID = errors.New("provisioning: MQTT client id is not the registration id")

func (h *dpsHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	h.m.cmu.Lock()
	defer h.m.cmu.Unlock()
	_, ok := h.m.clients[cl]
	return ok
}

func (h *dpsHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		_, err := ParseTopic(topic)
		return err == nil
	}
	return topic == topicResponsesAll
}

func (h *dpsHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.m.cmu.Lock()
	delete(h.m.clients, cl)
	h.m.cmu.Unlock()
}

// OnPublish takes each request off the bus (it is acknowledged, never
// routed) and answers it in its own goroutine.
func (h *dpsHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	m := h.m
	req, err := ParseTopic(pk.TopicName)
	if err != nil {
		return pk, packets.ErrRejectPacket
	}
	m.cmu.Lock()
	cred, ok := m.clients[cl]
	m.cmu.Unlock()
	if !ok {
		return pk, packets.ErrRejectPacket
	}
	body := bytes.Clone(pk.Payload)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		status, retry, resp := m.handle(cred, req, body)
		out := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish},
			TopicName:   responseTopic(status, req.RID, retry),
			Payload:     resp,
		}
		if err := cl.WritePacket(out); err != nil {
			m.log.Debug("dps response not delivered", "registration_id", cred.RegistrationID, "error", err)
		}
	}()
	return pk, packets.CodeSuccessIgnore
}

// handle answers one request: HTTP-like status, retry-after seconds (0:
// none) and the JSON body (every answer has one: Node parses it first).
func (m *MQTT) handle(cred Credential, req Request, body []byte) (int, int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	retry := max(int(m.svc.RetryAfter()/time.Second), 1)
	switch req.Kind {
	case RequestRegister:
		var rb registerBody
		if len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &rb) != nil {
			return errorBody(400, codeInvalid, "the request body is not JSON")
		}
		if rb.RegistrationID != "" && rb.RegistrationID != cred.RegistrationID {
			return errorBody(400, codeInvalid, "registrationId in the body differs from the connection's")
		}
		st, err := m.svc.Register(ctx, cred, rb.Payload)
		if err != nil {
			return registerError(m.log, cred.RegistrationID, "mqtt", err)
		}
		b, _ := json.Marshal(st)
		return 202, retry, b
	default:
		st, err := m.svc.Operation(ctx, cred.RegistrationID, req.OperationID, 0)
		if err != nil {
			return errorBody(404, 404000, "unknown operation id")
		}
		b, _ := json.Marshal(st)
		if st.Status == RegAssigning {
			return 202, retry, b
		}
		return 200, 0, b
	}
}

type registerBody struct {
	RegistrationID string          `json:"registrationId"`
	Payload        json.RawMessage `json:"payload,omitempty"`
}

// serviceError is the ProvisioningServiceErrorDetails body (reference §6.3).
type serviceError struct {
	ErrorCode    int    `json:"errorCode"`
	TrackingID   string `json:"trackingId"`
	Message      string `json:"message"`
	TimestampUTC string `json:"timestampUtc"`
}

func errorBody(status, code int, msg string) (int, int, []byte) {
	b, _ := json.Marshal(serviceError{ErrorCode: code, TrackingID: uuid(), Message: msg,
		TimestampUTC: time.Now().UTC().Format(time.RFC3339Nano)})
	return status, 0, b
}

// registerError maps an attestation failure onto the device's answer: 401
// with a clear message; the reason is logged, not told.
func registerError(log *slog.Logger, regID, transport string, err error) (int, int, []byte) {
	log.Info("registration refused", "registration_id", regID, "transport", transport, "reason", reasonOf(err), "error", err)
	switch {
	case errors.Is(err, ErrDisabled):
		return errorBody(401, 401002, "the enrollment for this device is disabled")
	case errors.Is(err, ErrUnauthorized):
		return errorBody(401, 401002, "unauthorized: attestation failed")
	case errors.Is(err, ErrUnavailable):
		return errorBody(503, 503000, "the provisioning service is unavailable; retry later")
	}
	return errorBody(500, codeInternal, "internal error")
}

func peerCertificates(c net.Conn) []*x509.Certificate {
	if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return s.ConnectionState().PeerCertificates
	}
	return nil
}
