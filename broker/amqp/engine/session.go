package engine

import (
	"fmt"

	"github.com/hubgate/hubgate/broker/amqp/wire"
)

// session is one begun session (§2.5). All fields are guarded by c.mu.
type session struct {
	c       *Conn
	ch      uint16 // our channel = the peer's channel
	links   map[uint32]*Link
	endSent bool

	nextIncomingID       uint32
	incomingWindow       uint32
	nextOutgoingID       uint32
	remoteIncomingWindow uint32
	remoteOutgoingWindow uint32
	tagSeq               uint64

	unsettledOut map[uint32]*Link    // our deliveries the peer has not settled
	unsettledIn  map[uint32]struct{} // peer deliveries we answered unsettled (rcv-settle-mode second)
}

func (s *session) dispatch(p wire.Performative) {
	switch f := p.(type) {
	case *wire.Attach:
		s.attach(f)
	case *wire.Flow:
		s.flow(f)
	case *wire.Transfer:
		s.transfer(f)
	case *wire.Disposition:
		s.disposition(f)
	case *wire.Detach:
		s.detach(f)
	default:
		s.c.fail(&wire.Error{Condition: wire.ErrNotAllowed, Description: "unexpected " + wire.Name(p)})
	}
}

// endLocked ends the session with an error (§2.7.8); c.mu is held. Links
// are ended by the caller after unlocking.
func (s *session) endLocked(cond wire.Symbol, desc string) []*Link {
	if s.endSent {
		return nil
	}
	s.endSent = true
	_ = s.c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.End{Error: &wire.Error{Condition: cond, Description: desc}}, nil)
	var out []*Link
	for h, l := range s.links {
		out = append(out, l)
		delete(s.links, h)
	}
	return out
}

func (s *session) attach(a *wire.Attach) {
	c := s.c
	c.mu.Lock()
	if s.endSent {
		c.mu.Unlock()
		return
	}
	if _, used := s.links[a.Handle]; used {
		ended := s.endLocked(wire.ErrHandleInUse, fmt.Sprintf("handle %d is in use", a.Handle))
		c.mu.Unlock()
		endAll(ended)
		return
	}
	if a.Handle >= c.cfg.MaxLinks {
		ended := s.endLocked(wire.ErrResourceLimit, fmt.Sprintf("handle %d above handle-max", a.Handle))
		c.mu.Unlock()
		endAll(ended)
		return
	}
	l := &Link{
		s: s, Name: a.Name, Handle: a.Handle, Role: !a.Role,
		SndSettleMode: a.SndSettleMode, RcvSettleMode: a.RcvSettleMode,
		Source: a.Source, Target: a.Target, Properties: a.Properties,
		PeerMaxMessageSize: a.MaxMessageSize,
	}
	if a.InitialDeliveryCount != nil {
		l.deliveryCount = *a.InitialDeliveryCount
	}
	s.links[a.Handle] = l
	c.mu.Unlock()

	refused := c.h.Attach(l)

	c.mu.Lock()
	defer c.mu.Unlock()
	if s.endSent || s.links[a.Handle] != l {
		return
	}
	resp := &wire.Attach{
		Name: a.Name, Handle: a.Handle, Role: l.Role,
		SndSettleMode: a.SndSettleMode, RcvSettleMode: a.RcvSettleMode,
		Source: a.Source, Target: a.Target,
		MaxMessageSize: c.cfg.MaxMessageSize,
	}
	if l.Role == wire.RoleSender {
		zero := uint32(0)
		resp.InitialDeliveryCount = &zero
	}
	if refused != nil {
		// §2.6.3: a null local terminus says the link was not created.
		if l.Role == wire.RoleReceiver {
			resp.Target = nil
		} else {
			resp.Source = nil
		}
		_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, resp, nil)
		l.detachSent = true
		_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.Detach{Handle: a.Handle, Closed: true, Error: refused}, nil)
		return
	}
	l.attached = true
	_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, resp, nil)
	if l.Role == wire.RoleReceiver {
		l.credit = c.cfg.Credit
		s.sendFlowLocked(l, false)
	}
}

func endAll(ls []*Link) {
	for _, l := range ls {
		l.ended()
	}
}

