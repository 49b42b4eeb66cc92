package engine

import (
	"errors"
	"sync"

	"github.com/hubgate/hubgate/broker/amqp/wire"
)

// Link is an attached link. Exported fields are set before Handler.Attach
// returns and read-only afterwards; the rest is guarded by the Conn's mutex.
type Link struct {
	s *session

	Name          string
	Handle        uint32
	Role          wire.Role // ours: RoleReceiver when the peer sends
	SndSettleMode uint8     // as the peer requested; echoed
	RcvSettleMode uint8
	Source        *wire.Source
	Target        *wire.Target
	Properties    wire.Map
	// PeerMaxMessageSize is the peer's max-message-size (0: no limit).
	PeerMaxMessageSize uint64

	// Set by Handler.Attach.
	OnMessage func(l *Link, msg []byte) wire.DeliveryState // we receive
	OnOutcome func(l *Link, state wire.DeliveryState)      // peer's outcome of a delivery we sent
	OnDetach  func(l *Link)                                // once, when the link is gone
	PreSettle bool                                         // sending in mode mixed: send settled
	Value     any                                          // the handler's state

	attached      bool
	detachSent    bool
	deliveryCount uint32
	credit        uint32
	drain         bool
	queue         [][]byte
	// receiving: the delivery being assembled from several transfer frames
	inProgress bool
	curID      uint32
	curSettled bool
	buf        []byte

	endOnce sync.Once
}

// Conn returns the link's connection.
func (l *Link) Conn() *Conn { return l.s.c }

// Address is the peer's terminus address: the target when the peer sends,
// the source when it receives.
func (l *Link) Address() string {
	if l.Role == wire.RoleReceiver {
		if l.Target != nil {
			return l.Target.Address
		}
		return ""
	}
	if l.Source != nil {
		return l.Source.Address
	}
	return ""
}

func (l *Link) ended() {
	l.endOnce.Do(func() {
		if l.OnDetach != nil {
			l.OnDetach(l)
		}
	})
}

// Detach closes the link with e (§2.7.7). Safe from any goroutine.
func (l *Link) Detach(e *wire.Error) {
	c := l.s.c
	c.mu.Lock()
	if l.detachSent || c.closed {
		c.mu.Unlock()
		return
	}
	l.detachSent = true
	l.queue = nil
	_ = c.writeFrameLocked(wire.FrameAMQP, l.s.ch, &wire.Detach{Handle: l.Handle, Closed: true, Error: e}, nil)
	c.mu.Unlock()
	l.ended()
}

// ErrQueueFull is returned by Send when the peer does not take messages as
// fast as they come.
var ErrQueueFull = errors.New("amqp: link queue full")

// ErrDetached is returned by Send on a link that is gone.
var ErrDetached = errors.New("amqp: link detached")

// Send queues a bare message (encoded sections) on a link we send on; it
// goes out as the peer's credit allows. It never blocks on the network.
func (l *Link) Send(msg []byte) error {
	c := l.s.c
	c.mu.Lock()
	switch {
	case l.detachSent || c.closed || c.closeSent || l.Role != wire.RoleSender:
		c.mu.Unlock()
		return ErrDetached
	case len(l.queue) >= c.cfg.MaxQueue:
		c.mu.Unlock()
		return ErrQueueFull
	}
	l.queue = append(l.queue, msg)
	c.mu.Unlock()
	c.kick()
	return nil
}

// kick starts the pump unless it runs.
func (c *Conn) kick() {
	c.mu.Lock()
	if c.pumping || c.closed {
		c.mu.Unlock()
		return
	}
	c.pumping = true
	c.mu.Unlock()
	go c.pump()
}

// pump sends queued messages while credit and windows allow, and answers
// drains (§2.6.7: a drained sender uses up its credit and says so).
func (c *Conn) pump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() { c.pumping = false }()
	for progress := true; progress && !c.closed && c.writeFailed == nil; {
		progress = false
		for _, s := range c.sessions {
			if s.endSent {
				continue
			}
			for _, l := range s.links {
				if l.Role != wire.RoleSender || !l.attached || l.detachSent {
					continue
				}
				for len(l.queue) > 0 && l.credit > 0 && s.remoteIncomingWindow > 0 {
					msg := l.queue[0]
					l.queue[0] = nil
					l.queue = l.queue[1:]
					s.sendLocked(l, msg)
					progress = true
				}
				if len(l.queue) == 0 {
					l.queue = nil
				}
				if l.drain && len(l.queue) == 0 {
					l.deliveryCount += l.credit
					l.credit = 0
					l.drain = false
					s.sendFlowLocked(l, true)
				}
			}
		}
	}
}

// sendLocked writes one delivery, split into frames of the peer's
// max-frame-size (§2.6.14).
func (s *session) sendLocked(l *Link, msg []byte) {
	c := s.c
	settled := l.SndSettleMode == wire.SndSettled || (l.SndSettleMode == wire.SndMixed && l.PreSettle)
	id := s.nextOutgoingID
	s.tagSeq++
	format := uint32(0)
	t := &wire.Transfer{Handle: l.Handle, DeliveryID: &id, DeliveryTag: deliveryTag(s.tagSeq),
		MessageFormat: &format, Settled: settled}
	first := true
	for first || len(msg) > 0 {
		t.More = true
		enc, _ := wire.AppendValue(nil, t)
		room := int(c.peerMax) - 8 - len(enc)
		if room <= 0 {
			room = 1
		}
		chunk := msg
		if len(chunk) > room {
			chunk = msg[:room]
		}
		msg = msg[len(chunk):]
		t.More = len(msg) > 0
		if err := c.writeFrameLocked(wire.FrameAMQP, s.ch, t, chunk); err != nil {
			return
		}
		s.nextOutgoingID++
		if s.remoteIncomingWindow > 0 {
			s.remoteIncomingWindow--
		}
		if first {
			// Continuation frames carry only the handle (§2.7.5).
			t = &wire.Transfer{Handle: l.Handle}
			first = false
		}
	}
	l.deliveryCount++
	l.credit--
	if !settled {
		s.unsettledOut[id] = l
	}
}
