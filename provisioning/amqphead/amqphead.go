// Package amqphead is the provisioning service's AMQP 1.0 head (reference
// §6.2), built on the hub's AMQP engine (broker/amqp/engine): SASL PLAIN
// with username {idScope}/registrations/{registrationId} and a DPS SAS
// token as password, or no SASL and a TLS client certificate (X.509); a
// receiver and a sender link on {idScope}/registrations/{registrationId};
// requests carry iotdps-operation-type (iotdps-register,
// iotdps-get-operationstatus with iotdps-operation-id) and a correlation-id;
// each answer goes back on the client's receiver link with the same
// correlation-id, a Data body holding the RegistrationOperationStatus JSON
// and, while assigning, an application property retry-after (seconds).
//
// It lives apart from package provisioning so that the service itself
// imports no AMQP code. May import: provisioning, broker/amqp/engine,
// broker/amqp/wire, github.com/Azure/go-amqp (message codec), authn.
package amqphead

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	amqpmsg "github.com/Azure/go-amqp"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/broker/amqp/engine"
	"github.com/hubgate/hubgate/broker/amqp/wire"
	"github.com/hubgate/hubgate/provisioning"
)

// Head accepts DPS AMQP connections.
type Head struct {
	svc *provisioning.Service
	log *slog.Logger
	// connectTimeout bounds TLS handshake, SASL and open.
	connectTimeout time.Duration

	acceptor *broker.Acceptor

	mu     sync.Mutex // guards closed
	closed bool
	wg     sync.WaitGroup // connections, request handlers
}

// New returns the head; give it connections with Serve or Accept.
func New(svc *provisioning.Service, log *slog.Logger) *Head {
	if log == nil {
		log = slog.Default()
	}
	h := &Head{svc: svc, log: log, connectTimeout: 10 * time.Second}
	m, _ := broker.NewConnMetrics(noop.NewMeterProvider().Meter(""), "dps-amqp") // the noop meter never fails
	h.acceptor = &broker.Acceptor{Timeout: h.connectTimeout, Metrics: m, Log: log, Accept: h.Accept}
	return h
}

// Serve accepts TLS connections (tls.NewListener) from ln until it is
// closed, with the hub heads' handshake deadline and admission.
func (h *Head) Serve(ln net.Listener) error { return h.acceptor.Serve(ln) }

// Accept runs one connection to its end.
func (h *Head) Accept(nc net.Conn, transport authn.Transport) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = nc.Close()
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	c := &conn{h: h, certs: broker.PeerCertificates(nc), transport: transport}
	c.ec = engine.NewConn(nc, engine.Config{ContainerID: "hubgate-dps", OpenTimeout: h.connectTimeout,
		MaxSessions: 2, MaxLinks: 4, MaxMessageSize: 64 << 10, Credit: 10}, c)
	_ = c.ec.Run()
}