// sendFlowLocked sends our session state, and the link's when l != nil.
func (s *session) sendFlowLocked(l *Link, drain bool) {
	nid := s.nextIncomingID
	f := &wire.Flow{
		NextIncomingID: &nid,
		IncomingWindow: s.incomingWindow,
		NextOutgoingID: s.nextOutgoingID,
		OutgoingWindow: 1 << 20,
	}
	if l != nil {
		h, dc, cr := l.Handle, l.deliveryCount, l.credit
		f.Handle, f.DeliveryCount, f.LinkCredit = &h, &dc, &cr
		f.Drain = drain
		if l.Role == wire.RoleSender {
			avail := uint32(len(l.queue))
			f.Available = &avail
		}
	}
	_ = s.c.writeFrameLocked(wire.FrameAMQP, s.ch, f, nil)
}

func (s *session) flow(f *wire.Flow) {
	c := s.c
	c.mu.Lock()
	// Session window of the peer (§2.5.6): what it can still take from us.
	if f.NextIncomingID != nil {
		s.remoteIncomingWindow = *f.NextIncomingID + f.IncomingWindow - s.nextOutgoingID
	} else {
		s.remoteIncomingWindow = f.IncomingWindow - s.nextOutgoingID
	}
	s.remoteOutgoingWindow = f.OutgoingWindow
	if f.Handle == nil {
		if f.Echo {
			s.sendFlowLocked(nil, false)
		}
		c.mu.Unlock()
		c.kick()
		return
	}
	l := s.links[*f.Handle]
	if l == nil || !l.attached {
		c.mu.Unlock()
		return // a flow racing a detach
	}
	if l.Role == wire.RoleSender {
		// §2.6.7: link-credit = delivery-count(rcv) + link-credit(rcv) - delivery-count(snd).
		if f.LinkCredit != nil {
			if f.DeliveryCount != nil {
				l.credit = *f.DeliveryCount + *f.LinkCredit - l.deliveryCount
			} else {
				l.credit = *f.LinkCredit - l.deliveryCount
			}
		}
		l.drain = f.Drain
		if f.Echo {
			s.sendFlowLocked(l, false)
		}
		c.mu.Unlock()
		c.kick()
		return
	}
	// We receive on l: the peer's delivery-count is authoritative (§2.6.7).
	if f.DeliveryCount != nil && *f.DeliveryCount != l.deliveryCount {
		used := *f.DeliveryCount - l.deliveryCount
		l.deliveryCount = *f.DeliveryCount
		if used > l.credit {
			l.credit = 0
		} else {
			l.credit -= used
		}
	}
	if f.Echo || l.credit <= c.cfg.Credit/2 {
		l.credit = c.cfg.Credit
		s.sendFlowLocked(l, false)
	}
	c.mu.Unlock()
}

