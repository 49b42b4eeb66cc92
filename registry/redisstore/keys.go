package redisstore

import (
	"strings"
)

// keyspace names the keys and channels of one hub. Every name carries the
// same hash tag, {<hub>}, so all of a hub's keys live in one Cluster slot
// (see doc.go for why).
type keyspace struct {
	prefix string // "hubgate:{<escaped hub>}:"
}

func newKeyspace(hub string) keyspace {
	return keyspace{prefix: "hubgate:{" + escapeHub(hub) + "}:"}
}

// escapeHub percent-encodes every byte of a hub name outside
// [A-Za-z0-9._-], so a name can neither end the hash tag early ("}") nor
// run into the key's separators (":").
func escapeHub(hub string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(hub); i++ {
		c := hub[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Record keys end in the record's id or name, which are structural (never
// credential material); the fixed segment before it keeps the kinds apart.
func (k keyspace) device(id string) string { return k.prefix + "dev:" + id }
func (k keyspace) deviceIndex() string     { return k.prefix + "devices" }
func (k keyspace) ca(name string) string   { return k.prefix + "ca:" + name }
func (k keyspace) caIndex() string         { return k.prefix + "cas" }
func (k keyspace) policies() string        { return k.prefix + "policies" }
func (k keyspace) changes() string         { return k.prefix + "changes" }
func (k keyspace) sessions() string        { return k.prefix + "sessions" }
