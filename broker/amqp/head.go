package amqp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/broker/amqp/engine"
	"github.com/hubgate/hubgate/broker/amqp/wire"
	"github.com/hubgate/hubgate/registry"
)

// Bus is the hub's internal message bus, the MQTT topic space
// (*broker.MQTT implements it).
type Bus interface {
	Publish(topic string, payload []byte, qos byte) error
	Subscribe(filter string, fn func(topic string, payload []byte)) (cancel func(), err error)
}

// Config configures the AMQP head.
type Config struct {
	Auth      broker.Authenticator
	Devices   broker.DeviceSource
	Bus       Bus
	HostNames []string // the hub's host names; the first label of each is a hub name for PLAIN usernames
	Logger    *slog.Logger
	Meter     metric.Meter
	// Claims, when set, announces admitted devices to the hub's other nodes
	// (one connection per device per hub); Node names this node.
	Claims *broker.Claimer
	Node   string

	// ConnectTimeout bounds TLS handshake, then again header, SASL and open.
	// 10 s, as MQTT's CONNECT deadline.
	ConnectTimeout time.Duration
	// AuthTimeout bounds one auth decision (SASL PLAIN, put-token, X.509 link).
	AuthTimeout time.Duration
	// MaxFrameSize we accept. 64 KiB: a 256 KiB message is 5 frames and an
	// idle connection keeps no large buffer.
	MaxFrameSize uint32
	// MaxMessageSize per message: IoT Hub's 256 KiB plus 8 KiB of properties.
	MaxMessageSize uint64
	// IdleTimeout we advertise (rhea then heart-beats at half of it) and
	// enforce. 240 s, the C SDK's service keep-alive (reference §4.2).
	IdleTimeout time.Duration
	// MaxSessions per connection: Node uses one; 8 leaves room.
	MaxSessions uint16
	// MaxLinks per session: Node uses at most 8.
	MaxLinks uint32
	// Credit granted to a client's sending link, refilled at half. 100.
	Credit uint32
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
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = 64 * 1024
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 256*1024 + 8*1024
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 240 * time.Second
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 8
	}
	if c.MaxLinks == 0 {
		c.MaxLinks = 32
	}
	if c.Credit == 0 {
		c.Credit = 100
	}
}

func (c *Config) validate() error {
	if c.Auth == nil || c.Devices == nil || c.Bus == nil {
		return errors.New("amqp: Auth, Devices and Bus are required")
	}
	if len(c.HostNames) == 0 {
		return errors.New("amqp: at least one host name is required")
	}
	if c.MaxFrameSize < wire.MinMaxFrameSize {
		return errors.New("amqp: MaxFrameSize below 512 (AMQP 1.0 §2.7.1)")
	}
	return nil
}

// Head is the AMQP protocol head.
type Head struct {
	cfg      Config
	log      *slog.Logger
	metrics  *broker.ConnMetrics
	acceptor *broker.Acceptor
	hubNames []string // first DNS label of each host name, lower case
	claims   *broker.Claimer

	mu       sync.Mutex // guards closed, conns, byDevice
	closed   bool
	conns    map[*conn]struct{}
	byDevice map[string]map[*conn]struct{}
	live     sync.WaitGroup // connections
}

// New builds the AMQP head. Call Serve or Accept to give it connections.
func New(cfg Config) (*Head, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Head{cfg: cfg, log: cfg.Logger, claims: cfg.Claims, conns: map[*conn]struct{}{}, byDevice: map[string]map[*conn]struct{}{}}
	for _, n := range cfg.HostNames {
		label, _, _ := strings.Cut(n, ".")
		h.hubNames = append(h.hubNames, strings.ToLower(label))
	}
	var err error
	if h.metrics, err = broker.NewConnMetrics(cfg.Meter, "amqp"); err != nil {
		return nil, err
	}
	h.acceptor = &broker.Acceptor{Timeout: cfg.ConnectTimeout, Metrics: h.metrics, Log: cfg.Logger, Accept: h.Accept}
	return h, nil
}

// Serve accepts TLS connections from ln until it is closed. ln must hand out
// *tls.Conn (tls.NewListener) so the handshake runs under our deadline.
func (h *Head) Serve(ln net.Listener) error { return h.acceptor.Serve(ln) }

// Accept runs one connection to its end; it returns when the client is
// gone. TLS connections must have completed their handshake.
func (h *Head) Accept(nc net.Conn, transport authn.Transport) {
	c := &conn{h: h, transport: transport, certs: broker.PeerCertificates(nc), grants: map[string]*grant{}}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = nc.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.live.Add(1)
	h.mu.Unlock()
	defer h.live.Done()
	c.ec = engine.NewConn(nc, engine.Config{
		ContainerID:    h.cfg.HostNames[0],
		OpenTimeout:    h.cfg.ConnectTimeout,
		MaxFrameSize:   h.cfg.MaxFrameSize,
		IdleTimeout:    h.cfg.IdleTimeout,
		MaxSessions:    h.cfg.MaxSessions,
		MaxLinks:       h.cfg.MaxLinks,
		MaxMessageSize: h.cfg.MaxMessageSize,
		Credit:         h.cfg.Credit,
	}, c)
	_ = c.ec.Run()
}

// Recheck is called after a registry change of device id: grants the new
// record no longer allows end (their links detach; a connection left with
// none closes). d is nil when the device was deleted. DESIGN.md rule 4.
func (h *Head) Recheck(id string, d *registry.Device) {
	h.mu.Lock()
	var cs []*conn
	for c := range h.byDevice[id] {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.recheck(id, d)
	}
}

// SessionClaimed is called when a device connected on another node of the
// hub at time at: its grants here that are older end.
func (h *Head) SessionClaimed(deviceID, node string, at time.Time) {
	if node == h.cfg.Node {
		return
	}
	h.mu.Lock()
	var cs []*conn
	for c := range h.byDevice[deviceID] {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.mu.Lock()
		g := c.grants[deviceID]
		older := g != nil && !g.admitted.After(at)
		c.mu.Unlock()
		if older {
			h.log.Info("session closed", "protocol", "amqp", "device_id", deviceID, "reason", "connected_elsewhere", "node", node)
			c.dropGrant(deviceID, &wire.Error{Condition: wire.ErrUnauthorized, Description: "the device connected elsewhere"})
		}
	}
}

// Connected reports the number of live AMQP connections.
func (h *Head) Connected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown stops accepting, closes every connection with
// amqp:connection:forced and waits for them to end (or ctx).
func (h *Head) Shutdown(ctx context.Context) error {
	h.acceptor.Close()
	h.mu.Lock()
	h.closed = true
	var cs []*conn
	for c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.ec.Close(&wire.Error{Condition: wire.ErrConnectionForced, Description: "hub shutting down"})
	}
	done := make(chan struct{})
	go func() { h.live.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Head) track(id string, c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.byDevice[id]
	if m == nil {
		m = map[*conn]struct{}{}
		h.byDevice[id] = m
	}
	m[c] = struct{}{}
}

func (h *Head) untrack(id string, c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.byDevice[id]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.byDevice, id)
		}
	}
}

func (h *Head) forget(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

// hubName reports whether name is one of our hub names (PLAIN usernames).
func (h *Head) hubName(name string) bool {
	for _, n := range h.hubNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
