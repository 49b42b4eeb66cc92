package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/hubgate/hubgate/broker/amqp/wire"
)

// testHandler accepts PLAIN u/p and ANONYMOUS; links to "refuse" are
// refused, messages to "reject" are rejected, others are recorded.
type testHandler struct {
	msgs    chan []byte
	senders chan *Link
	closed  chan error
}

func newTestHandler() *testHandler {
	return &testHandler{msgs: make(chan []byte, 100), senders: make(chan *Link, 10), closed: make(chan error, 1)}
}

func (h *testHandler) SASLMechanisms() []wire.Symbol {
	return []wire.Symbol{wire.MechPlain, wire.MechAnonymous}
}

func (h *testHandler) SASLInit(in *wire.SASLInit) uint8 {
	switch in.Mechanism {
	case wire.MechAnonymous:
		return wire.SASLOK
	case wire.MechPlain:
		if _, u, p, ok := wire.ParsePlain(in.InitialResponse); ok && u == "u" && p == "p" {
			return wire.SASLOK
		}
	}
	return wire.SASLAuth
}

func (h *testHandler) Opened(*Conn, *wire.Open) *wire.Error { return nil }

func (h *testHandler) Attach(l *Link) *wire.Error {
	if l.Address() == "refuse" {
		return &wire.Error{Condition: wire.ErrUnauthorized, Description: "not yours"}
	}
	if l.Role == wire.RoleReceiver {
		l.OnMessage = func(l *Link, msg []byte) wire.DeliveryState {
			if l.Address() == "reject" {
				return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotAllowed, Description: "no"}}
			}
			h.msgs <- msg
			return &wire.Accepted{}
		}
		return nil
	}
	h.senders <- l
	return nil
}

func (h *testHandler) Closed(_ *Conn, err error) { h.closed <- err }

// start runs a server connection on one end of a pipe and returns the other.
func start(t *testing.T, cfg Config) (net.Conn, *testHandler) {
	t.Helper()
	srv, cli := net.Pipe()
	h := newTestHandler()
	go NewConn(srv, cfg, h).Run()
	t.Cleanup(func() { cli.Close() })
	return cli, h
}

