package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrDecode is wrapped by every decoding error; the engine answers it with
// amqp:decode-error (§2.8.15).
var ErrDecode = errors.New("amqp: decode error")

func decodeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDecode, fmt.Sprintf(format, args...))
}

// Symbol is an AMQP symbol (§1.6.21): ASCII, used for names and conditions.
type Symbol string

// UUID is an AMQP uuid (§1.6.18), RFC 4122 byte order.
type UUID [16]byte

func (u UUID) String() string {
	const hx = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hx[c>>4], hx[c&0xf]
		j += 2
	}
	return string(b[:])
}

// Char is an AMQP char (§1.6.16), a UTF-32BE code point.
type Char rune

// Decimal32, Decimal64 and Decimal128 carry IEEE 754 decimal encodings
// (§1.6.13–15) as raw bytes; hubgate never computes with them.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// Described is a described value (§1.2) whose descriptor is not one this
// package decodes into a struct.
type Described struct {
	Descriptor any // uint64 or Symbol
	Value      any
}

// KV is one entry of a Map.
type KV struct{ Key, Value any }

// Map is an AMQP map (§1.6.23) in wire order. Keys are compared with Get.
type Map []KV

// Get returns the value of the first entry whose key equals key; keys of
// types Symbol, string, uint64 and int64 compare, others never match.
func (m Map) Get(key any) (any, bool) {
	for _, kv := range m {
		if keyEqual(kv.Key, key) {
			return kv.Value, true
		}
	}
	return nil, false
}

func keyEqual(a, b any) bool {
	switch x := a.(type) {
	case Symbol:
		y, ok := b.(Symbol)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case uint64:
		y, ok := b.(uint64)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	}
	return false
}

// Array is an AMQP array (§1.6.24) of elements that are not symbols (those
// decode to []Symbol). All elements must have the same Go type.
type Array []any

// Type codes (§1.6 encodings).
const (
	codeDescribed  = 0x00
	codeNull       = 0x40
	codeBool       = 0x56
	codeTrue       = 0x41
	codeFalse      = 0x42
	codeUbyte      = 0x50
	codeUshort     = 0x60
	codeUint       = 0x70
	codeSmallUint  = 0x52
	codeUint0      = 0x43
	codeUlong      = 0x80
	codeSmallUlong = 0x53
	codeUlong0     = 0x44
	codeByte       = 0x51
	codeShort      = 0x61
	codeInt        = 0x71
	codeSmallInt   = 0x54
	codeLong       = 0x81
	codeSmallLong  = 0x55
	codeFloat      = 0x72
	codeDouble     = 0x82
	codeDecimal32  = 0x74
	codeDecimal64  = 0x84
	codeDecimal128 = 0x94
	codeChar       = 0x73
	codeTimestamp  = 0x83
	codeUUID       = 0x98
	codeVbin8      = 0xa0
	codeVbin32     = 0xb0
	codeStr8       = 0xa1
	codeStr32      = 0xb1
	codeSym8       = 0xa3
	codeSym32      = 0xb3
	codeList0      = 0x45
	codeList8      = 0xc0
	codeList32     = 0xd0
	codeMap8       = 0xc1
	codeMap32      = 0xd1
	codeArray8     = 0xe0
	codeArray32    = 0xf0
)

// maxDepth bounds nesting of lists, maps, arrays and descriptors, so a
// hostile frame cannot exhaust the stack.
const maxDepth = 32

// ReadValue decodes one value from b and returns it with the number of bytes
// it took.
func ReadValue(b []byte) (v any, n int, err error) {
	return readValue(b, 0)
}

