package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// sasPrefix starts every SAS token (reference §2.1).
const sasPrefix = "SharedAccessSignature "

// maxTokenLen caps what ParseSAS looks at. Real tokens are under 400 bytes
// (host ≤ 255, device id ≤ 128, 44-byte signature); 4 KiB leaves room for long
// policy names and host names without letting a peer make us scan megabytes.
const maxTokenLen = 4096

// maxExpiry is 9999-12-31T23:59:59Z. Larger se values would overflow time
// arithmetic; no SDK sends them.
const maxExpiry = 253402300799

// SAS is a parsed shared access signature token (reference §2.1).
type SAS struct {
	Resource  string // raw sr exactly as in the token; the HMAC covers these bytes
	Signature string // URL-decoded sig: standard base64 of the HMAC-SHA256
	Expiry    int64  // se, seconds since the Unix epoch (fraction dropped)
	KeyName   string // URL-decoded skn; empty for device and module keys

	// rawExpiry is se exactly as in the token: the string-to-sign uses it
	// ("1796304914.0" signs differently from "1796304914"). Empty for a SAS
	// built by hand, then Expiry is formatted in decimal.
	rawExpiry string
}

// ParseSAS parses "SharedAccessSignature k=v&k=v...". Fields may come in any
// order and their names are matched case-insensitively (edgeHub); sr, sig and
// se are required, skn is optional but may not be empty, a field may not
// appear twice, and unknown fields are ignored (they are not signed and mean
// nothing). Values are split at the first '='. sig and skn are
// percent-decoded ('+' stays '+'); sr is kept raw for the signature, see
// [SAS.Audience] for its decoded form.
//
// se must be a non-negative decimal integer of seconds; a fractional part of
// digits ("1796304914.0") is accepted and dropped, because edgeHub parses se
// as a double and the signature covers the literal text anyway. Signs,
// exponents and values past year 9999 are refused.
//
// Errors wrap ErrMalformedToken and never quote the token. When sig and skn
// carry no escapes ParseSAS does not allocate.
func ParseSAS(token string) (SAS, error) {
	var s SAS
	if len(token) > maxTokenLen {
		return SAS{}, errTokenTooLong
	}
	rest, ok := strings.CutPrefix(token, sasPrefix)
	if !ok {
		return SAS{}, errNoPrefix
	}
	var haveSr, haveSig, haveSe, haveSkn bool
	var rawSig, rawSkn string
	for {
		field, next, more := strings.Cut(rest, "&")
		if field == "" {
			return SAS{}, errEmptyField
		}
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return SAS{}, errFieldNoValue
		}
		var seen *bool
		switch {
		case strings.EqualFold(name, "sr"):
			seen, s.Resource = &haveSr, value
		case strings.EqualFold(name, "sig"):
			seen, rawSig = &haveSig, value
		case strings.EqualFold(name, "se"):
			seen, s.rawExpiry = &haveSe, value
		case strings.EqualFold(name, "skn"):
			seen, rawSkn = &haveSkn, value
		}
		if seen != nil {
			if *seen {
				return SAS{}, errDuplicateField
			}
			*seen = true
		}
		if !more {
			break
		}
		rest = next
	}
	switch {
	case s.Resource == "":
		return SAS{}, errMissingSr
	case rawSig == "":
		return SAS{}, errMissingSig
	case s.rawExpiry == "":
		return SAS{}, errMissingSe
	case haveSkn && rawSkn == "":
		return SAS{}, errEmptySkn
	}
	exp, err := parseExpiry(s.rawExpiry)
	if err != nil {
		return SAS{}, err
	}
	s.Expiry = exp
	if s.Signature, ok = pctDecode(rawSig); !ok {
		return SAS{}, errBadEscapeSig
	}
	if haveSkn {
		if s.KeyName, ok = pctDecode(rawSkn); !ok || s.KeyName == "" {
			return SAS{}, errBadEscapeSkn
		}
	}
	return s, nil
}

