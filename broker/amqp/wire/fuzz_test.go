package wire

import (
	"bytes"
	"testing"
)

func seedFrames(f *testing.F) {
	for _, p := range []Performative{
		&Open{ContainerID: "c", Hostname: "h", MaxFrameSize: 512, ChannelMax: 1, IdleTimeOut: 100},
		&Begin{RemoteChannel: u16(0), IncomingWindow: 1, OutgoingWindow: 1, HandleMax: 1},
		&Attach{Name: "n", Handle: 0, Role: RoleReceiver, Source: &Source{Address: "$cbs"}, Target: &Target{Address: "t"}},
		&Flow{Handle: u32(0), LinkCredit: u32(10), DeliveryCount: u32(0), IncomingWindow: 1, OutgoingWindow: 1},
		&Transfer{Handle: 0, DeliveryID: u32(0), DeliveryTag: []byte{1}, MessageFormat: u32(0)},
		&Disposition{Role: RoleReceiver, First: 0, Settled: true, State: &Rejected{Error: &Error{Condition: ErrInternal}}},
		&Detach{Handle: 0, Closed: true, Error: &Error{Condition: ErrUnauthorized, Description: "x"}},
		&End{}, &Close{},
	} {
		b, _ := AppendFrame(nil, FrameAMQP, 0, p, []byte("x"))
		f.Add(b)
	}
}

// FuzzFrame: any bytes either decode to a frame that re-encodes and
// decodes to the same performative, or fail with an error.
func FuzzFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := DecodeFrame(b, 1<<16)
		if err != nil || p == nil {
			return
		}
		var payload []byte
		if tr, ok := p.(*Transfer); ok {
			payload = tr.Payload
		}
		enc, err := AppendFrame(nil, h.Type, h.Channel, p, payload)
		if err != nil {
			t.Fatalf("re-encode %T: %v", p, err)
		}
		if _, _, err := DecodeFrame(enc, 1<<20); err != nil {
			t.Fatalf("re-decode %T: %v", p, err)
		}
	})
}

// FuzzPerformative feeds bodies straight to the performative decoder.
func FuzzPerformative(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 8 {
			b = b[8:]
		}
		p, _, err := DecodePerformative(b)
		if err != nil {
			return
		}
		if _, err := AppendValue(nil, p); err != nil {
			t.Fatalf("re-encode %T: %v", p, err)
		}
	})
}

// FuzzSASL: SASL frames and the PLAIN initial response.
func FuzzSASL(f *testing.F) {
	for _, p := range []Performative{
		&SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00dev@sas.hub\x00SharedAccessSignature sr=x"), Hostname: "h"},
		&SASLInit{Mechanism: "ANONYMOUS"},
		&SASLMechanisms{Mechanisms: []Symbol{"PLAIN"}},
		&SASLOutcome{Code: 0},
		&SASLResponse{Response: []byte("r")},
	} {
		b, _ := AppendFrame(nil, FrameSASL, 0, p, nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, p, err := DecodeFrame(b, MinMaxFrameSize)
		if err != nil {
			return
		}
		if in, ok := p.(*SASLInit); ok {
			authz, user, pass, ok := ParsePlain(in.InitialResponse)
			if ok && !bytes.Equal(in.InitialResponse, []byte(authz+"\x00"+user+"\x00"+pass)) {
				t.Fatalf("PLAIN split does not reassemble")
			}
		}
	})
}
