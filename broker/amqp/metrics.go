package amqp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hubgate/hubgate/authn"
)

// metrics counts auth decisions like broker's MQTT metrics, with
// protocol=amqp. Same instrument names and descriptions, so the two heads
// share one series set. Labels are bounded: never a device id.
type metrics struct {
	connects metric.Int64Counter
	evicts   metric.Int64Counter
	tlsFails metric.Int64Counter

	sets sync.Map // connKey → metric.MeasurementOption
}

type connKey struct {
	transport authn.Transport
	method    string
	outcome   string
	reason    string
}

func newMetrics(m metric.Meter) (*metrics, error) {
	c := &metrics{}
	var err error
	if c.connects, err = m.Int64Counter("hubgate.connects",
		metric.WithDescription("Device and service connect attempts by protocol, transport, auth method, outcome and reason.")); err != nil {
		return nil, err
	}
	if c.evicts, err = m.Int64Counter("hubgate.sessions.closed",
		metric.WithDescription("Live sessions closed by the hub, by reason.")); err != nil {
		return nil, err
	}
	if c.tlsFails, err = m.Int64Counter("hubgate.tls.handshake_failures",
		metric.WithDescription("TLS handshakes that failed before a protocol was spoken.")); err != nil {
		return nil, err
	}
	return c, nil
}

// connect counts one decision; outcome is accepted, rejected or unavailable.
func (c *metrics) connect(t authn.Transport, method, outcome, reason string) {
	k := connKey{t, method, outcome, reason}
	v, ok := c.sets.Load(k)
	if !ok {
		v, _ = c.sets.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("protocol", "amqp"),
			attribute.String("transport", t.String()),
			attribute.String("auth_method", method),
			attribute.String("outcome", outcome),
			attribute.String("reason", reason),
		)))
	}
	c.connects.Add(context.Background(), 1, v.(metric.AddOption))
}

func (c *metrics) evicted(reason string) {
	c.evicts.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", "amqp"), attribute.String("reason", reason)))
}

func (c *metrics) tlsFailed(t authn.Transport) {
	c.tlsFails.Add(context.Background(), 1, metric.WithAttributes(attribute.String("transport", t.String())))
}

// peerCertificates returns the TLS client chain of c, leaf first.
func peerCertificates(c net.Conn) []*x509.Certificate {
	if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return s.ConnectionState().PeerCertificates
	}
	return nil
}