// parseExpiry parses se: digits, optionally "." and more digits.
func parseExpiry(v string) (int64, error) {
	whole, frac, dot := strings.Cut(v, ".")
	if whole == "" || (dot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, errBadSe
	}
	var n int64
	for i := 0; i < len(whole); i++ {
		n = n*10 + int64(whole[i]-'0')
		if n > maxExpiry {
			return 0, errSeRange
		}
	}
	return n, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// expiryText is se as it was signed.
func (s SAS) expiryText(buf []byte) []byte {
	if s.rawExpiry != "" {
		return append(buf, s.rawExpiry...)
	}
	return strconv.AppendInt(buf, s.Expiry, 10)
}

// Verify reports whether the token is signed by key (standard base64, as
// stored in the registry): HMAC-SHA256(base64decode(key), rawSr + "\n" + rawSe)
// equals the decoded sig, compared in constant time (reference §2.2–2.3).
// An empty or undecodable key never verifies, so a device or policy without
// keys cannot be impersonated with an empty-key HMAC. Verify does not
// allocate for keys up to 96 bytes and sr up to about 430 bytes.
func (s SAS) Verify(key string) bool {
	if len(s.Signature) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return false
	}
	var sig [sha256.Size + 1]byte // one spare byte: DecodedLen(44) is 33
	n, err := base64.StdEncoding.Decode(sig[:], []byte(s.Signature))
	if err != nil || n != sha256.Size {
		return false
	}
	var seBuf [24]byte
	mac, ok := computeMAC(key, s.Resource, s.expiryText(seBuf[:0]))
	return ok && subtle.ConstantTimeCompare(mac[:], sig[:n]) == 1
}

// computeMAC returns HMAC-SHA256(base64decode(key), resource + "\n" + se).
func computeMAC(key, resource string, se []byte) ([sha256.Size]byte, bool) {
	var keyBuf [96]byte // IoT Hub keys are 16–64 bytes
	k := keyBuf[:]
	if base64.StdEncoding.DecodedLen(len(key)) > len(keyBuf) {
		k = make([]byte, base64.StdEncoding.DecodedLen(len(key)))
	}
	n, err := base64.StdEncoding.Decode(k, []byte(key))
	if key == "" || err != nil || n == 0 {
		return [sha256.Size]byte{}, false
	}
	return hmacSHA256(k[:n], resource, se), true
}

// hmacSHA256 is HMAC-SHA256 (RFC 2104) of resource + "\n" + se, computed with
// sha256.Sum256 over stack buffers. crypto/hmac allocates five objects per
// key (state, two digests, two pads) and that was most of the hot path's
// cost (BenchmarkAuthenticateSAS: 11 allocs, 5.4 µs with crypto/hmac). The
// construction is the textbook one; TestHMACMatchesStdlib and FuzzParseSAS
// check it against crypto/hmac.
func hmacSHA256(key []byte, resource string, se []byte) [sha256.Size]byte {
	const blockSize = 64 // SHA-256 block size
	var k0 [blockSize]byte
	if len(key) > blockSize {
		h := sha256.Sum256(key)
		copy(k0[:], h[:])
	} else {
		copy(k0[:], key)
	}
	var innerBuf [512]byte
	inner := innerBuf[:0]
	if n := blockSize + len(resource) + 1 + len(se); n > len(innerBuf) {
		inner = make([]byte, 0, n)
	}
	for _, b := range k0 {
		inner = append(inner, b^0x36)
	}
	inner = append(inner, resource...)
	inner = append(inner, '\n')
	inner = append(inner, se...)
	ih := sha256.Sum256(inner)
	var outer [blockSize + sha256.Size]byte
	for i, b := range k0 {
		outer[i] = b ^ 0x5c
	}
	copy(outer[blockSize:], ih[:])
	return sha256.Sum256(outer[:])
}

// Audience percent-decodes sr and splits it into the host and the path
// segments after it: "host/devices/dev1" → ("host", ["devices" "dev1"]).
// Decoding is pure percent-decoding (either hex case; '+' stays '+', since
// device ids may contain it); an unencoded sr decodes to itself. An invalid
// escape, an empty host or an empty segment ("host/", "a//b") is refused with
// ErrMalformedToken.
func (s SAS) Audience() (host string, path []string, err error) {
	host, rest, hasPath, err := splitAudience(s.Resource)
	if err != nil || !hasPath {
		return host, nil, err
	}
	path = strings.Split(rest, "/")
	for _, p := range path {
		if p == "" {
			return "", nil, errEmptySegment
		}
	}
	return host, path, nil
}

