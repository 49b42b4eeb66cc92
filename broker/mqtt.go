package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/registry"
)

// Authenticator is what the MQTT head needs from authn.
type Authenticator interface {
	Authenticate(ctx context.Context, r authn.Request) (authn.Identity, error)
	AuthorizePolicy(token string, want registry.Rights) (string, time.Time, error)
	StillAllowed(id authn.Identity, d registry.Device) bool
}

// DeviceSource returns the current registry record of a device (the cache).
type DeviceSource interface {
	Device(ctx context.Context, id string) (registry.Device, error)
}

// Config configures the MQTT head.
type Config struct {
	Auth    Authenticator
	Devices DeviceSource
	Logger  *slog.Logger
	Meter   metric.Meter

	// ConnectTimeout bounds everything from accept to CONNACK: TLS handshake,
	// CONNECT and the auth decision. 10 s covers a slow device on a slow link.
	ConnectTimeout time.Duration
	// AuthTimeout bounds one auth decision (registry lookups included).
	AuthTimeout time.Duration
	// MaxPacketSize is IoT Hub's 256 KiB message limit plus headroom for topic
	// and properties; larger packets close the connection.
	MaxPacketSize uint32
	// MaxPending bounds a client's outbound queue; a slow reader loses
	// messages beyond it instead of growing memory.
	MaxPending int32
	// Claims, when set, announces admitted devices to the hub's other nodes
	// (which then close their sessions of them); Node names this node. The
	// caller owns (and closes) it.
	Claims *Claimer
	Node   string
	// SessionExpiry is how long a disconnected clean=false session keeps its
	// subscriptions (Node renews tokens by reconnecting without resubscribing).
	SessionExpiry time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Meter == nil {
		c.Meter = noop.NewMeterProvider().Meter("")
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.AuthTimeout == 0 {
		c.AuthTimeout = 5 * time.Second
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 256*1024 + 8*1024
	}
	if c.MaxPending == 0 {
		c.MaxPending = 64
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = 24 * time.Hour
	}
}

func (c *Config) validate() error {
	if c.Auth == nil || c.Devices == nil {
		return errors.New("broker: Auth and Devices are required")
	}
	return nil
}

// Listener ids given to mochi; they also name the transport in logs.
const (
	listenerTLS = "mqtt-tls"
	listenerWS  = "mqtt-ws"
)

// MQTT is the MQTT protocol head.
type MQTT struct {
	cfg     Config
	srv     *mqtt.Server
	log     *slog.Logger
	metrics *ConnMetrics
	table   *sessionTable
	claims  *Claimer // nil on a single node

	subID atomic.Int64 // inline subscription identifiers

	acceptor *Acceptor
}

// NewMQTT builds the MQTT head. Call Serve or Accept to give it connections.
func NewMQTT(cfg Config) (*MQTT, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = cfg.MaxPacketSize
	caps.MaximumClientWritesPending = cfg.MaxPending
	caps.MaximumSessionExpiryInterval = uint32(cfg.SessionExpiry / time.Second)
	caps.MaximumQos = 1      // IoT Hub has no QoS 2 [reference §3.5]
	caps.RetainAvailable = 0 // the hub stores no retained messages
	caps.ReceiveMaximum = 64
	caps.MaximumInflight = 1024
	srv := mqtt.New(&mqtt.Options{
		Capabilities:             caps,
		Logger:                   cfg.Logger.With("component", "mochi"),
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 1024,
		SysTopicResendInterval:   3600, // nobody may read $SYS; keep the ticker quiet
		InlineClient:             true, // the internal bus other heads publish into
	})
	m := &MQTT{cfg: cfg, srv: srv, log: cfg.Logger, table: newSessionTable()}
	var err error
	if m.metrics, err = NewConnMetrics(cfg.Meter, "mqtt"); err != nil {
		return nil, err
	}
	m.acceptor = &Acceptor{Timeout: cfg.ConnectTimeout, Metrics: m.metrics, Log: cfg.Logger, Accept: m.Accept}
	m.claims = cfg.Claims
	if err := srv.AddHook(&hook{m: m}, nil); err != nil {
		return nil, err
	}
	if err := srv.Serve(); err != nil { // starts mochi's housekeeping loop; it has no listeners
		return nil, err
	}
	return m, nil
}

// Serve accepts TLS connections from ln until it is closed. ln must hand out
// *tls.Conn (tls.NewListener) so the handshake runs under our deadline.
func (m *MQTT) Serve(ln net.Listener) error { return m.acceptor.Serve(ln) }

// Accept runs one connection to its end; it returns when the client is gone.
// TLS connections must have completed their handshake (Serve does that).
func (m *MQTT) Accept(c net.Conn, transport authn.Transport) {
	_ = c.SetDeadline(time.Now().Add(m.cfg.ConnectTimeout))
	listener := listenerTLS
	if transport == authn.TransportWebSocket {
		listener = listenerWS
	}
	// mochi refreshes the deadline from the keep-alive once CONNECT is handled.
	_ = m.srv.EstablishConnection(listener, c)
	m.table.removeConn(c) // normally done by OnDisconnect already
}

// Recheck is called after a registry change of device id: live sessions the
// new record no longer allows are closed (DESIGN.md rule 4). d is nil when
// the device was deleted.
func (m *MQTT) Recheck(id string, d *registry.Device) {
	for _, s := range m.table.device(id) {
		if d != nil && m.cfg.Auth.StillAllowed(s.identity, *d) {
			continue
		}
		reason := "device_deleted"
		if d != nil {
			reason = "credentials_revoked"
		}
		m.log.Info("session closed", "device_id", id, "reason", reason, "transport", s.transport.String())
		m.metrics.Evicted(reason)
		m.disconnect(s.cl, packets.ErrNotAuthorized)
	}
}

// Publish puts a message on the hub's internal bus, the MQTT topic space:
// MQTT subscribers (service clients, devices) receive it as if a client had
// published it. Other heads (AMQP) deliver telemetry this way. Topic rules
// are the caller's job: the bus itself does not check them.
func (m *MQTT) Publish(topic string, payload []byte, qos byte) error {
	return m.srv.Publish(topic, payload, false, qos)
}

// Subscribe calls fn, in the publisher's goroutine, for every bus message
// matching filter until cancel is called. fn must not block.
func (m *MQTT) Subscribe(filter string, fn func(topic string, payload []byte)) (cancel func(), err error) {
	id := int(m.subID.Add(1))
	err = m.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = m.srv.Unsubscribe(filter, id) }, nil
}

