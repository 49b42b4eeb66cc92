package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hubgate/hubgate/registry"
)

// Handler receives the hub's events from Watch. Its methods are called from
// Watch's goroutine, one at a time, in the order Redis delivered the
// messages; they must not block for long (events queue behind them).
type Handler interface {
	// Change is a registry write made by any node (this one included).
	Change(registry.Change)
	// SessionClaimed says deviceID connected on node no later than at;
	// every node receives it, the claiming node too (it ignores its own).
	SessionClaimed(deviceID, node string, at time.Time)
	// Resubscribed is called after every successful subscribe, the first
	// included. Events published while not subscribed are lost: the caller
	// flushes its cache here.
	Resubscribed()
}

// changeMsg is a registry.Change on the wire (channel hubgate:{hub}:changes).
type changeMsg struct {
	Kind    string `json:"kind"` // "device", "ca" or "policy"
	ID      string `json:"id"`
	Etag    string `json:"etag,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// claimMsg is a session claim on the wire (channel hubgate:{hub}:sessions).
type claimMsg struct {
	DeviceIDs []string `json:"deviceIds"`
	Node      string   `json:"node"`
	At        int64    `json:"at"` // unix nanoseconds
}

var kindNames = map[registry.ChangeKind]string{
	registry.ChangeDevice: "device",
	registry.ChangeCA:     "ca",
	registry.ChangePolicy: "policy",
}

func encodeChange(ch registry.Change) ([]byte, error) {
	k, ok := kindNames[ch.Kind]
	if !ok {
		return nil, fmt.Errorf("redisstore: change of unknown kind %d", ch.Kind)
	}
	return json.Marshal(changeMsg{Kind: k, ID: ch.ID, Etag: ch.Etag, Deleted: ch.Deleted})
}

func decodeChange(b string) (registry.Change, error) {
	var m changeMsg
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		return registry.Change{}, err
	}
	for k, name := range kindNames {
		if name == m.Kind {
			return registry.Change{Kind: k, ID: m.ID, Etag: m.Etag, Deleted: m.Deleted}, nil
		}
	}
	return registry.Change{}, fmt.Errorf("unknown kind %q", m.Kind)
}

// ClaimSessions announces in one message that deviceIDs have connected on
// node by time at. Every node's Watch handler gets SessionClaimed for each;
// the others close their older sessions of those devices (one connection per
// device across the hub). Batching keeps a connect storm at one PUBLISH per
// batch instead of one per device.
func (s *Store) ClaimSessions(ctx context.Context, deviceIDs []string, node string, at time.Time) error {
	if err := s.open(); err != nil {
		return err
	}
	b, err := json.Marshal(claimMsg{DeviceIDs: deviceIDs, Node: node, At: at.UnixNano()})
	if err != nil {
		return fmt.Errorf("redisstore: encode claim: %w", err)
	}
	if err := s.c.Publish(ctx, s.keys.sessions(), b).Err(); err != nil {
		return unavailable("claim session", err)
	}
	return nil
}

// Feed timing. The back-off bounds how hard a node knocks on a Redis that
// is down; its cap bounds how long a node stays deaf after Redis returns.
const (
	watchMinBackoff = 50 * time.Millisecond
	watchMaxBackoff = 2 * time.Second
	// subscribeTimeout bounds the wait for the subscribe confirmations.
	subscribeTimeout = 2 * time.Second
	// idlePing: after this long without a message the feed PINGs on its
	// connection; no answer within another idlePing means the connection
	// is dead (a silent partition, where no reset ever arrives).
	idlePing = 5 * time.Second
)

// Watch subscribes to the hub's change and session channels and calls h
// until ctx ends (it then returns nil) or the Store is closed (an error
// wrapping registry.ErrUnavailable). A lost connection is re-established by
// Watch itself with back-off; h.Resubscribed follows every subscribe.
func (s *Store) Watch(ctx context.Context, h Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // owned by this call: ends when ctx does (cancel above)
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	backoff := watchMinBackoff
	for {
		subscribed, err := s.watchOnce(ctx, h)
		if ctx.Err() != nil {
			if s.open() != nil {
				return fmt.Errorf("%w: redisstore: watch: store closed", registry.ErrUnavailable)
			}
			return nil
		}
		if subscribed {
			backoff = watchMinBackoff
		}
		// Jitter spreads the reconnects of many nodes after an outage.
		wait := backoff/2 + rand.N(backoff/2+1)
		s.log.Warn("redisstore: change feed lost, resubscribing", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			continue // reported at the top of the loop
		case <-time.After(wait):
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// watchOnce runs one subscription until it fails or ctx ends. subscribed
// reports whether the subscribe succeeded (so the back-off resets).
func (s *Store) watchOnce(ctx context.Context, h Handler) (subscribed bool, err error) {
	changes, sessions := s.keys.changes(), s.keys.sessions()
	ps := s.c.Subscribe(ctx)
	defer ps.Close()
	// Receive does not watch ctx; closing the PubSub ends a blocked read.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()

	if err := ps.Subscribe(ctx, changes, sessions); err != nil {
		return false, err
	}
	for pending := 2; pending > 0; {
		msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
		if err != nil {
			return false, err
		}
		if sub, ok := msg.(*redis.Subscription); ok && sub.Kind == "subscribe" {
			pending--
		}
	}
	h.Resubscribed()

	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, idlePing)
		if err != nil {
			if !isTimeout(err) || pinged {
				return true, err
			}
			if err := ps.Ping(ctx); err != nil {
				return true, err
			}
			pinged = true
			continue
		}
		pinged = false
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // *redis.Pong, or a subscription notice
		}
		switch m.Channel {
		case changes:
			ch, err := decodeChange(m.Payload)
			if err != nil {
				s.log.Error("redisstore: undecodable change event ignored", "err", err)
				continue
			}
			h.Change(ch)
		case sessions:
			var c claimMsg
			if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
				s.log.Error("redisstore: undecodable session claim ignored", "err", err)
				continue
			}
			at := time.Unix(0, c.At)
			for _, id := range c.DeviceIDs {
				h.SessionClaimed(id, c.Node, at)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