func dial(t *testing.T, nc net.Conn, opts *amqp.ConnOptions) (*amqp.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := amqp.NewConn(ctx, nc, opts)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func newSession(t *testing.T, c *amqp.Conn) *amqp.Session {
	t.Helper()
	s, err := c.NewSession(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSASL(t *testing.T) {
	cases := []struct {
		name string
		sasl amqp.SASLType
		ok   bool
	}{
		{"ok/plain", amqp.SASLTypePlain("u", "p"), true},
		{"ok/anonymous", amqp.SASLTypeAnonymous(), true},
		{"ok/no-sasl", nil, true},
		{"fail/plain-wrong-password", amqp.SASLTypePlain("u", "x"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, h := start(t, Config{})
			c, err := dial(t, nc, &amqp.ConnOptions{SASLType: tc.sasl})
			if !tc.ok {
				if err == nil {
					t.Fatal("connection admitted")
				}
				if !errors.Is(<-h.closed, ErrSASLRefused) {
					t.Fatal("server did not end with ErrSASLRefused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			snd, err := newSession(t, c).NewSender(t.Context(), "q", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := snd.Send(t.Context(), amqp.NewMessage([]byte("hi")), nil); err != nil {
				t.Fatal(err)
			}
			wantBody(t, <-h.msgs, "hi")
		})
	}
}

func wantBody(t *testing.T, raw []byte, want string) {
	t.Helper()
	var m amqp.Message
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if string(m.GetData()) != want {
		t.Fatalf("body %q, want %q", m.GetData(), want)
	}
}

// TestMultiFrame: with max-frame-size 512 on both sides, 5 KiB messages go
// in many transfer frames each way (§2.6.14).
func TestMultiFrame(t *testing.T) {
	nc, h := start(t, Config{MaxFrameSize: 512})
	c, err := dial(t, nc, &amqp.ConnOptions{MaxFrameSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c)
	big := strings.Repeat("0123456789", 512)
	snd, err := s.NewSender(t.Context(), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(t.Context(), amqp.NewMessage([]byte(big)), nil); err != nil {
		t.Fatal(err)
	}
	wantBody(t, <-h.msgs, big)

	rcv, err := s.NewReceiver(t.Context(), "out", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := <-h.senders
	enc, _ := amqp.NewMessage([]byte(big)).MarshalBinary()
	if err := l.Send(enc); err != nil {
		t.Fatal(err)
	}
	m, err := rcv.Receive(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.GetData()) != big {
		t.Fatalf("received %d bytes", len(m.GetData()))
	}
	if err := rcv.AcceptMessage(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// TestMessageSizeLimit: a message beyond max-message-size detaches the link
// with amqp:link:message-size-exceeded.
func TestMessageSizeLimit(t *testing.T) {
	nc, _ := start(t, Config{MaxMessageSize: 1024})
	c, err := dial(t, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := newSession(t, c).NewSender(t.Context(), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	// go-amqp enforces the advertised limit itself; that proves it was sent.
	if snd.MaxMessageSize() != 1024 {
		t.Fatalf("advertised max-message-size %d", snd.MaxMessageSize())
	}
}

// TestSettlementModes: every sender/receiver settle-mode pair the client
// can request, in both directions, is echoed and completes.
func TestSettlementModes(t *testing.T) {
	snd := []amqp.SenderSettleMode{amqp.SenderSettleModeUnsettled, amqp.SenderSettleModeSettled, amqp.SenderSettleModeMixed}
	rcv := []amqp.ReceiverSettleMode{amqp.ReceiverSettleModeFirst, amqp.ReceiverSettleModeSecond}
	for _, sm := range snd {
		for _, rm := range rcv {
			t.Run("ok/client-sends/"+sm.String()+"-"+rm.String(), func(t *testing.T) {
				nc, h := start(t, Config{})
				c, err := dial(t, nc, nil)
				if err != nil {
					t.Fatal(err)
				}
				s, err := newSession(t, c).NewSender(t.Context(), "q", &amqp.SenderOptions{SettlementMode: &sm, RequestedReceiverSettleMode: &rm})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					if err := s.Send(t.Context(), amqp.NewMessage([]byte{'a' + byte(i)}), &amqp.SendOptions{Settled: sm == amqp.SenderSettleModeSettled}); err != nil {
						t.Fatal(err)
					}
					wantBody(t, <-h.msgs, string([]byte{'a' + byte(i)}))
				}
			})
			t.Run("ok/client-receives/"+sm.String()+"-"+rm.String(), func(t *testing.T) {
				nc, h := start(t, Config{})
				c, err := dial(t, nc, nil)
				if err != nil {
					t.Fatal(err)
				}
				r, err := newSession(t, c).NewReceiver(t.Context(), "out", &amqp.ReceiverOptions{RequestedSenderSettleMode: &sm, SettlementMode: &rm})
				if err != nil {
					t.Fatal(err)
				}
				l := <-h.senders
				if l.SndSettleMode != uint8(sm) || l.RcvSettleMode != uint8(rm) {
					t.Fatalf("modes %d/%d, want %d/%d", l.SndSettleMode, l.RcvSettleMode, sm, rm)
				}
				outcomes := make(chan wire.DeliveryState, 3)
				l.OnOutcome = func(_ *Link, st wire.DeliveryState) { outcomes <- st }
				for i := range 3 {
					enc, _ := amqp.NewMessage([]byte{'x', byte('0' + i)}).MarshalBinary()
					if err := l.Send(enc); err != nil {
						t.Fatal(err)
					}
					m, err := r.Receive(t.Context(), nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := r.AcceptMessage(t.Context(), m); err != nil {
						t.Fatal(err)
					}
					if sm != amqp.SenderSettleModeSettled {
						if _, ok := (<-outcomes).(*wire.Accepted); !ok {
							t.Fatal("outcome is not accepted")
						}
					}
				}
			})
		}
	}
}

// TestRefusedAttach: a refused link answers attach with a null terminus
// and detach with the handler's error (§2.6.3); rejected deliveries carry
// the error to the sender.
func TestRefusedAttach(t *testing.T) {
	nc, _ := start(t, Config{})
	c, err := dial(t, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c)
	_, err = s.NewSender(t.Context(), "refuse", nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Condition != amqp.ErrCondUnauthorizedAccess {
		t.Fatalf("attach to refuse: %v", err)
	}
	snd, err := s.NewSender(t.Context(), "reject", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = snd.Send(t.Context(), amqp.NewMessage([]byte("x")), nil)
	if !errors.As(err, &ae) || ae.Condition != amqp.ErrCondNotAllowed {
		t.Fatalf("send to reject: %v", err)
	}
}

// TestCreditAndDrain: the hub sends only what the client's credit allows,
// and a drain with nothing queued completes by using up the credit.
func TestCreditAndDrain(t *testing.T) {
	nc, h := start(t, Config{})
	c, err := dial(t, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newSession(t, c).NewReceiver(t.Context(), "out", &amqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	l := <-h.senders
	for i := range 3 {
		enc, _ := amqp.NewMessage([]byte{'m', byte('0' + i)}).MarshalBinary()
		if err := l.Send(enc); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.IssueCredit(2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := r.Receive(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := string([]byte{'m', byte('0' + i)}); string(m.GetData()) != want {
			t.Fatalf("got %q want %q", m.GetData(), want)
		}
		_ = r.AcceptMessage(t.Context(), m)
	}
	// Credit is used up: the third message stays queued on the hub.
	if m := r.Prefetched(); m != nil {
		t.Fatalf("message beyond credit: %q", m.GetData())
	}
	if err := r.IssueCredit(5); err != nil {
		t.Fatal(err)
	}
	m, err := r.Receive(t.Context(), nil)
	if err != nil || string(m.GetData()) != "m2" {
		t.Fatalf("third message: %v %v", m, err)
	}
	_ = r.AcceptMessage(t.Context(), m)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.DrainCredit(ctx, nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
}

// rawOpen writes the AMQP header and an open, reads the hub's header and
// open, and returns the connection for raw frames.
func rawOpen(t *testing.T, nc net.Conn, idleMs uint32) {
	t.Helper()
	h := wire.NewHeader(wire.ProtoAMQP)
	b, _ := wire.AppendFrame(h[:], wire.FrameAMQP, 0, &wire.Open{ContainerID: "raw", MaxFrameSize: 65536, ChannelMax: 0, IdleTimeOut: idleMs}, nil)
	go nc.Write(b)
	var hdr [8]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil || !bytes.Equal(hdr[:], h[:]) {
		t.Fatalf("header %q %v", hdr, err)
	}
	if p := readFrame(t, nc); p == nil {
		t.Fatal("no open")
	} else if _, ok := p.(*wire.Open); !ok {
		t.Fatalf("want open, got %T", p)
	}
}

func readFrame(t *testing.T, nc net.Conn) wire.Performative {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, body, _, err := wire.ReadFrame(nc, nil, 1<<20)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	p, err := wire.DecodeBody(h.Type, body)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantClose(t *testing.T, nc net.Conn, cond wire.Symbol) {
	t.Helper()
	for {
		p := readFrame(t, nc)
		if p == nil {
			continue // heartbeat
		}
		cl, ok := p.(*wire.Close)
		if !ok {
			t.Fatalf("want close, got %T", p)
		}
		if cl.Error == nil || cl.Error.Condition != cond {
			t.Fatalf("close error %v, want %s", cl.Error, cond)
		}
		return
	}
}

// TestIdleTimeout: a peer that sends nothing within our idle-time-out is
// closed with amqp:resource-limit-exceeded; the hub heart-beats a peer
// that advertised an idle-time-out of its own.
func TestIdleTimeout(t *testing.T) {
	nc, h := start(t, Config{IdleTimeout: 300 * time.Millisecond})
	rawOpen(t, nc, 100)
	// At 100 ms the hub must heart-beat (empty frames) before closing us.
	if p := readFrame(t, nc); p != nil {
		t.Fatalf("want a heartbeat, got %T", p)
	}
	wantClose(t, nc, wire.ErrResourceLimit)
	if err := <-h.closed; !errors.Is(err, ErrIdle) {
		t.Fatalf("server ended with %v, want ErrIdle", err)
	}
}

// TestIdleClient: go-amqp's own idle-time-out is kept alive by our heartbeats.
func TestIdleClient(t *testing.T) {
	nc, _ := start(t, Config{IdleTimeout: time.Minute})
	c, err := dial(t, nc, &amqp.ConnOptions{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(600 * time.Millisecond) // three of the client's idle periods
	defer timer.Stop()
	select {
	case <-c.Done():
		t.Fatalf("client gave up: %v", c.Err())
	case <-timer.C:
	}
}

// TestGarbage: bytes that are not AMQP get the AMQP header and a close; a
// malformed frame after open gets close with amqp:decode-error; an
// oversized one amqp:connection:framing-error.
func TestGarbage(t *testing.T) {
	t.Run("fail/not-amqp-header", func(t *testing.T) {
		nc, h := start(t, Config{})
		go nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		var hdr [8]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil || string(hdr[:]) != "AMQP\x00\x01\x00\x00" {
			t.Fatalf("header %q %v", hdr, err)
		}
		if err := <-h.closed; !errors.Is(err, wire.ErrDecode) {
			t.Fatalf("server ended with %v", err)
		}
	})
	cases := []struct {
		name  string
		frame []byte
		cond  wire.Symbol
	}{
		{"fail/garbage-body", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}, wire.ErrDecodeError},
		{"fail/bad-doff", []byte{0, 0, 0, 8, 1, 0, 0, 0}, wire.ErrDecodeError},
		{"fail/too-large", []byte{0x7f, 0, 0, 0, 2, 0, 0, 0}, wire.ErrFramingError},
		{"fail/sasl-frame-after-open", mustFrame(wire.FrameSASL, &wire.SASLInit{Mechanism: "PLAIN"}), wire.ErrDecodeError},
		{"fail/transfer-without-session", mustFrame(wire.FrameAMQP, &wire.Transfer{Handle: 0}), wire.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, h := start(t, Config{})
			rawOpen(t, nc, 0)
			go nc.Write(tc.frame)
			wantClose(t, nc, tc.cond)
			nc.Close()
			<-h.closed
		})
	}
}

func mustFrame(typ uint8, p wire.Performative) []byte {
	b, err := wire.AppendFrame(nil, typ, 0, p, nil)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPeerClose: a client close ends Run without error.
func TestPeerClose(t *testing.T) {
	nc, h := start(t, Config{})
	c, err := dial(t, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Over net.Pipe the client may still be writing when the server, having
	// answered the close, closes the pipe: the client's own error then says
	// "closed pipe". What this test asserts is the server's side.
	if err := c.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) && !strings.Contains(err.Error(), "closed pipe") {
		t.Fatal(err)
	}
	if err := <-h.closed; err != nil {
		t.Fatalf("server ended with %v", err)
	}
}