// splitAudience decodes sr and cuts it at the first '/'.
func splitAudience(rawSr string) (host, rest string, hasPath bool, err error) {
	dec, ok := pctDecode(rawSr)
	if !ok {
		return "", "", false, errBadEscapeSr
	}
	host, rest, hasPath = strings.Cut(dec, "/")
	if host == "" {
		return "", "", false, errEmptyHost
	}
	return host, rest, hasPath, nil
}

// maxSegments is the longest path the authenticator cares about:
// devices/{id}/modules/{mid}. Longer paths are never a device audience.
const maxSegments = 4

// pathSegments splits rest without allocating; n counts all segments, seg
// holds the first maxSegments.
func pathSegments(rest string, hasPath bool) (seg [maxSegments]string, n int, err error) {
	if !hasPath {
		return seg, 0, nil
	}
	for {
		p, next, more := strings.Cut(rest, "/")
		if p == "" {
			return seg, 0, errEmptySegment
		}
		if n < maxSegments {
			seg[n] = p
		}
		n++
		if !more {
			return seg, n, nil
		}
		rest = next
	}
}

// checkDeviceAudience decides whether the decoded path covers the device.
// A device key must name exactly devices/{id}; a policy key may name any
// path-segment prefix of it ("", "devices", "devices/{id}"): "/a/b" covers
// "/a/b/c" but not "/a/bc" (reference §2.4). Module paths are refused as
// such whatever the key. Ids compare exactly (registry ids are case-sensitive).
func checkDeviceAudience(rest string, hasPath bool, deviceID string, prefixOK bool) error {
	seg, n, err := pathSegments(rest, hasPath)
	if err != nil {
		return err
	}
	if n == 4 && seg[0] == "devices" && seg[2] == "modules" {
		return errModuleAudience
	}
	if !prefixOK {
		if n == 2 && seg[0] == "devices" && seg[1] == deviceID {
			return nil
		}
		return errAudienceDevice
	}
	if n <= 2 && (n < 1 || seg[0] == "devices") && (n < 2 || seg[1] == deviceID) {
		return nil
	}
	return errAudiencePolicy
}

// pctDecode decodes %XX escapes in either hex case and nothing else: '+'
// stays '+'. It returns s itself when there is nothing to decode, and false
// for a truncated or non-hex escape.
func pctDecode(s string) (string, bool) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Sign mints a SAS token the way the Node SDK does (reference §2.1–2.2):
// "SharedAccessSignature sr=<resource>&sig=<sig>[&skn=<keyName>]&se=<expiry>",
// with sig = base64(HMAC-SHA256(base64decode(key), resource + "\n" + se)),
// URL-encoded, and se = expiry in whole Unix seconds. resource is used
// literally: pass EncodeResource("host/devices/id") for a hub token, or the
// unencoded form for DPS. keyName (a policy name, or "registration" for DPS)
// is URL-encoded; empty means no skn. Sign returns "" when key is not
// standard base64 or decodes to nothing.
func Sign(resource, key string, expiry time.Time, keyName string) string {
	se := strconv.FormatInt(expiry.Unix(), 10)
	mac, ok := computeMAC(key, resource, []byte(se))
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteString(sasPrefix)
	b.WriteString("sr=")
	b.WriteString(resource)
	b.WriteString("&sig=")
	b.WriteString(EncodeResource(base64.StdEncoding.EncodeToString(mac[:])))
	if keyName != "" {
		b.WriteString("&skn=")
		b.WriteString(EncodeResource(keyName))
	}
	b.WriteString("&se=")
	b.WriteString(se)
	return b.String()
}

// EncodeResource percent-encodes s like the Node SDK's
// encodeUriComponentStrict (reference §2.3): encodeURIComponent (upper-case
// hex for every byte outside A–Z a–z 0–9 - _ . ! ~ * ' ( )) and then
// ! ' ( ) * escaped as well, with JavaScript's toString(16), so '*' becomes
// "%2a" in lower case. Bytes are encoded one by one (UTF-8 as is).
func EncodeResource(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const upper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c):
			b.WriteByte(c)
		case c == '*':
			b.WriteString("%2a")
		default:
			b.WriteByte('%')
			b.WriteByte(upper[c>>4])
			b.WriteByte(upper[c&15])
		}
	}
	return b.String()
}

// unreserved are the bytes encodeUriComponentStrict leaves alone.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}
