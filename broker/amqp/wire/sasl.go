package wire

import "bytes"

// SASL mechanism names (§5.3.3.1; RFC 4616 PLAIN, RFC 4505 ANONYMOUS,
// RFC 4422 EXTERNAL; MSSBCBS is the Azure C SDK's "CBS follows" mechanism,
// reference §4.1).
const (
	MechPlain     Symbol = "PLAIN"
	MechAnonymous Symbol = "ANONYMOUS"
	MechExternal  Symbol = "EXTERNAL"
	MechMSSBCBS   Symbol = "MSSBCBS"
)

// maxPlain caps a PLAIN response: a user name and a SAS token fit in 4 KiB.
const maxPlain = 4096

// ParsePlain splits a PLAIN initial response "authzid NUL authcid NUL
// passwd" (RFC 4616 §2). ok is false unless there are exactly two NULs.
func ParsePlain(b []byte) (authzid, user, pass string, ok bool) {
	if len(b) > maxPlain || bytes.Count(b, []byte{0}) != 2 {
		return "", "", "", false
	}
	i := bytes.IndexByte(b, 0)
	j := i + 1 + bytes.IndexByte(b[i+1:], 0)
	return string(b[:i]), string(b[i+1 : j]), string(b[j+1:]), true
}
