package bench

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The baselines run in processes of their own (`hubgate bench baseline-tls`,
// `baseline-mochi`) so that /proc CPU and RSS figures are theirs alone.

// connack is the 4 bytes the bare-TLS baseline answers to anything: an MQTT
// CONNACK with return code 0, so the same client code reads it.
var connack = []byte{0x20, 0x02, 0x00, 0x00}

// ServeBareTLS is the physical limit of a TLS connect: it accepts on ln (plain
// TCP), completes the TLS handshake with tc (the hub's certificate, key and
// settings), reads one packet, answers 4 bytes and then only waits for the
// peer to close. It returns when ln is closed.
func ServeBareTLS(ln net.Listener, tc *tls.Config) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go bareTLS(tls.Server(c, tc))
	}
}

func bareTLS(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // the hub's connect timeout
	if err := c.Handshake(); err != nil {
		return
	}
	var b [512]byte
	if _, err := c.Read(b[:]); err != nil {
		return
	}
	if _, err := c.Write(connack); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// BareWebSocket is the bare-TLS baseline for the -ws transports: an HTTPS
// WebSocket upgrade at WebSocketPath (served by an http.Server with the hub's
// TLS config), then one binary message in and the 4-byte answer out.
func BareWebSocket() http.Handler {
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc(WebSocketPath, func(w http.ResponseWriter, r *http.Request) {
		protos := websocket.Subprotocols(r)
		var h http.Header
		if len(protos) > 0 {
			h = http.Header{"Sec-WebSocket-Protocol": {protos[0]}}
		}
		c, err := up.Upgrade(w, r, h)
		if err != nil {
			return
		}
		defer c.Close()
		if _, _, err := c.NextReader(); err != nil {
			return
		}
		if err := c.WriteMessage(websocket.BinaryMessage, connack); err != nil {
			return
		}
		for {
			_, rd, err := c.NextReader()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, rd)
		}
	})
	return mux
}

// NewMochi is the unauthenticated-broker baseline: mochi-mqtt as shipped
// (default options and capabilities), an allow-all auth hook, and a TLS
// listener on addr with tc; wsAddr, when set, adds mochi's own WebSocket
// listener with the same TLS. It returns the serving broker.
func NewMochi(addr, wsAddr string, tc *tls.Config, log *slog.Logger) (*mqtt.Server, string, error) {
	srv := mqtt.New(&mqtt.Options{Logger: log})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, "", err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: tc})
	if err := srv.AddListener(tcp); err != nil {
		return nil, "", err
	}
	if wsAddr != "" {
		if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: wsAddr, TLSConfig: tc})); err != nil {
			return nil, "", err
		}
	}
	if err := srv.Serve(); err != nil {
		return nil, "", err
	}
	return srv, tcp.Address(), nil
}

// allowAll admits every client and every topic (mochi's auth.AllowHook,
// without the YAML ledger package it drags in).
type allowAll struct{ mqtt.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