// Shutdown stops accepting and waits for connections to end (they are
// short: a registration takes seconds).
func (h *Head) Shutdown(ctx context.Context) error {
	h.acceptor.Close()
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// conn is one device connection.
type conn struct {
	h         *Head
	ec        *engine.Conn
	certs     []*x509.Certificate
	transport authn.Transport

	mu     sync.Mutex // guards below
	scope  string     // from PLAIN, or from the first link
	regID  string
	token  string
	sender *engine.Link // our sending link: the client's receiver
}

func (c *conn) SASLMechanisms() []wire.Symbol {
	m := []wire.Symbol{wire.MechPlain}
	if len(c.certs) > 0 {
		m = append(m, wire.MechExternal, wire.MechAnonymous)
	}
	return m
}

func (c *conn) SASLInit(in *wire.SASLInit) uint8 {
	switch in.Mechanism {
	case wire.MechPlain:
		_, user, pass, ok := wire.ParsePlain(in.InitialResponse)
		scope, reg, found := strings.Cut(user, "/registrations/")
		if !ok || !found || scope == "" || reg == "" {
			return wire.SASLAuth
		}
		// Bad credentials end here (Node reports NotConnectedError); a
		// disabled enrollment is admitted and answered at the register
		// request with status "failed" (Node: ProvisioningRegistrationFailedError).
		err := c.attest(provisioning.Credential{IDScope: scope, RegistrationID: reg, Token: pass})
		if err != nil && !errors.Is(err, provisioning.ErrDisabled) {
			c.h.log.Info("dps connect refused", "protocol", "amqp", "registration_id", reg, "reason", provisioning.ReasonOf(err), "error", err)
			if errors.Is(err, provisioning.ErrUnavailable) {
				return wire.SASLSysTemp
			}
			return wire.SASLAuth
		}
		c.mu.Lock()
		c.scope, c.regID, c.token = scope, reg, pass
		c.mu.Unlock()
		return wire.SASLOK
	case wire.MechExternal, wire.MechAnonymous:
		if len(c.certs) == 0 {
			return wire.SASLAuth
		}
		return wire.SASLOK // the registration id comes with the link
	}
	return wire.SASLAuth
}

func (c *conn) attest(cred provisioning.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.h.svc.Attest(ctx, cred)
}

func (c *conn) Opened(*engine.Conn, *wire.Open) *wire.Error { return nil }
func (c *conn) Closed(*engine.Conn, error)                  {}

// parseAddress accepts {scope}/registrations/{id}, with a leading '/' or
// an amqps://host/ prefix (the C SDK's form).
func parseAddress(a string) (scope, reg string, ok bool) {
	if rest, found := strings.CutPrefix(a, "amqps://"); found {
		_, a, _ = strings.Cut(rest, "/")
	}
	a = strings.TrimPrefix(a, "/")
	scope, reg, ok = strings.Cut(a, "/registrations/")
	return scope, reg, ok && scope != "" && reg != "" && !strings.Contains(reg, "/")
}

var errLink = &wire.Error{Condition: wire.ErrUnauthorized, Description: "link address is not this connection's {idScope}/registrations/{registrationId}"}

func (c *conn) Attach(l *engine.Link) *wire.Error {
	scope, reg, ok := parseAddress(l.Address())
	if !ok {
		return &wire.Error{Condition: wire.ErrNotFound, Description: "unknown address"}
	}
	c.mu.Lock()
	switch {
	case c.regID == "" && len(c.certs) > 0: // X.509: the first link names the device
		c.mu.Unlock()
		err := c.attest(provisioning.Credential{IDScope: scope, RegistrationID: reg, PeerCertificates: c.certs})
		if err != nil && !errors.Is(err, provisioning.ErrDisabled) {
			c.h.log.Info("dps connect refused", "protocol", "amqp", "registration_id", reg, "reason", provisioning.ReasonOf(err), "error", err)
			return &wire.Error{Condition: wire.ErrUnauthorized, Description: "attestation failed"}
		}
		c.mu.Lock()
		c.scope, c.regID = scope, reg
	case !strings.EqualFold(c.scope, scope) || c.regID != reg:
		c.mu.Unlock()
		return errLink
	}
	if l.Role == wire.RoleSender {
		c.sender = l
		l.PreSettle = true
	} else {
		l.OnMessage = c.request
	}
	c.mu.Unlock()
	return nil
}

// request answers one message from the device, asynchronously.
func (c *conn) request(_ *engine.Link, raw []byte) wire.DeliveryState {
	var m amqpmsg.Message
	if err := m.UnmarshalBinary(raw); err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: "not an AMQP message"}}
	}
	var corr any
	if m.Properties != nil {
		corr = m.Properties.CorrelationID
	}
	op, _ := m.ApplicationProperties["iotdps-operation-type"].(string)
	opID, _ := m.ApplicationProperties["iotdps-operation-id"].(string)
	var body []byte
	for _, d := range m.Data {
		body = append(body, d...)
	}
	c.mu.Lock()
	cred := provisioning.Credential{IDScope: c.scope, RegistrationID: c.regID, Token: c.token}
	if c.token == "" {
		cred.PeerCertificates = c.certs
	}
	c.mu.Unlock()
	if op != "iotdps-register" && op != "iotdps-get-operationstatus" {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotImplemented, Description: "unknown iotdps-operation-type"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st provisioning.OperationStatus
	var err error
	if op == "iotdps-register" {
		var rb struct {
			RegistrationID string          `json:"registrationId"`
			Payload        json.RawMessage `json:"payload"`
		}
		_ = json.Unmarshal(body, &rb)
		st, err = c.h.svc.Register(ctx, cred, rb.Payload) // attests now, assigns in the background
	} else {
		st, err = c.h.svc.Operation(ctx, cred.RegistrationID, opID, 0)
	}
	switch {
	case errors.Is(err, provisioning.ErrUnavailable):
		// Node retries an amqp:internal-error rejection (reference §6.2).
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrInternal, Description: "the provisioning service is unavailable; retry later"}}
	case errors.Is(err, provisioning.ErrNotFound):
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotFound, Description: "unknown operation id"}}
	case err != nil:
		// A refusal is a "failed" registration: Node hands a rejected
		// delivery's raw rhea error to the application, but reads this.
		status, detail := c.h.svc.RefusalBody(cred.RegistrationID, "amqp", err)
		var d struct {
			ErrorCode int    `json:"errorCode"`
			Message   string `json:"message"`
		}
		_ = json.Unmarshal(detail, &d)
		now := time.Now().UTC()
		st = provisioning.OperationStatus{Status: provisioning.RegFailed, RegistrationState: &provisioning.DeviceRegistrationState{
			RegistrationID: cred.RegistrationID, Status: provisioning.RegFailed, ErrorCode: d.ErrorCode,
			ErrorMessage: d.Message, CreatedDateTimeUTC: now, LastUpdatedDateTimeUTC: now}}
		_ = status
	}
	out, _ := json.Marshal(st)
	resp := amqpmsg.NewMessage(out)
	resp.Properties = &amqpmsg.MessageProperties{CorrelationID: corr}
	if st.Status == provisioning.RegAssigning {
		resp.ApplicationProperties = map[string]any{"retry-after": int32(max(c.h.svc.RetryAfter()/time.Second, 1))}
	}
	b, merr := resp.MarshalBinary()
	c.mu.Lock()
	snd := c.sender
	c.mu.Unlock()
	if merr != nil || snd == nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotAllowed, Description: "attach a receiver link on the registration address first"}}
	}
	if err := snd.Send(b); err != nil {
		c.h.log.Debug("dps amqp response not delivered", "registration_id", cred.RegistrationID, "error", err)
	}
	return &wire.Accepted{}
}
