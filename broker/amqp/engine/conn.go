package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hubgate/hubgate/broker/amqp/wire"
)

// Config holds the limits of one connection. Zero values take the defaults
// in setDefaults.
type Config struct {
	ContainerID string
	// OpenTimeout bounds header, SASL and open together (set by the caller's
	// connect deadline). Default 10 s.
	OpenTimeout time.Duration
	// MaxFrameSize we accept (and advertise). Default 64 KiB: a 256 KiB
	// message is then 5 frames, and an idle connection needs no big buffer.
	MaxFrameSize uint32
	// IdleTimeout we advertise and enforce (§2.4.5); the peer must send a
	// frame within it. Default 240 s, as the C SDK's service keep-alive
	// (reference §4.2); rhea then heart-beats every 120 s.
	IdleTimeout time.Duration
	// MaxSessions per connection (channel-max + 1). Default 8: Node uses one.
	MaxSessions uint16
	// MaxLinks per session (handle-max + 1). Default 32: Node uses ≤ 8
	// (CBS pair, telemetry, C2D, twin pair, methods pair).
	MaxLinks uint32
	// MaxMessageSize per delivery, advertised on attach. Default 256 KiB +
	// 8 KiB for properties: IoT Hub's limit (reference §3.5).
	MaxMessageSize uint64
	// Credit we grant each receiving link, refilled at half. Default 100.
	Credit uint32
	// Window is the session incoming-window in transfer frames. Default 2048.
	Window uint32
	// WriteTimeout bounds one frame write to a slow peer. Default 30 s.
	WriteTimeout time.Duration
	// MaxQueue bounds a sending link's queue; Send fails beyond it. Default 64.
	MaxQueue int
}

func (c *Config) setDefaults() {
	if c.OpenTimeout == 0 {
		c.OpenTimeout = 10 * time.Second
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = 64 * 1024
	}
	if c.MaxFrameSize < wire.MinMaxFrameSize {
		c.MaxFrameSize = wire.MinMaxFrameSize
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
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 256*1024 + 8*1024
	}
	if c.Credit == 0 {
		c.Credit = 100
	}
	if c.Window == 0 {
		c.Window = 2048
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 64
	}
}

// Handler gives a connection its meaning. Callbacks run in the connection's
// reader goroutine without engine locks held; they may block (an auth
// decision), which delays only this connection.
type Handler interface {
	// SASLMechanisms lists the mechanisms offered after a SASL header.
	SASLMechanisms() []wire.Symbol
	// SASLInit decides a sasl-init; the result is the outcome code (§5.3.3.6).
	SASLInit(init *wire.SASLInit) uint8
	// Opened is called with the peer's open; a non-nil error closes the
	// connection with it after our open.
	Opened(c *Conn, o *wire.Open) *wire.Error
	// Attach decides a link the peer attached. It sets l.OnMessage (links we
	// receive on) and may set l.OnDetach, l.OnOutcome, l.PreSettle. A
	// non-nil error refuses the link (attach with a null terminus, then
	// detach with the error, §2.6.3).
	Attach(l *Link) *wire.Error
	// Closed is called once when the connection has ended.
	Closed(c *Conn, err error)
}

// Conn is one AMQP connection.
type Conn struct {
	cfg  Config
	nc   net.Conn
	h    Handler
	rbuf []byte

	Peer *wire.Open // the peer's open; set before Handler.Opened, read-only after

	mu          sync.Mutex // guards everything below and writes to nc
	wbuf        []byte
	sessions    map[uint16]*session
	openSent    bool
	closeSent   bool
	closed      bool // the net.Conn is closed
	peerMax     uint32
	lastWrite   time.Time
	heartbeat   *time.Timer
	pumping     bool
	writeFailed error
}

// NewConn prepares a connection; Run drives it.
func NewConn(nc net.Conn, cfg Config, h Handler) *Conn {
	cfg.setDefaults()
	return &Conn{cfg: cfg, nc: nc, h: h, sessions: map[uint16]*session{}, peerMax: wire.MinMaxFrameSize}
}

// NetConn is the underlying connection (for its TLS state).
func (c *Conn) NetConn() net.Conn { return c.nc }

// errPeerClosed ends Run after the peer's close.
var errPeerClosed = errors.New("amqp: closed by peer")

// ErrIdle is the reason a connection ended when the peer sent nothing
// within our idle-time-out.
var ErrIdle = errors.New("amqp: peer idle beyond idle-time-out")

