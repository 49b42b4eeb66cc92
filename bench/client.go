package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Transports the harness speaks.
const (
	TransportMQTT   = "mqtt"
	TransportMQTTWS = "mqtt-ws"
	TransportAMQP   = "amqp"
	TransportAMQPWS = "amqp-ws"
)

// WebSocketPath is where IoT Hub (and hubgate) serve WebSockets.
const WebSocketPath = "/$iothub/websocket"

// Cred is one virtual device's identity: an MQTT username and SAS password,
// or a client certificate (thumbprint and CA devices).
type Cred struct {
	ID       string           `json:"id"`
	Username string           `json:"username"`           // MQTT username
	Password string           `json:"password,omitempty"` // SAS token
	AMQPUser string           `json:"amqp_user,omitempty"`
	Cert     *tls.Certificate `json:"-"`
	CertPEM  []byte           `json:"cert_pem,omitempty"` // for worker processes
	KeyPEM   []byte           `json:"key_pem,omitempty"`
}

// Dialer opens one device connection to one target.
type Dialer struct {
	Transport string
	Addr      string      // host:port (the HTTPS port for the -ws transports)
	TLS       *tls.Config // roots and server name; no session cache, so every handshake is full
	Clean     bool        // MQTT clean session
	KeepAlive uint16      // MQTT keep-alive seconds; default 1200
	Timeout   time.Duration
	// Probe makes the connection a bare TLS (or WebSocket) round trip: write
	// one small packet, read 4 bytes. It is how clients talk to the bare-TLS
	// baseline, which speaks no protocol.
	Probe bool
}

// Dial connects device d from local address local (nil: any).
func (dl *Dialer) Dial(ctx context.Context, local net.Addr, d Cred) (io.Closer, error) {
	timeout := dl.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := dl.TLS
	if d.Cert != nil {
		tc = tc.Clone()
		tc.Certificates = []tls.Certificate{*d.Cert}
	}
	ws := dl.Transport == TransportMQTTWS || dl.Transport == TransportAMQPWS
	var c net.Conn
	var err error
	if ws {
		proto := "mqtt"
		if dl.Transport == TransportAMQPWS {
			proto = "AMQPWSB10"
		}
		c, err = dialWebSocket(ctx, dl.Addr, local, tc, proto)
	} else {
		nd := &net.Dialer{LocalAddr: local}
		var tcp net.Conn
		if tcp, err = nd.DialContext(ctx, "tcp", dl.Addr); err == nil {
			tlc := tls.Client(tcp, tc)
			if err = tlc.HandshakeContext(ctx); err != nil {
				tcp.Close()
			}
			c = tlc
		}
	}
	if err != nil {
		return nil, err
	}
	if dl.Probe {
		return c, probe(ctx, c)
	}
	switch dl.Transport {
	case TransportAMQP, TransportAMQPWS:
		return connectAMQP(ctx, c, dl.TLS.ServerName, d)
	}
	if err := connectMQTT(ctx, c, d, dl.Clean, dl.KeepAlive); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// probe writes a 2-byte MQTT PINGREQ-sized packet and reads the 4-byte answer.
func probe(ctx context.Context, c net.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte{0xC0, 0x00}); err != nil {
		c.Close()
		return err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return err
	}
	_ = c.SetDeadline(time.Time{})
	return nil
}

// connectMQTT sends an MQTT 3.1.1 CONNECT and waits for CONNACK 0.
func connectMQTT(ctx context.Context, c net.Conn, d Cred, clean bool, keepAlive uint16) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if keepAlive == 0 {
		keepAlive = 1200
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: d.ID, Keepalive: keepAlive, Clean: clean,
			UsernameFlag: true, Username: []byte(d.Username),
			PasswordFlag: d.Password != "", Password: []byte(d.Password),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		return err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("connack: %w", err)
	}
	if ack[0]>>4 != packets.Connack {
		return fmt.Errorf("connack: unexpected packet type %d", ack[0]>>4)
	}
	if ack[3] != 0 {
		return &Refusal{Code: fmt.Sprintf("connack_%d", ack[3])}
	}
	_ = c.SetDeadline(time.Time{})
	return nil
}

// ConnectMQTT opens an MQTT/TLS connection for d (clean=false, keep-alive
// 1200 s) and waits for CONNACK 0.
func ConnectMQTT(ctx context.Context, addr string, local net.Addr, tc *tls.Config, d Cred) (net.Conn, error) {
	dl := &Dialer{Transport: TransportMQTT, Addr: addr, TLS: tc}
	c, err := dl.Dial(ctx, local, d)
	if err != nil {
		return nil, err
	}
	return c.(net.Conn), nil
}

// connectAMQP runs SASL PLAIN ({id}@sas.{hub} and the SAS token) and the
// AMQP open over c.
func connectAMQP(ctx context.Context, c net.Conn, host string, d Cred) (io.Closer, error) {
	if d.AMQPUser == "" || d.Password == "" {
		c.Close()
		return nil, errors.New("bench: amqp needs a SAS device")
	}
	ac, err := goamqp.NewConn(ctx, c, &goamqp.ConnOptions{
		HostName: host, SASLType: goamqp.SASLTypePlain(d.AMQPUser, d.Password),
		IdleTimeout: 0,
	})
	if err != nil {
		c.Close()
		var ae *goamqp.Error
		if errors.As(err, &ae) {
			return nil, &Refusal{Code: strings.TrimPrefix(string(ae.Condition), "amqp:")}
		}
		return nil, err
	}
	return ac, nil
}

func dialWebSocket(ctx context.Context, addr string, local net.Addr, tc *tls.Config, proto string) (net.Conn, error) {
	wd := websocket.Dialer{
		NetDialContext:  (&net.Dialer{LocalAddr: local}).DialContext,
		TLSClientConfig: tc,
		Subprotocols:    []string{proto},
		ReadBufferSize:  1024, WriteBufferSize: 1024,
	}
	c, resp, err := wd.DialContext(ctx, "wss://"+addr+WebSocketPath, http.Header{})
	if err != nil {
		if resp != nil {
			return nil, &Refusal{Code: fmt.Sprintf("http_%d", resp.StatusCode)}
		}
		return nil, err
	}
	return &wsConn{Conn: c}, nil
}

// wsConn carries a byte stream in binary WebSocket messages.
type wsConn struct {
	*websocket.Conn
	rmu sync.Mutex // guards r
	r   io.Reader
	wmu sync.Mutex // one writer at a time
}

func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}