func (s *session) transfer(t *wire.Transfer) {
	c := s.c
	c.mu.Lock()
	if s.incomingWindow == 0 {
		ended := s.endLocked(wire.ErrWindowViolation, "transfer beyond the incoming-window")
		c.mu.Unlock()
		endAll(ended)
		return
	}
	s.incomingWindow--
	s.nextIncomingID++ // counts transfer frames (§2.5.6)
	l := s.links[t.Handle]
	if l == nil {
		ended := s.endLocked(wire.ErrUnattachedHandle, fmt.Sprintf("transfer on handle %d", t.Handle))
		c.mu.Unlock()
		endAll(ended)
		return
	}
	if !l.attached || l.detachSent {
		c.mu.Unlock()
		return // in flight when we detached
	}
	if l.Role != wire.RoleReceiver {
		c.mu.Unlock()
		l.Detach(&wire.Error{Condition: wire.ErrNotAllowed, Description: "transfer on a link the hub sends on"})
		return
	}
	if !l.inProgress {
		if l.credit == 0 {
			c.mu.Unlock()
			l.Detach(&wire.Error{Condition: wire.ErrTransferLimit, Description: "transfer without link credit"})
			return
		}
		if t.DeliveryID == nil {
			c.mu.Unlock()
			c.fail(&wire.Error{Condition: wire.ErrInvalidField, Description: "first transfer of a delivery without delivery-id"})
			return
		}
		l.inProgress = true
		l.curID = *t.DeliveryID
		l.curSettled = t.Settled
		l.credit--
		l.deliveryCount++
		l.buf = l.buf[:0]
	} else if t.Settled {
		l.curSettled = true
	}
	if t.Aborted {
		l.inProgress = false
		l.buf = nil
		c.mu.Unlock()
		return
	}
	if uint64(len(l.buf))+uint64(len(t.Payload)) > c.cfg.MaxMessageSize {
		l.inProgress = false
		l.buf = nil
		c.mu.Unlock()
		l.Detach(&wire.Error{Condition: wire.ErrMessageSizeExceeds,
			Description: fmt.Sprintf("message larger than %d bytes", c.cfg.MaxMessageSize)})
		return
	}
	l.buf = append(l.buf, t.Payload...)
	if s.incomingWindow <= c.cfg.Window/2 {
		s.incomingWindow = c.cfg.Window
		s.sendFlowLocked(nil, false)
	}
	if t.More {
		c.mu.Unlock()
		return
	}
	l.inProgress = false
	msg, id, settled := l.buf, l.curID, l.curSettled
	l.buf = nil // the handler owns msg now
	fn := l.OnMessage
	c.mu.Unlock()

	var state wire.DeliveryState = &wire.Accepted{}
	if fn != nil {
		state = fn(l, msg)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if l.detachSent || !l.attached {
		return
	}
	if !settled {
		// §2.6.12: in mode first we settle with the outcome; in mode second
		// the sender settles first and we forget the delivery then.
		if l.RcvSettleMode == wire.RcvSecond {
			s.unsettledIn[id] = struct{}{}
			_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.Disposition{Role: wire.RoleReceiver, First: id, State: state}, nil)
		} else {
			_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.Disposition{Role: wire.RoleReceiver, First: id, Settled: true, State: state}, nil)
		}
	}
	if l.credit <= c.cfg.Credit/2 {
		l.credit = c.cfg.Credit
		s.sendFlowLocked(l, false)
	}
}

func (s *session) disposition(d *wire.Disposition) {
	c := s.c
	last := d.First
	if d.Last != nil {
		last = *d.Last
	}
	if last-d.First > 1<<16 {
		c.fail(&wire.Error{Condition: wire.ErrInvalidField, Description: "disposition range too large"})
		return
	}
	type outcome struct {
		l     *Link
		state wire.DeliveryState
	}
	var outcomes []outcome
	c.mu.Lock()
	for id := d.First; ; id++ {
		if d.Role == wire.RoleReceiver { // about deliveries we sent
			if l, ok := s.unsettledOut[id]; ok {
				if d.State != nil && l.OnOutcome != nil {
					outcomes = append(outcomes, outcome{l, d.State})
				}
				if d.Settled {
					delete(s.unsettledOut, id)
				} else if l.RcvSettleMode == wire.RcvSecond {
					// The receiver waits for us to settle (§2.6.12).
					delete(s.unsettledOut, id)
					_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.Disposition{Role: wire.RoleSender, First: id, Settled: true, State: d.State}, nil)
				}
			}
		} else if d.Settled {
			delete(s.unsettledIn, id)
		}
		if id == last {
			break
		}
	}
	c.mu.Unlock()
	for _, o := range outcomes {
		o.l.OnOutcome(o.l, o.state)
	}
}

func (s *session) detach(d *wire.Detach) {
	c := s.c
	c.mu.Lock()
	l := s.links[d.Handle]
	if l == nil {
		ended := s.endLocked(wire.ErrUnattachedHandle, fmt.Sprintf("detach of handle %d", d.Handle))
		c.mu.Unlock()
		endAll(ended)
		return
	}
	delete(s.links, d.Handle)
	for id, ol := range s.unsettledOut {
		if ol == l {
			delete(s.unsettledOut, id)
		}
	}
	if !l.detachSent {
		l.detachSent = true
		_ = c.writeFrameLocked(wire.FrameAMQP, s.ch, &wire.Detach{Handle: d.Handle, Closed: d.Closed}, nil)
	}
	c.mu.Unlock()
	l.ended()
}
