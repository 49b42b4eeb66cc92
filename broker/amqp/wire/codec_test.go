package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }
func u8(v uint8) *uint8    { return &v }

// TestValueRoundTrip encodes every primitive, compound and described type
// (§1.6) and decodes it back to the same Go value.
func TestValueRoundTrip(t *testing.T) {
	ts := time.UnixMilli(1700000000123).UTC()
	long := strings.Repeat("x", 300)
	cases := []struct {
		name string
		v    any
	}{
		{"null", nil},
		{"true", true}, {"false", false},
		{"ubyte", uint8(200)}, {"ushort", uint16(60000)},
		{"uint0", uint32(0)}, {"smalluint", uint32(7)}, {"uint", uint32(1 << 30)},
		{"ulong0", uint64(0)}, {"smallulong", uint64(9)}, {"ulong", uint64(1 << 40)},
		{"byte", int8(-5)}, {"short", int16(-3000)},
		{"smallint", int32(-7)}, {"int", int32(-1 << 20)},
		{"smalllong", int64(100)}, {"long", int64(-1 << 40)},
		{"float", float32(1.5)}, {"double", math.Pi},
		{"decimal32", Decimal32{1, 2, 3, 4}}, {"decimal64", Decimal64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"decimal128", Decimal128{15: 9}},
		{"char", Char('é')}, {"timestamp", ts},
		{"uuid", UUID{0: 1, 15: 2}},
		{"vbin8", []byte{1, 2, 3}}, {"vbin32", bytes.Repeat([]byte{7}, 300)},
		{"str8", "héllo"}, {"str32", long},
		{"sym8", Symbol("amqp:x")}, {"sym32", Symbol(long)},
		{"list0", []any{}},
		{"list8", []any{uint32(1), "a", nil, true}},
		{"list32", []any{long, long}},
		{"map8", Map{{Symbol("k"), "v"}, {"s", int32(-1)}}},
		{"map32", Map{{"big", long}}},
		{"array-sym", []Symbol{"a", "bb"}},
		{"array-uint", Array{uint32(1), uint32(70000)}},
		{"array-long", Array{int64(-1), int64(5)}},
		{"array-str", Array{"x", "yy"}},
		{"array-list", Array{[]any{uint32(1)}, []any{}}},
		{"array-map", Array{Map{{Symbol("a"), uint64(1)}}}},
		{"array-bool", Array{true, false}},
		{"array-uuid", Array{UUID{1}}},
		{"array-empty", Array{}},
		{"described-ulong", Described{Descriptor: uint64(0x77), Value: "x"}},
		{"described-sym", Described{Descriptor: Symbol("com.example:x"), Value: []any{uint32(1)}}},
		{"nested", []any{Map{{Symbol("l"), []any{Map{{"a", []Symbol{"s"}}}}}}}},
	}
	for _, tc := range cases {
		t.Run("ok/"+tc.name, func(t *testing.T) {
			b, err := AppendValue(nil, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got, n, err := ReadValue(b)
			if err != nil {
				t.Fatalf("decode % x: %v", b, err)
			}
			if n != len(b) {
				t.Fatalf("decoded %d of %d bytes", n, len(b))
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Fatalf("round trip: got %#v, want %#v", got, tc.v)
			}
		})
	}
}

// TestPerformativeRoundTrip covers every performative (§2.7), the SASL
// frames (§5.3.3) and the delivery states (§3.4) through a whole frame.
func TestPerformativeRoundTrip(t *testing.T) {
	errv := &Error{Condition: ErrUnauthorized, Description: "no", Info: Map{{Symbol("k"), "v"}}}
	cases := []struct {
		name string
		typ  uint8
		p    Performative
	}{
		{"open", FrameAMQP, &Open{ContainerID: "c", Hostname: "h", MaxFrameSize: 512, ChannelMax: 3, IdleTimeOut: 1000,
			OfferedCapabilities: []Symbol{"x"}, Properties: Map{{Symbol("p"), "v"}}}},
		{"open-minimal", FrameAMQP, &Open{ContainerID: "c", MaxFrameSize: 4294967295, ChannelMax: 65535}},
		{"begin", FrameAMQP, &Begin{RemoteChannel: u16(1), NextOutgoingID: 5, IncomingWindow: 100, OutgoingWindow: 200, HandleMax: 9}},
		{"begin-no-remote", FrameAMQP, &Begin{NextOutgoingID: 0, IncomingWindow: 1, OutgoingWindow: 1, HandleMax: 4294967295}},
		{"attach-sender", FrameAMQP, &Attach{Name: "l", Handle: 1, Role: RoleSender, SndSettleMode: SndMixed,
			Source: &Source{Address: "src"}, Target: &Target{Address: "/devices/d/messages/events", Capabilities: []Symbol{"c"}},
			InitialDeliveryCount: u32(0), MaxMessageSize: 1 << 20, Properties: Map{{Symbol("com.microsoft:client-version"), "x"}}}},
		{"attach-receiver", FrameAMQP, &Attach{Name: "r", Handle: 2, Role: RoleReceiver, SndSettleMode: SndSettled, RcvSettleMode: RcvSecond,
			Source: &Source{Address: "$cbs", Filter: Map{{Symbol("f"), Described{Descriptor: Symbol("f"), Value: "x"}}}, Outcomes: []Symbol{"amqp:accepted:list"}},
			Target: &Target{}}},
		{"flow", FrameAMQP, &Flow{NextIncomingID: u32(1), IncomingWindow: 2, NextOutgoingID: 3, OutgoingWindow: 4,
			Handle: u32(5), DeliveryCount: u32(6), LinkCredit: u32(7), Available: u32(8), Drain: true, Echo: true}},
		{"flow-session", FrameAMQP, &Flow{IncomingWindow: 2, NextOutgoingID: 3, OutgoingWindow: 4}},
		{"transfer", FrameAMQP, &Transfer{Handle: 1, DeliveryID: u32(9), DeliveryTag: []byte("t"), MessageFormat: u32(0),
			Settled: true, More: true, RcvSettleMode: u8(1), State: &Accepted{}, Batchable: true}},
		{"transfer-continuation", FrameAMQP, &Transfer{Handle: 1}},
		{"disposition-accepted", FrameAMQP, &Disposition{Role: RoleReceiver, First: 1, Last: u32(4), Settled: true, State: &Accepted{}}},
		{"disposition-rejected", FrameAMQP, &Disposition{Role: RoleSender, First: 1, State: &Rejected{Error: errv}}},
		{"disposition-released", FrameAMQP, &Disposition{First: 1, State: &Released{}}},
		{"disposition-modified", FrameAMQP, &Disposition{First: 1, State: &Modified{DeliveryFailed: true, UndeliverableHere: true, MessageAnnotations: Map{{Symbol("a"), int64(1)}}}}},
		{"disposition-received", FrameAMQP, &Disposition{First: 1, State: &Received{SectionNumber: 1, SectionOffset: 2}}},
		{"detach", FrameAMQP, &Detach{Handle: 3, Closed: true, Error: errv}},
		{"end", FrameAMQP, &End{Error: errv}},
		{"end-clean", FrameAMQP, &End{}},
		{"close", FrameAMQP, &Close{Error: &Error{Condition: ErrDecodeError}}},
		{"sasl-mechanisms", FrameSASL, &SASLMechanisms{Mechanisms: []Symbol{"PLAIN", "ANONYMOUS"}}},
		{"sasl-init", FrameSASL, &SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00u\x00p"), Hostname: "h"}},
		{"sasl-challenge", FrameSASL, &SASLChallenge{Challenge: []byte("c")}},
		{"sasl-response", FrameSASL, &SASLResponse{Response: []byte("r")}},
		{"sasl-outcome", FrameSASL, &SASLOutcome{Code: SASLAuth, AdditionalData: []byte("d")}},
	}
	for _, tc := range cases {
		t.Run("ok/"+tc.name, func(t *testing.T) {
			var payload []byte
			if _, ok := tc.p.(*Transfer); ok {
				payload = []byte("payload")
			}
			b, err := AppendFrame(nil, tc.typ, 7, tc.p, payload)
			if err != nil {
				t.Fatal(err)
			}
			h, got, err := DecodeFrame(b, 1<<20)
			if err != nil {
				t.Fatalf("decode % x: %v", b, err)
			}
			if h.Channel != 7 || h.Type != tc.typ {
				t.Fatalf("header %+v", h)
			}
			if tr, ok := got.(*Transfer); ok {
				if !bytes.Equal(tr.Payload, payload) {
					t.Fatalf("payload %q", tr.Payload)
				}
				tr.Payload = nil
			}
			if !reflect.DeepEqual(got, tc.p) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tc.p)
			}
		})
	}
}