func readValue(b []byte, depth int) (any, int, error) {
	if depth > maxDepth {
		return nil, 0, decodeErr("nesting deeper than %d", maxDepth)
	}
	if len(b) == 0 {
		return nil, 0, decodeErr("missing constructor")
	}
	code := b[0]
	if code == codeDescribed {
		desc, n1, err := readValue(b[1:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		switch desc.(type) {
		case uint64, Symbol:
		default:
			return nil, 0, decodeErr("descriptor of type %T", desc)
		}
		val, n2, err := readValue(b[1+n1:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		return Described{Descriptor: desc, Value: val}, 1 + n1 + n2, nil
	}
	v, n, err := readPayload(code, b[1:], depth)
	return v, 1 + n, err
}

// fixedWidth returns the payload width of fixed-width codes, -1 otherwise.
func fixedWidth(code byte) int {
	switch code {
	case codeNull, codeTrue, codeFalse, codeUint0, codeUlong0, codeList0:
		return 0
	case codeBool, codeUbyte, codeSmallUint, codeSmallUlong, codeByte, codeSmallInt, codeSmallLong:
		return 1
	case codeUshort, codeShort:
		return 2
	case codeUint, codeInt, codeFloat, codeDecimal32, codeChar:
		return 4
	case codeUlong, codeLong, codeDouble, codeDecimal64, codeTimestamp:
		return 8
	case codeDecimal128, codeUUID:
		return 16
	}
	return -1
}

// readPayload decodes the value after constructor code.
func readPayload(code byte, b []byte, depth int) (any, int, error) {
	if w := fixedWidth(code); w >= 0 {
		if len(b) < w {
			return nil, 0, decodeErr("type 0x%02x needs %d bytes, have %d", code, w, len(b))
		}
		return fixedValue(code, b[:w]), w, nil
	}
	switch code {
	case codeVbin8, codeStr8, codeSym8:
		if len(b) < 1 {
			return nil, 0, decodeErr("truncated size")
		}
		size := int(b[0])
		if len(b)-1 < size {
			return nil, 0, decodeErr("variable value of %d bytes, have %d", size, len(b)-1)
		}
		return variableValue(code, b[1:1+size]), 1 + size, nil
	case codeVbin32, codeStr32, codeSym32:
		if len(b) < 4 {
			return nil, 0, decodeErr("truncated size")
		}
		size := binary.BigEndian.Uint32(b)
		if uint64(len(b)-4) < uint64(size) {
			return nil, 0, decodeErr("variable value of %d bytes, have %d", size, len(b)-4)
		}
		return variableValue(code, b[4:4+int(size)]), 4 + int(size), nil
	case codeList8, codeList32, codeMap8, codeMap32:
		size, count, hdr, err := compoundHeader(code == codeList8 || code == codeMap8, b)
		if err != nil {
			return nil, 0, err
		}
		body := b[hdr : hdr+size]
		if count > len(body) { // every element takes at least one byte
			return nil, 0, decodeErr("compound count %d exceeds its %d bytes", count, len(body))
		}
		items := make([]any, count)
		off := 0
		for i := range items {
			v, n, err := readValue(body[off:], depth+1)
			if err != nil {
				return nil, 0, err
			}
			items[i] = v
			off += n
		}
		if off != len(body) {
			return nil, 0, decodeErr("compound size %d but elements take %d", len(body), off)
		}
		if code == codeMap8 || code == codeMap32 {
			if count%2 != 0 {
				return nil, 0, decodeErr("map with odd element count %d", count)
			}
			m := make(Map, count/2)
			for i := range m {
				m[i] = KV{items[2*i], items[2*i+1]}
			}
			return m, hdr + size, nil
		}
		return items, hdr + size, nil
	case codeArray8, codeArray32:
		size, count, hdr, err := compoundHeader(code == codeArray8, b)
		if err != nil {
			return nil, 0, err
		}
		body := b[hdr : hdr+size]
		v, err := readArray(body, count, depth)
		if err != nil {
			return nil, 0, err
		}
		return v, hdr + size, nil
	}
	return nil, 0, decodeErr("unknown type code 0x%02x", code)
}

// compoundHeader reads size and count of a list, map or array (§1.6.22–24).
func compoundHeader(small bool, b []byte) (size, count, hdr int, err error) {
	if small {
		if len(b) < 2 {
			return 0, 0, 0, decodeErr("truncated compound header")
		}
		size, count, hdr = int(b[0]), int(b[1]), 2
		if size < 1 {
			return 0, 0, 0, decodeErr("compound size smaller than its count")
		}
		size-- // the count is part of the size
	} else {
		if len(b) < 8 {
			return 0, 0, 0, decodeErr("truncated compound header")
		}
		s, c := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
		if s < 4 {
			return 0, 0, 0, decodeErr("compound size smaller than its count")
		}
		if uint64(s-4) > uint64(len(b)-8) || uint64(c) > uint64(len(b)) {
			return 0, 0, 0, decodeErr("compound of %d bytes, have %d", s-4, len(b)-8)
		}
		size, count, hdr = int(s-4), int(c), 8
	}
	if size > len(b)-hdr {
		return 0, 0, 0, decodeErr("compound of %d bytes, have %d", size, len(b)-hdr)
	}
	return size, count, hdr, nil
}

// maxZeroWidthArray caps arrays of zero-width elements (null, true, ...),
// whose count is otherwise unbounded by the bytes present.
const maxZeroWidthArray = 256

func readArray(body []byte, count, depth int) (any, error) {
	if depth+1 > maxDepth {
		return nil, decodeErr("nesting deeper than %d", maxDepth)
	}
	if len(body) == 0 {
		if count == 0 {
			return Array{}, nil
		}
		return nil, decodeErr("array without element constructor")
	}
	// Element constructor, possibly described (§1.6.24 "array of described").
	var desc any
	off := 0
	if body[0] == codeDescribed {
		d, n, err := readValue(body[1:], depth+2)
		if err != nil {
			return nil, err
		}
		desc = d
		off = 1 + n
	}
	if off >= len(body) {
		return nil, decodeErr("array without element constructor")
	}
	code := body[off]
	off++
	rest := body[off:]
	if count > len(rest) && (fixedWidth(code) != 0 || count > maxZeroWidthArray) {
		return nil, decodeErr("array count %d exceeds its %d bytes", count, len(rest))
	}
	if (code == codeSym8 || code == codeSym32) && desc == nil {
		out := make([]Symbol, count)
		p := 0
		for i := range out {
			v, n, err := readPayload(code, rest[p:], depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v.(Symbol)
			p += n
		}
		if p != len(rest) {
			return nil, decodeErr("array size mismatch")
		}
		return out, nil
	}
	out := make(Array, count)
	p := 0
	for i := range out {
		v, n, err := readPayload(code, rest[p:], depth+1)
		if err != nil {
			return nil, err
		}
		if desc != nil {
			v = Described{Descriptor: desc, Value: v}
		}
		out[i] = v
		p += n
	}
	if p != len(rest) {
		return nil, decodeErr("array size mismatch")
	}
	return out, nil
}

func fixedValue(code byte, b []byte) any {
	be := binary.BigEndian
	switch code {
	case codeNull:
		return nil
	case codeTrue:
		return true
	case codeFalse:
		return false
	case codeBool:
		return b[0] != 0
	case codeUbyte:
		return b[0]
	case codeUshort:
		return be.Uint16(b)
	case codeUint:
		return be.Uint32(b)
	case codeSmallUint:
		return uint32(b[0])
	case codeUint0:
		return uint32(0)
	case codeUlong:
		return be.Uint64(b)
	case codeSmallUlong:
		return uint64(b[0])
	case codeUlong0:
		return uint64(0)
	case codeByte:
		return int8(b[0])
	case codeShort:
		return int16(be.Uint16(b))
	case codeInt:
		return int32(be.Uint32(b))
	case codeSmallInt:
		return int32(int8(b[0]))
	case codeLong:
		return int64(be.Uint64(b))
	case codeSmallLong:
		return int64(int8(b[0]))
	case codeFloat:
		return math.Float32frombits(be.Uint32(b))
	case codeDouble:
		return math.Float64frombits(be.Uint64(b))
	case codeDecimal32:
		return Decimal32(b)
	case codeDecimal64:
		return Decimal64(b)
	case codeDecimal128:
		return Decimal128(b)
	case codeChar:
		return Char(be.Uint32(b))
	case codeTimestamp:
		return time.UnixMilli(int64(be.Uint64(b))).UTC()
	case codeUUID:
		return UUID(b)
	case codeList0:
		return []any{}
	}
	panic("unreachable")
}

func variableValue(code byte, b []byte) any {
	switch code {
	case codeVbin8, codeVbin32:
		return append([]byte{}, b...)
	case codeStr8, codeStr32:
		return string(b)
	}
	return Symbol(b)
}

// AppendValue encodes v (one of the Go types listed in the package doc, or a
// Performative / DeliveryState / *Error / *Source / *Target) to dst.
func AppendValue(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("amqp: encode: nesting deeper than %d", maxDepth)
	}
	if isNil(v) {
		return append(dst, codeNull), nil
	}
	be := binary.BigEndian
	switch x := v.(type) {
	case bool:
		if x {
			return append(dst, codeTrue), nil
		}
		return append(dst, codeFalse), nil
	case uint8:
		return append(dst, codeUbyte, x), nil
	case uint16:
		return be.AppendUint16(append(dst, codeUshort), x), nil
	case uint32:
		switch {
		case x == 0:
			return append(dst, codeUint0), nil
		case x < 256:
			return append(dst, codeSmallUint, byte(x)), nil
		}
		return be.AppendUint32(append(dst, codeUint), x), nil
	case uint64:
		switch {
		case x == 0:
			return append(dst, codeUlong0), nil
		case x < 256:
			return append(dst, codeSmallUlong, byte(x)), nil
		}
		return be.AppendUint64(append(dst, codeUlong), x), nil
	case int8:
		return append(dst, codeByte, byte(x)), nil
	case int16:
		return be.AppendUint16(append(dst, codeShort), uint16(x)), nil
	case int32:
		if x >= -128 && x <= 127 {
			return append(dst, codeSmallInt, byte(x)), nil
		}
		return be.AppendUint32(append(dst, codeInt), uint32(x)), nil
	case int64:
		if x >= -128 && x <= 127 {
			return append(dst, codeSmallLong, byte(x)), nil
		}
		return be.AppendUint64(append(dst, codeLong), uint64(x)), nil
	case int:
		return appendValue(dst, int64(x), depth)
	case float32:
		return be.AppendUint32(append(dst, codeFloat), math.Float32bits(x)), nil
	case float64:
		return be.AppendUint64(append(dst, codeDouble), math.Float64bits(x)), nil
	case Decimal32:
		return append(append(dst, codeDecimal32), x[:]...), nil
	case Decimal64:
		return append(append(dst, codeDecimal64), x[:]...), nil
	case Decimal128:
		return append(append(dst, codeDecimal128), x[:]...), nil
	case Char:
		return be.AppendUint32(append(dst, codeChar), uint32(x)), nil
	case time.Time:
		return be.AppendUint64(append(dst, codeTimestamp), uint64(x.UnixMilli())), nil
	case UUID:
		return append(append(dst, codeUUID), x[:]...), nil
	case []byte:
		return appendVariable(dst, codeVbin8, codeVbin32, len(x), func(d []byte) []byte { return append(d, x...) }), nil
	case string:
		return appendVariable(dst, codeStr8, codeStr32, len(x), func(d []byte) []byte { return append(d, x...) }), nil
	case Symbol:
		return appendVariable(dst, codeSym8, codeSym32, len(x), func(d []byte) []byte { return append(d, x...) }), nil
	case []any:
		return appendList(dst, x, depth)
	case Map:
		items := make([]any, 0, 2*len(x))
		for _, kv := range x {
			items = append(items, kv.Key, kv.Value)
		}
		return appendCompound(dst, codeMap8, codeMap32, items, depth)
	case []Symbol:
		elems := make(Array, len(x))
		for i, s := range x {
			elems[i] = s
		}
		return appendArray(dst, elems, depth)
	case Array:
		return appendArray(dst, x, depth)
	case Described:
		dst = append(dst, codeDescribed)
		dst, err := appendValue(dst, x.Descriptor, depth+1)
		if err != nil {
			return nil, err
		}
		return appendValue(dst, x.Value, depth+1)
	case describedType:
		dst = append(dst, codeDescribed, codeSmallUlong, byte(x.descriptor()))
		return appendList(dst, trimNil(x.fields()), depth+1)
	}
	return nil, fmt.Errorf("amqp: encode: unsupported type %T", v)
}

func appendVariable(dst []byte, small, large byte, n int, body func([]byte) []byte) []byte {
	if n < 256 {
		dst = append(dst, small, byte(n))
	} else {
		dst = binary.BigEndian.AppendUint32(append(dst, large), uint32(n))
	}
	return body(dst)
}

func appendList(dst []byte, items []any, depth int) ([]byte, error) {
	if len(items) == 0 {
		return append(dst, codeList0), nil
	}
	return appendCompound(dst, codeList8, codeList32, items, depth)
}

// appendCompound writes the 32-bit form, then shrinks to the 8-bit form when
// the body fits (§1.6.22: size counts the count field).
func appendCompound(dst []byte, small, large byte, items []any, depth int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, large, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	for _, it := range items {
		if dst, err = appendValue(dst, it, depth+1); err != nil {
			return nil, err
		}
	}
	body := len(dst) - start - 9
	if body+1 < 256 && len(items) < 256 {
		dst[start] = small
		dst[start+1] = byte(body + 1)
		dst[start+2] = byte(len(items))
		copy(dst[start+3:], dst[start+9:])
		return dst[:len(dst)-6], nil
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(body+4))
	binary.BigEndian.PutUint32(dst[start+5:], uint32(len(items)))
	return dst, nil
}

// appendArray encodes elements with one constructor in their widest form.
func appendArray(dst []byte, elems Array, depth int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, codeArray32, 0, 0, 0, 0, 0, 0, 0, 0)
	var code byte
	if len(elems) == 0 {
		code = codeNull
	} else {
		var ok bool
		if code, ok = arrayCode(elems[0]); !ok {
			return nil, fmt.Errorf("amqp: encode: array of %T", elems[0])
		}
	}
	dst = append(dst, code)
	for _, e := range elems {
		c, ok := arrayCode(e)
		if !ok || c != code {
			return nil, fmt.Errorf("amqp: encode: mixed array element %T", e)
		}
		var err error
		if dst, err = appendArrayElem(dst, code, e, depth); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-5))
	binary.BigEndian.PutUint32(dst[start+5:], uint32(len(elems)))
	return dst, nil
}

func arrayCode(v any) (byte, bool) {
	switch v.(type) {
	case bool:
		return codeBool, true
	case uint8:
		return codeUbyte, true
	case uint16:
		return codeUshort, true
	case uint32:
		return codeUint, true
	case uint64:
		return codeUlong, true
	case int8:
		return codeByte, true
	case int16:
		return codeShort, true
	case int32:
		return codeInt, true
	case int64:
		return codeLong, true
	case float32:
		return codeFloat, true
	case float64:
		return codeDouble, true
	case Char:
		return codeChar, true
	case time.Time:
		return codeTimestamp, true
	case UUID:
		return codeUUID, true
	case []byte:
		return codeVbin32, true
	case string:
		return codeStr32, true
	case Symbol:
		return codeSym32, true
	case []any:
		return codeList32, true
	case Map:
		return codeMap32, true
	}
	return 0, false
}

func appendArrayElem(dst []byte, code byte, v any, depth int) ([]byte, error) {
	be := binary.BigEndian
	switch x := v.(type) {
	case bool:
		if x {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case []byte:
		return append(be.AppendUint32(dst, uint32(len(x))), x...), nil
	case string:
		return append(be.AppendUint32(dst, uint32(len(x))), x...), nil
	case Symbol:
		return append(be.AppendUint32(dst, uint32(len(x))), x...), nil
	case []any, Map:
		// Encode with a constructor, then drop it and widen to the 32-bit form.
		tmp, err := appendValue(nil, v, depth+1)
		if err != nil {
			return nil, err
		}
		return append(dst, widen(tmp, code)...), nil
	}
	tmp, err := appendValue(nil, v, depth+1)
	if err != nil {
		return nil, err
	}
	// Fixed-width: re-encode compact forms (smalluint etc.) at full width.
	w := fixedWidth(code)
	switch x := v.(type) {
	case uint32:
		return be.AppendUint32(dst, x), nil
	case uint64:
		return be.AppendUint64(dst, x), nil
	case int32:
		return be.AppendUint32(dst, uint32(x)), nil
	case int64:
		return be.AppendUint64(dst, uint64(x)), nil
	}
	return append(dst, tmp[len(tmp)-w:]...), nil
}

// widen turns an encoded list or map (constructor included) into the
// payload of its 32-bit form.
func widen(enc []byte, code byte) []byte {
	switch enc[0] {
	case codeList0:
		return []byte{0, 0, 0, 4, 0, 0, 0, 0}
	case codeList8, codeMap8:
		size, count := int(enc[1])-1, enc[2]
		out := binary.BigEndian.AppendUint32(nil, uint32(size+4))
		out = binary.BigEndian.AppendUint32(out, uint32(count))
		return append(out, enc[3:]...)
	}
	return enc[1:]
}

// trimNil drops trailing nil fields: absent trailing fields of a composite
// need not be sent (§1.4).
func trimNil(f []any) []any {
	n := len(f)
	for n > 0 && isNil(f[n-1]) {
		n--
	}
	return f[:n]
}

func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case Map:
		return x == nil
	case []Symbol:
		return x == nil
	case []byte:
		return x == nil
	case *Error:
		return x == nil
	case *Source:
		return x == nil
	case *Target:
		return x == nil
	}
	return false
}