// Run performs the header, SASL and open exchange under OpenTimeout, then
// serves frames until the connection ends. It closes nc and returns why
// the connection ended.
func (c *Conn) Run() (err error) {
	defer func() {
		c.mu.Lock()
		c.closed = true
		if c.heartbeat != nil {
			c.heartbeat.Stop()
		}
		sessions := c.sessions
		c.sessions = map[uint16]*session{}
		c.mu.Unlock()
		_ = c.nc.Close()
		for _, s := range sessions {
			for _, l := range s.links {
				l.ended()
			}
		}
		if errors.Is(err, errPeerClosed) {
			err = nil
		}
		c.h.Closed(c, err)
	}()
	_ = c.nc.SetDeadline(time.Now().Add(c.cfg.OpenTimeout))
	if err := c.negotiate(); err != nil {
		return err
	}
	open, err := c.readOpen()
	if err != nil {
		return err
	}
	c.Peer = open
	c.mu.Lock()
	c.peerMax = max(open.MaxFrameSize, wire.MinMaxFrameSize)
	err = c.sendOpenLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if e := c.h.Opened(c, open); e != nil {
		c.Close(e)
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.startHeartbeat(open.IdleTimeOut)
	return c.serve()
}

// negotiate exchanges protocol headers and runs SASL when the peer asks for it.
func (c *Conn) negotiate() error {
	id, err := c.readHeader()
	if err != nil {
		return err
	}
	if id == wire.ProtoSASL {
		if err := c.sasl(); err != nil {
			return err
		}
		if id, err = c.readHeader(); err != nil {
			return err
		}
	}
	if id != wire.ProtoAMQP {
		c.writeRaw(wire.NewHeader(wire.ProtoAMQP))
		return fmt.Errorf("%w: protocol id %d where AMQP was expected", wire.ErrDecode, id)
	}
	c.writeRaw(wire.NewHeader(wire.ProtoAMQP))
	return nil
}

func (c *Conn) readHeader() (uint8, error) {
	var h [8]byte
	if _, err := io.ReadFull(c.nc, h[:]); err != nil {
		return 0, err
	}
	id, err := wire.ParseHeader(h[:])
	if err != nil || (id != wire.ProtoAMQP && id != wire.ProtoSASL) {
		// §2.2: answer with the header we support, then close.
		c.writeRaw(wire.NewHeader(wire.ProtoAMQP))
		if err == nil {
			err = fmt.Errorf("%w: unsupported protocol id %d", wire.ErrDecode, id)
		}
		return 0, err
	}
	return id, nil
}

func (c *Conn) writeRaw(h wire.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.nc.Write(h[:])
}

// ErrSASLRefused is returned by Run when the SASL outcome was not ok.
var ErrSASLRefused = errors.New("amqp: SASL authentication refused")

func (c *Conn) sasl() error {
	c.writeRaw(wire.NewHeader(wire.ProtoSASL))
	c.mu.Lock()
	err := c.writeFrameLocked(wire.FrameSASL, 0, &wire.SASLMechanisms{Mechanisms: c.h.SASLMechanisms()}, nil)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	h, body, buf, err := wire.ReadFrame(c.nc, c.rbuf, wire.MinMaxFrameSize)
	c.rbuf = buf
	if err != nil {
		return err
	}
	p, err := wire.DecodeBody(h.Type, body)
	if err != nil {
		return err
	}
	init, ok := p.(*wire.SASLInit)
	if !ok || h.Type != wire.FrameSASL {
		return fmt.Errorf("%w: want sasl-init, got %T", wire.ErrDecode, p)
	}
	code := c.h.SASLInit(init)
	c.mu.Lock()
	err = c.writeFrameLocked(wire.FrameSASL, 0, &wire.SASLOutcome{Code: code}, nil)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if code != wire.SASLOK {
		return ErrSASLRefused
	}
	return nil
}

func (c *Conn) readOpen() (*wire.Open, error) {
	for {
		h, body, buf, err := wire.ReadFrame(c.nc, c.rbuf, wire.MinMaxFrameSize)
		c.rbuf = buf
		if err != nil {
			if errors.Is(err, wire.ErrDecode) || errors.Is(err, wire.ErrFrameTooLarge) {
				c.fail(err)
			}
			return nil, err
		}
		p, err := wire.DecodeBody(h.Type, body)
		if err != nil {
			c.fail(err)
			return nil, err
		}
		if p == nil {
			continue // heartbeat before open is allowed
		}
		o, ok := p.(*wire.Open)
		if !ok || h.Type != wire.FrameAMQP {
			err := fmt.Errorf("%w: first frame is %s, not open", wire.ErrDecode, wire.Name(p))
			c.fail(err)
			return nil, err
		}
		return o, nil
	}
}

func (c *Conn) sendOpenLocked() error {
	if c.openSent {
		return nil
	}
	c.openSent = true
	return c.writeFrameLocked(wire.FrameAMQP, 0, &wire.Open{
		ContainerID:  c.cfg.ContainerID,
		MaxFrameSize: c.cfg.MaxFrameSize,
		ChannelMax:   c.cfg.MaxSessions - 1,
		IdleTimeOut:  uint32(c.cfg.IdleTimeout / time.Millisecond),
	}, nil)
}

// fail closes the connection for an error in the peer's bytes.
func (c *Conn) fail(err error) {
	cond := wire.ErrDecodeError
	if errors.Is(err, wire.ErrFrameTooLarge) {
		cond = wire.ErrFramingError
	}
	var we *wire.Error
	if errors.As(err, &we) {
		cond = we.Condition
	}
	c.Close(&wire.Error{Condition: cond, Description: err.Error()})
}

// Close sends close with e (nil for a clean close) and ends the connection
// once the peer answers or within 2 s. Safe from any goroutine; idempotent.
func (c *Conn) Close(e *wire.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent || c.closed {
		return
	}
	_ = c.sendOpenLocked() // §2.4.2: an open must precede close
	c.closeSent = true
	_ = c.writeFrameLocked(wire.FrameAMQP, 0, &wire.Close{Error: e}, nil)
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// writeFrameLocked encodes and writes one frame. c.mu must be held.
func (c *Conn) writeFrameLocked(typ uint8, ch uint16, p wire.Performative, payload []byte) error {
	if c.writeFailed != nil {
		return c.writeFailed
	}
	var err error
	c.wbuf, err = wire.AppendFrame(c.wbuf[:0], typ, ch, p, payload)
	if err != nil {
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if _, err := c.nc.Write(c.wbuf); err != nil {
		c.writeFailed = err
		_ = c.nc.Close() // unblocks the reader
		return err
	}
	c.lastWrite = time.Now()
	if cap(c.wbuf) > 16*1024 {
		c.wbuf = nil // do not keep a large buffer on an idle connection
	}
	return nil
}

// startHeartbeat sends an empty frame whenever we have written nothing for
// half the peer's idle-time-out (§2.4.5).
func (c *Conn) startHeartbeat(peerIdleMs uint32) {
	if peerIdleMs == 0 {
		return
	}
	every := time.Duration(peerIdleMs) * time.Millisecond / 2
	if every < 50*time.Millisecond {
		every = 50 * time.Millisecond
	}
	var beat func()
	beat = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.writeFailed != nil {
			return
		}
		if time.Since(c.lastWrite) >= every*9/10 {
			_ = c.writeFrameLocked(wire.FrameAMQP, 0, nil, nil)
		}
		c.heartbeat = time.AfterFunc(every, beat)
	}
	c.mu.Lock()
	c.heartbeat = time.AfterFunc(every, beat)
	c.mu.Unlock()
}

// serve is the frame loop after open.
func (c *Conn) serve() error {
	for {
		c.mu.Lock()
		closing := c.closeSent
		c.mu.Unlock()
		if !closing {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		}
		h, body, buf, err := wire.ReadFrame(c.nc, c.rbuf, c.cfg.MaxFrameSize)
		c.rbuf = buf
		if err != nil {
			if closing {
				return nil // we closed; the peer did not answer in time
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.Close(&wire.Error{Condition: wire.ErrResourceLimit, Description: "idle-time-out exceeded"})
				return ErrIdle
			}
			if errors.Is(err, wire.ErrDecode) || errors.Is(err, wire.ErrFrameTooLarge) {
				c.fail(err)
				c.drainUntilClose()
			}
			return err
		}
		p, err := wire.DecodeBody(h.Type, body)
		if err == nil && h.Type != wire.FrameAMQP {
			err = fmt.Errorf("%w: SASL frame after open", wire.ErrDecode)
		}
		if err != nil {
			c.fail(err)
			c.drainUntilClose()
			return err
		}
		if p == nil {
			continue // heartbeat
		}
		if closing {
			if _, ok := p.(*wire.Close); ok {
				return errPeerClosed
			}
			continue
		}
		if err := c.dispatch(h.Channel, p); err != nil {
			return err
		}
		if cap(c.rbuf) > 16*1024 {
			c.rbuf = nil
		}
	}
}

// drainUntilClose waits (bounded by Close's read deadline) for the peer's
// close after ours, so it reads our error before the socket goes away.
func (c *Conn) drainUntilClose() {
	for {
		h, body, buf, err := wire.ReadFrame(c.nc, c.rbuf[:0], c.cfg.MaxFrameSize)
		c.rbuf = buf
		if err != nil {
			return
		}
		if p, err := wire.DecodeBody(h.Type, body); err != nil {
			return
		} else if _, ok := p.(*wire.Close); ok {
			return
		}
	}
}

func (c *Conn) dispatch(ch uint16, p wire.Performative) error {
	switch f := p.(type) {
	case *wire.Open:
		c.fail(&wire.Error{Condition: wire.ErrNotAllowed, Description: "second open"})
	case *wire.Close:
		c.mu.Lock()
		if !c.closeSent {
			c.closeSent = true
			_ = c.writeFrameLocked(wire.FrameAMQP, 0, &wire.Close{}, nil)
		}
		c.mu.Unlock()
		return errPeerClosed
	case *wire.Begin:
		c.begin(ch, f)
	case *wire.End:
		c.end(ch, f)
	default:
		c.mu.Lock()
		s := c.sessions[ch]
		c.mu.Unlock()
		if s == nil {
			c.fail(&wire.Error{Condition: wire.ErrNotFound, Description: fmt.Sprintf("%s on channel %d without a session", wire.Name(p), ch)})
			return nil
		}
		s.dispatch(p)
	}
	return nil
}

func (c *Conn) begin(ch uint16, b *wire.Begin) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.RemoteChannel != nil {
		c.failLocked(wire.ErrNotAllowed, "begin with a remote-channel: the hub begins no sessions")
		return
	}
	if _, dup := c.sessions[ch]; dup {
		c.failLocked(wire.ErrNotAllowed, fmt.Sprintf("channel %d already has a session", ch))
		return
	}
	if ch >= c.cfg.MaxSessions || len(c.sessions) >= int(c.cfg.MaxSessions) {
		c.failLocked(wire.ErrResourceLimit, "too many sessions")
		return
	}
	s := &session{
		c: c, ch: ch, links: map[uint32]*Link{},
		nextIncomingID:       b.NextOutgoingID,
		incomingWindow:       c.cfg.Window,
		remoteIncomingWindow: b.IncomingWindow,
		remoteOutgoingWindow: b.OutgoingWindow,
		unsettledOut:         map[uint32]*Link{},
		unsettledIn:          map[uint32]struct{}{},
	}
	c.sessions[ch] = s
	rc := ch
	_ = c.writeFrameLocked(wire.FrameAMQP, ch, &wire.Begin{
		RemoteChannel:  &rc,
		NextOutgoingID: s.nextOutgoingID,
		IncomingWindow: s.incomingWindow,
		OutgoingWindow: 1 << 20,
		HandleMax:      c.cfg.MaxLinks - 1,
	}, nil)
}

func (c *Conn) end(ch uint16, _ *wire.End) {
	c.mu.Lock()
	s := c.sessions[ch]
	if s == nil {
		c.mu.Unlock()
		return
	}
	delete(c.sessions, ch)
	if !s.endSent {
		s.endSent = true
		_ = c.writeFrameLocked(wire.FrameAMQP, ch, &wire.End{}, nil)
	}
	links := s.links
	s.links = map[uint32]*Link{}
	c.mu.Unlock()
	for _, l := range links {
		l.ended()
	}
}

// failLocked closes with a condition; c.mu is held.
func (c *Conn) failLocked(cond wire.Symbol, desc string) {
	if c.closeSent || c.closed {
		return
	}
	_ = c.sendOpenLocked()
	c.closeSent = true
	_ = c.writeFrameLocked(wire.FrameAMQP, 0, &wire.Close{Error: &wire.Error{Condition: cond, Description: desc}}, nil)
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// Links returns the attached links of all sessions.
func (c *Conn) Links() []*Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Link
	for _, s := range c.sessions {
		for _, l := range s.links {
			out = append(out, l)
		}
	}
	return out
}

// deliveryTag is an 8-byte big-endian counter.
func deliveryTag(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}
