// Package wire is the AMQP 1.0 codec of hubgate's AMQP head: the type system
// (OASIS AMQP 1.0 §1.6 primitive types, §1.2 described types and
// constructors), the frame layout (§2.3.1 frame header, §2.3.2 AMQP frames,
// §5.3.1 SASL frames), the protocol headers (§2.2 "AMQP 0 1 0 0",
// §5.2.1 "AMQP 3 1 0 0"), the performatives (§2.7.1–§2.7.9, §2.8.14 error,
// §3.4 delivery states, §3.5.3 source, §3.5.4 target) and the SASL frames
// (§5.3.3.1–§5.3.3.6).
//
// Bare messages (§3.2) are not decoded here: transfer payloads are handed up
// as bytes.
//
// Decoding is defensive: every length is checked against the bytes present
// before anything is allocated, nesting is bounded (maxDepth), and malformed
// input returns an error wrapping ErrDecode, never panics. Fuzz targets cover
// frames, performatives and SASL frames.
//
// Values decode to Go types as follows: null → nil, boolean → bool,
// ubyte/ushort/uint/ulong → uint8/16/32/64, byte/short/int/long →
// int8/16/32/64, float/double → float32/64, decimal32/64/128 → Decimal32/
// 64/128, char → Char, timestamp → time.Time (UTC, ms), uuid → UUID,
// binary → []byte, string → string, symbol → Symbol, list → []any,
// map → Map (ordered pairs), array → []Symbol for symbol arrays, else Array,
// described → Described. Encoding accepts the same types.
//
// May import: the standard library only.
package wire