// SessionClaimed is called when a device connected on another node of the
// hub at time at: this node's older sessions of it end (one connection per
// device per hub). A session admitted here after at is newer and stays.
func (m *MQTT) SessionClaimed(deviceID, node string, at time.Time) {
	if node == m.cfg.Node {
		return
	}
	for _, s := range m.table.device(deviceID) {
		if s.admitted.After(at) {
			continue
		}
		m.log.Info("session closed", "device_id", deviceID, "reason", "connected_elsewhere", "node", node)
		m.metrics.Evicted("connected_elsewhere")
		m.disconnect(s.cl, packets.ErrSessionTakenOver)
	}
}

// Connected reports the number of live MQTT sessions.
func (m *MQTT) Connected() int { return m.table.len() }

func (m *MQTT) disconnect(cl *mqtt.Client, code packets.Code) {
	_ = m.srv.DisconnectClient(cl, code)
	cl.Stop(code)
}

// Shutdown stops accepting, then disconnects every client.
func (m *MQTT) Shutdown(ctx context.Context) error {
	m.acceptor.Close()
	done := make(chan struct{})
	go func() { _ = m.srv.Close(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func transportOf(cl *mqtt.Client) authn.Transport {
	if cl.Net.Listener == listenerWS {
		return authn.TransportWebSocket
	}
	return authn.TransportTLS
}

// ServicePrefix starts the client id of a service (back-end) MQTT client.
// ':' is not allowed in device ids, so it can never take over a device session.
const ServicePrefix = "$service:"

// refusal is an auth outcome mapped to an MQTT code.
type refusal struct {
	err    error
	reason string
}

func (r refusal) Error() string { return r.reason }

func newRefusal(reason string, format string, args ...any) refusal {
	return refusal{err: fmt.Errorf(format, args...), reason: reason}
}
