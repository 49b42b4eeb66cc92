package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types (§2.3.1).
const (
	FrameAMQP uint8 = 0
	FrameSASL uint8 = 1
)

// Protocol ids of the protocol header (§2.2, §5.2.1, §5.1 TLS = 2).
const (
	ProtoAMQP uint8 = 0
	ProtoTLS  uint8 = 2
	ProtoSASL uint8 = 3
)

// MinMaxFrameSize is the smallest max-frame-size a peer may set (§2.7.1
// MIN-MAX-FRAME-SIZE), and the largest frame allowed before open.
const MinMaxFrameSize = 512

// Header is an 8-byte protocol header "AMQP" id major minor revision.
type Header [8]byte

// NewHeader returns the AMQP 1.0.0 header for protocol id.
func NewHeader(id uint8) Header { return Header{'A', 'M', 'Q', 'P', id, 1, 0, 0} }

// ParseHeader checks an 8-byte protocol header and returns its protocol id.
// Anything but "AMQP" id 1 0 0 is an error (§2.2: the server then answers
// with the header it supports and closes).
func ParseHeader(b []byte) (uint8, error) {
	if len(b) != 8 || string(b[:4]) != "AMQP" {
		return 0, fmt.Errorf("%w: not an AMQP protocol header", ErrDecode)
	}
	if b[5] != 1 || b[6] != 0 || b[7] != 0 {
		return 0, fmt.Errorf("%w: unsupported AMQP version %d.%d.%d", ErrDecode, b[5], b[6], b[7])
	}
	return b[4], nil
}

// FrameHeader is the fixed part of a frame (§2.3.1).
type FrameHeader struct {
	Size    uint32 // whole frame, header included
	DOff    uint8  // data offset in 4-byte words, ≥ 2
	Type    uint8
	Channel uint16
}

// ErrFrameTooLarge is returned when a frame exceeds the negotiated maximum.
var ErrFrameTooLarge = errors.New("amqp: frame larger than max-frame-size")

// ParseFrameHeader checks the 8 fixed header bytes against max.
func ParseFrameHeader(b []byte, max uint32) (FrameHeader, error) {
	h := FrameHeader{
		Size: binary.BigEndian.Uint32(b), DOff: b[4], Type: b[5], Channel: binary.BigEndian.Uint16(b[6:]),
	}
	switch {
	case h.DOff < 2:
		return h, fmt.Errorf("%w: data offset %d below 2", ErrDecode, h.DOff)
	case h.Size < uint32(h.DOff)*4:
		return h, fmt.Errorf("%w: frame size %d below its data offset %d", ErrDecode, h.Size, h.DOff)
	case h.Size > max:
		return h, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, h.Size, max)
	case h.Type != FrameAMQP && h.Type != FrameSASL:
		return h, fmt.Errorf("%w: frame type %d", ErrDecode, h.Type)
	}
	return h, nil
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// its header and body (extended header skipped). An empty body is a
// heartbeat (§2.4.5).
func ReadFrame(r io.Reader, buf []byte, max uint32) (FrameHeader, []byte, []byte, error) {
	if cap(buf) < 8 {
		buf = make([]byte, 8, 512)
	}
	buf = buf[:8]
	if _, err := io.ReadFull(r, buf); err != nil {
		return FrameHeader{}, nil, buf, err
	}
	h, err := ParseFrameHeader(buf, max)
	if err != nil {
		return h, nil, buf, err
	}
	if cap(buf) < int(h.Size) {
		nb := make([]byte, h.Size)
		copy(nb, buf[:8])
		buf = nb
	}
	buf = buf[:h.Size]
	if _, err := io.ReadFull(r, buf[8:]); err != nil {
		return h, nil, buf, err
	}
	return h, buf[int(h.DOff)*4:], buf, nil
}

// DecodeFrame decodes a whole frame (header included) held in b.
func DecodeFrame(b []byte, max uint32) (FrameHeader, Performative, error) {
	if len(b) < 8 {
		return FrameHeader{}, nil, fmt.Errorf("%w: short frame", ErrDecode)
	}
	h, err := ParseFrameHeader(b, max)
	if err != nil {
		return h, nil, err
	}
	if uint32(len(b)) != h.Size {
		return h, nil, fmt.Errorf("%w: frame size %d, have %d bytes", ErrDecode, h.Size, len(b))
	}
	body := b[int(h.DOff)*4:]
	if len(body) == 0 {
		return h, nil, nil
	}
	p, _, err := DecodePerformative(body)
	if err != nil {
		return h, nil, err
	}
	if err := checkFrameType(h.Type, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

// checkFrameType refuses SASL bodies in AMQP frames and vice versa.
func checkFrameType(typ uint8, p Performative) error {
	sasl := p.descriptor() >= descSASLMechs
	if sasl != (typ == FrameSASL) {
		return fmt.Errorf("%w: %s in a frame of type %d", ErrDecode, Name(p), typ)
	}
	return nil
}

// DecodeBody decodes a frame body read by ReadFrame; nil for a heartbeat.
func DecodeBody(typ uint8, body []byte) (Performative, error) {
	if len(body) == 0 {
		return nil, nil
	}
	p, _, err := DecodePerformative(body)
	if err != nil {
		return nil, err
	}
	if err := checkFrameType(typ, p); err != nil {
		return nil, err
	}
	return p, nil
}

// AppendFrame appends a frame carrying p (nil: an empty heartbeat frame)
// and payload (transfers only).
func AppendFrame(dst []byte, typ uint8, channel uint16, p Performative, payload []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 2, typ, byte(channel>>8), byte(channel))
	if p != nil {
		var err error
		if dst, err = AppendValue(dst, p); err != nil {
			return nil, err
		}
		dst = append(dst, payload...)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}
