package broker

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubgate/hubgate/authn"
)

// WebSocketPath is where IoT Hub serves MQTT and AMQP over WebSockets
// (reference §1).
const WebSocketPath = "/$iothub/websocket"

// ConnAcceptor is a protocol head that takes over an established connection.
type ConnAcceptor interface {
	Accept(conn net.Conn, transport authn.Transport)
}

// WebSocket is the http.Handler for WebSocketPath. It negotiates the
// subprotocol case-insensitively, echoing the client's spelling (Node sends
// "mqtt", the C SDK "MQTT"), and hands the connection to that head.
type WebSocket struct {
	heads    map[string]ConnAcceptor // lower-case subprotocol → head; fixed after NewWebSocket
	upgrader websocket.Upgrader
	log      *slog.Logger
}

// NewWebSocket returns the handler; heads maps subprotocol names to heads.
func NewWebSocket(log *slog.Logger, heads map[string]ConnAcceptor) *WebSocket {
	w := &WebSocket{heads: map[string]ConnAcceptor{}, log: log}
	for k, v := range heads {
		w.heads[strings.ToLower(k)] = v
	}
	w.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024, // small: an idle device costs little
		WriteBufferSize:  1024,
		// Devices are not browsers; there is no origin to check.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return w
}

func (w *WebSocket) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var head ConnAcceptor
	var proto string
	for _, p := range websocket.Subprotocols(r) {
		if h, ok := w.heads[strings.ToLower(p)]; ok {
			head, proto = h, p
			break
		}
	}
	if head == nil {
		w.log.Info("websocket refused", "reason", "unsupported_subprotocol", "remote", r.RemoteAddr)
		http.Error(rw, "unsupported or missing websocket subprotocol", http.StatusBadRequest)
		return
	}
	c, err := w.upgrader.Upgrade(rw, r, http.Header{"Sec-WebSocket-Protocol": {proto}})
	if err != nil {
		return // the upgrader has answered the client
	}
	conn := &wsConn{Conn: c}
	if r.TLS != nil {
		conn.state = *r.TLS
	}
	head.Accept(conn, authn.TransportWebSocket)
}

// wsConn adapts a WebSocket to a net.Conn carrying binary frames, and exposes
// the TLS state of the HTTPS connection it came over so heads read the client
// certificate the same way as on a TLS listener.
type wsConn struct {
	*websocket.Conn
	state tls.ConnectionState
	rmu   sync.Mutex // guards r
	r     io.Reader  // current message reader
	wmu   sync.Mutex // serialises writes (gorilla allows one writer)
}

func (c *wsConn) ConnectionState() tls.ConnectionState { return c.state }

func (c *wsConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			mt, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, errTextFrame
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
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

var errTextFrame = &net.OpError{Op: "read", Net: "websocket", Err: errString("text frames are not allowed")}

type errString string

func (e errString) Error() string { return string(e) }
