package broker

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hubgate/hubgate/authn"
)

// ConnMetrics counts one protocol head's connect outcomes. Both heads use the
// same instruments with their own protocol label. Attribute sets are built
// once per distinct outcome and reused, so counting allocates nothing on the
// hot path. Labels are bounded: never a device id, never credential material.
type ConnMetrics struct {
	protocol string
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

// NewConnMetrics creates (or finds) the instruments on m for protocol.
func NewConnMetrics(m metric.Meter, protocol string) (*ConnMetrics, error) {
	c := &ConnMetrics{protocol: protocol}
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

// Connect counts one decision; outcome is accepted, rejected or unavailable.
func (c *ConnMetrics) Connect(t authn.Transport, method, outcome, reason string) {
	k := connKey{t, method, outcome, reason}
	v, ok := c.sets.Load(k)
	if !ok {
		v, _ = c.sets.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("protocol", c.protocol),
			attribute.String("transport", t.String()),
			attribute.String("auth_method", method),
			attribute.String("outcome", outcome),
			attribute.String("reason", reason),
		)))
	}
	c.connects.Add(context.Background(), 1, v.(metric.AddOption))
}

// Evicted counts a live session the hub closed.
func (c *ConnMetrics) Evicted(reason string) {
	c.evicts.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", c.protocol), attribute.String("reason", reason)))
}

// TLSFailed counts a failed handshake.
func (c *ConnMetrics) TLSFailed(t authn.Transport) {
	c.tlsFails.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", c.protocol), attribute.String("transport", t.String())))
}
