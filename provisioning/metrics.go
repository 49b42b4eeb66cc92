package provisioning

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics counts registration outcomes (STYLE rule 12: one counter per
// outcome, bounded labels, never a registration id).
type metrics struct {
	registrations metric.Int64Counter // outcome=assigned|failed|refused, reason, substatus
	moves         metric.Int64Counter // operator-triggered moves, by outcome
}

func newMetrics(m metric.Meter) (*metrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("")
	}
	var x metrics
	var err error
	if x.registrations, err = m.Int64Counter("hubgate.dps.registrations",
		metric.WithDescription("Device registrations by outcome (assigned, failed, refused), reason and substatus.")); err != nil {
		return nil, err
	}
	if x.moves, err = m.Int64Counter("hubgate.dps.moves",
		metric.WithDescription("Devices moved between hubs by an enrollment change, by outcome.")); err != nil {
		return nil, err
	}
	return &x, nil
}

func (x *metrics) registration(outcome, reason, substatus string) {
	x.registrations.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("outcome", outcome), attribute.String("reason", reason), attribute.String("substatus", substatus)))
}

func (x *metrics) move(outcome string) {
	x.moves.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}
