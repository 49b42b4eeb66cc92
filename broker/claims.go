package broker

import (
	"context"
	"log/slog"
	"time"
)

// SessionClaimer tells the other nodes of a hub that a device has connected
// here, so they close their sessions of it: one connection per device across
// the hub (reference §3.3). On a single node there is none.
type SessionClaimer interface {
	// ClaimSessions announces that deviceIDs connected on node at time at.
	ClaimSessions(ctx context.Context, deviceIDs []string, node string, at time.Time) error
}

// Claimer sends claims off the connect path: admitted devices are queued and
// a single goroutine sends whatever has queued up in one batch, so a connect
// never waits for Redis and a connect storm costs one publish per batch, not
// one per device. A full queue drops claims (counted in logs): the old
// session then lives until the device's next claim or token expiry.
type Claimer struct {
	to   SessionClaimer
	node string
	log  *slog.Logger
	q    chan string
	done chan struct{}
}

// NewClaimer starts the claim sender of node; Close stops it. Every protocol
// head of the node shares one.
func NewClaimer(to SessionClaimer, node string, log *slog.Logger) *Claimer {
	c := &Claimer{to: to, node: node, log: log, q: make(chan string, 4096), done: make(chan struct{})}
	go c.run()
	return c
}

// Claim queues "deviceID connected here"; it never blocks.
func (c *Claimer) Claim(deviceID string) {
	select {
	case c.q <- deviceID:
	default:
		c.log.Warn("session claim dropped", "device_id", deviceID, "reason", "queue_full")
	}
}

func (c *Claimer) run() {
	defer close(c.done)
	batch := make([]string, 0, 256)
	for id := range c.q {
		batch = append(batch[:0], id)
	drain:
		for len(batch) < cap(batch) {
			select {
			case id, ok := <-c.q:
				if !ok {
					break drain
				}
				batch = append(batch, id)
			default:
				break drain
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// The batch's time is taken when it is sent, after every admission
		// in it: receivers close only sessions older than that.
		if err := c.to.ClaimSessions(ctx, batch, c.node, time.Now()); err != nil {
			c.log.Warn("session claims not sent", "devices", len(batch), "error", err)
		}
		cancel()
	}
}

// Close sends what is queued and stops.
func (c *Claimer) Close() {
	close(c.q)
	<-c.done
}