func TestHeartbeatFrame(t *testing.T) {
	b, err := AppendFrame(nil, FrameAMQP, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, []byte{0, 0, 0, 8, 2, 0, 0, 0}) {
		t.Fatalf("heartbeat % x", b)
	}
	_, p, err := DecodeFrame(b, 512)
	if err != nil || p != nil {
		t.Fatalf("heartbeat decodes to %v, %v", p, err)
	}
}

func TestHeaders(t *testing.T) {
	for _, id := range []uint8{ProtoAMQP, ProtoSASL} {
		h := NewHeader(id)
		got, err := ParseHeader(h[:])
		if err != nil || got != id {
			t.Fatalf("header %d: %d %v", id, got, err)
		}
	}
	for _, bad := range []string{"HTTP/1.1", "AMQP\x00\x00\x09\x01", "AMQP\x00\x01\x00"} {
		if _, err := ParseHeader([]byte(bad)); err == nil {
			t.Errorf("fail/%q: accepted", bad)
		}
	}
}

// TestMalformed: truncated, oversized, mistyped and hostile inputs are
// decode errors (never panics, never large allocations).
func TestMalformed(t *testing.T) {
	open, _ := AppendFrame(nil, FrameAMQP, 0, &Open{ContainerID: "c", MaxFrameSize: 512, ChannelMax: 1}, nil)
	frames := []struct {
		name string
		b    []byte
	}{
		{"fail/short-header", []byte{0, 0, 0}},
		{"fail/doff-below-2", []byte{0, 0, 0, 8, 1, 0, 0, 0}},
		{"fail/size-below-doff", []byte{0, 0, 0, 4, 2, 0, 0, 0}},
		{"fail/too-large", append([]byte{0, 0, 2, 1, 2, 0, 0, 0}, make([]byte, 505)...)},
		{"fail/unknown-frame-type", []byte{0, 0, 0, 8, 2, 9, 0, 0}},
		{"fail/size-mismatch", append([]byte{0, 0, 0, 12, 2, 0, 0, 0}, 0x40)},
		{"fail/truncated-open", open[:len(open)-2]},
		{"fail/not-described", frameBody(0x40)},
		{"fail/unknown-descriptor", frameBody(0x00, 0x53, 0x99, 0x45)},
		{"fail/unknown-symbolic-descriptor", frameBody(0x00, 0xa3, 1, 'x', 0x45)},
		{"fail/described-not-list", frameBody(0x00, 0x53, 0x10, 0x40)},
		{"fail/open-missing-container", frameBody(0x00, 0x53, 0x10, 0x45)},
		{"fail/open-container-is-uint", frameBody(0x00, 0x53, 0x10, 0xc0, 3, 1, 0x52, 5)},
		{"fail/attach-missing-role", frameBody(0x00, 0x53, 0x12, 0xc0, 5, 2, 0xa1, 1, 'n', 0x43)},
		{"fail/list-count-too-big", frameBody(0x00, 0x53, 0x17, 0xc0, 1, 200)},
		{"fail/list32-huge", frameBody(0x00, 0x53, 0x17, 0xd0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		{"fail/string-overruns", frameBody(0x00, 0x53, 0x10, 0xc0, 3, 1, 0xa1, 200)},
		{"fail/str32-huge", frameBody(0x00, 0x53, 0x10, 0xc0, 6, 1, 0xb1, 0xff, 0xff, 0xff, 0xff)},
		{"fail/map-odd", frameBody(0x00, 0x53, 0x18, 0xc0, 4, 1, 0xc1, 2, 1, 0x40)},
		{"fail/array-zero-width-bomb", frameBody(0x00, 0x53, 0x18, 0xc0, 11, 1, 0xf0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x40)},
		{"fail/unknown-type-code", frameBody(0x00, 0x53, 0x18, 0xc0, 2, 1, 0x99)},
		{"fail/descriptor-is-string", frameBody(0x00, 0xa1, 1, 'x', 0x45)},
		{"fail/sasl-in-amqp-frame", frameBody(0x00, 0x53, 0x44, 0xc0, 3, 1, 0x50, 0)},
		{"fail/trailing-bytes", frameBody(0x00, 0x53, 0x17, 0x45, 0x40)},
		{"fail/unsupported-state", frameBody(0x00, 0x53, 0x15, 0xc0, 8, 5, 0x42, 0x43, 0x40, 0x40, 0x00, 0x53, 0x34, 0x45)},
		{"fail/deep-nesting", deepNesting(100)},
	}
	for _, tc := range frames {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeFrame(tc.b, 512)
			if err == nil {
				t.Fatalf("accepted % x", tc.b)
			}
			if !errors.Is(err, ErrDecode) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v does not wrap ErrDecode", err)
			}
		})
	}
}

func frameBody(body ...byte) []byte {
	b := []byte{0, 0, 0, 0, 2, 0, 0, 0}
	b = append(b, body...)
	b[3] = byte(len(b))
	return b
}

func deepNesting(n int) []byte {
	body := []byte{0x00, 0x53, 0x18}
	for range n {
		body = append(body, 0x00, 0x53, 0x01)
	}
	body = append(body, 0x45)
	return frameBody(body...)
}

// TestFieldDefaults: absent fields take the spec defaults.
func TestFieldDefaults(t *testing.T) {
	b := frameBody(0x00, 0x53, 0x10, 0xc0, 4, 1, 0xa1, 1, 'c')
	_, p, err := DecodeFrame(b, 512)
	if err != nil {
		t.Fatal(err)
	}
	o := p.(*Open)
	if o.MaxFrameSize != 4294967295 || o.ChannelMax != 65535 || o.IdleTimeOut != 0 {
		t.Fatalf("defaults %+v", o)
	}
}
