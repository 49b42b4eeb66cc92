package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hubgate/hubgate/authn"
)

// Acceptor runs a head's accept loops over TLS listeners that cmd built and
// handed over, and closes them on shutdown.
type Acceptor struct {
	// Timeout bounds the TLS handshake (the head's connect deadline).
	Timeout time.Duration
	Metrics *ConnMetrics
	Log     *slog.Logger
	// Accept runs one handshaken connection to its end.
	Accept func(net.Conn, authn.Transport)
	// MaxHandshakes bounds TLS handshakes in progress; more wait their turn
	// (within Timeout) before any CPU is spent on them. In a reconnect storm
	// an unbounded server starts every handshake at once, most outlive the
	// deadline half done, and the work is wasted and retried: admission keeps
	// the server at its handshake rate instead. 512 leaves room for slow
	// links' round trips yet is under a second of queued CPU. Default 512.
	MaxHandshakes int

	slotsOnce sync.Once
	slots     chan struct{}

	mu     sync.Mutex // guards closed and lns
	closed bool
	lns    []net.Listener
	wg     sync.WaitGroup // accept loops
}

// Serve accepts TLS connections from ln until it is closed. ln must hand out
// *tls.Conn (tls.NewListener) so the handshake runs under our deadline.
func (a *Acceptor) Serve(ln net.Listener) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return net.ErrClosed
	}
	a.lns = append(a.lns, ln)
	a.wg.Add(1)
	a.mu.Unlock()
	defer a.wg.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // EMFILE and friends: back off
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		delay = 0
		go a.handshake(c)
	}
}

// handshake runs the TLS handshake under the connect deadline in a
// goroutine of its own: the handshake's deep stack dies with it instead of
// staying with the long-lived read loop of every idle device.
func (a *Acceptor) handshake(c net.Conn) {
	a.init()
	deadline := time.Now().Add(a.Timeout)
	select {
	case a.slots <- struct{}{}:
	default:
		wait := time.NewTimer(a.Timeout)
		select {
		case a.slots <- struct{}{}:
			wait.Stop()
		case <-wait.C:
			a.Metrics.TLSFailed(authn.TransportTLS)
			a.Log.Debug("tls handshake not started", "remote", c.RemoteAddr().String(), "reason", "admission_timeout")
			_ = c.Close()
			return
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-a.slots
		}
	}
	defer release()
	_ = c.SetDeadline(deadline)
	if tc, ok := c.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), a.Timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			a.Metrics.TLSFailed(authn.TransportTLS)
			a.Log.Debug("tls handshake failed", "remote", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return
		}
	}
	release()
	go a.Accept(c, authn.TransportTLS)
}

func (a *Acceptor) init() {
	a.slotsOnce.Do(func() {
		n := a.MaxHandshakes
		if n <= 0 {
			n = 512
		}
		a.slots = make(chan struct{}, n)
	})
}

// Handshaking reports the TLS handshakes in progress (admitted, not done).
func (a *Acceptor) Handshaking() int {
	a.init()
	return len(a.slots)
}

// Close closes every listener and waits for the accept loops to end.
func (a *Acceptor) Close() {
	a.mu.Lock()
	a.closed = true
	for _, ln := range a.lns {
		_ = ln.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// PeerCertificates returns the TLS client chain of c, leaf first (for TLS
// connections and WebSockets over HTTPS alike).
func PeerCertificates(c net.Conn) []*x509.Certificate {
	if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return s.ConnectionState().PeerCertificates
	}
	return nil
}
