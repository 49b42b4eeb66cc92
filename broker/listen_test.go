package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/internal/pki"
)

// TestAcceptorAdmission: with one handshake slot, a client that holds it
// (connects, sends nothing, until its connect deadline) makes the next one
// wait: the waiter is either closed (its own deadline ran out in the queue)
// or served only once the holder's deadline has freed the slot, never
// alongside it. Once the slot is free a new client is served.
func TestAcceptorAdmission(t *testing.T) {
	ca, _ := pki.NewRootCA("ca", pki.Options{})
	srv, _ := ca.IssueServer([]string{"127.0.0.1"}, pki.Options{})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	tc := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key}}}
	m, err := broker.NewConnMetrics(noop.NewMeterProvider().Meter(""), "test")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 4)
	const timeout = time.Second
	a := &broker.Acceptor{Timeout: timeout, MaxHandshakes: 1, Metrics: m,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Accept: func(c net.Conn, _ authn.Transport) { served <- struct{}{}; _ = c.Close() }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Serve(tls.NewListener(ln, tc)) }()
	defer a.Close()

	start := time.Now()
	holder, err := net.Dial("tcp", ln.Addr().String()) // takes the only slot, says nothing
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	dial := func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(),
			&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err == nil {
			// TLS 1.3: the client finishes first; a read tells whether the
			// server completed its side or closed the connection.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
			if err == io.EOF {
				return nil // served, then closed by Accept
			}
		}
		return err
	}
	// Wait until the holder's connection holds the slot: the waiter below
	// must queue behind it, so it can only be closed.
	for deadline := time.Now().Add(5 * time.Second); a.Handshaking() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the silent client never started its handshake")
		}
		time.Sleep(time.Millisecond)
	}
	if err := dial(); err == nil {
		if waited := time.Since(start); waited < timeout {
			t.Fatalf("a second handshake completed after %v, while the only slot was held (%v)", waited, timeout)
		}
	}
	// Drain what the waiter may have caused, so only the next client counts.
	select {
	case <-served:
	default:
	}
	// The holder's deadline has passed by now and its slot is free again.
	if err := dial(); err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("the new connection was not handed to Accept")
	}
}
