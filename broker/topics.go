package broker

import "strings"

// Topic rules of reference §3.5, decided from the identity held in memory.
// Device ids may legally contain '+' and '#' (reference §7.3); in a
// subscription filter those are wildcards, so such devices cannot subscribe
// to their devicebound topic at all rather than to someone else's.

const (
	eventsSeg      = "/messages/events"
	deviceboundSeg = "/messages/devicebound/"
)

// devicePublishAllowed reports whether device id may publish to topic.
func devicePublishAllowed(id, topic string) bool {
	if rest, ok := ownDevicePath(id, topic); ok {
		// devices/{id}/messages/events and everything below it (property bag).
		return rest == eventsSeg || strings.HasPrefix(rest, eventsSeg+"/")
	}
	return strings.HasPrefix(topic, "$iothub/twin/GET/") ||
		strings.HasPrefix(topic, "$iothub/twin/PATCH/properties/reported/") ||
		strings.HasPrefix(topic, "$iothub/methods/res/")
}

// deviceSubscribeAllowed reports whether device id may subscribe to filter.
func deviceSubscribeAllowed(id, filter string) bool {
	switch filter {
	case "$iothub/methods/POST/#", "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#":
		return true
	}
	if strings.ContainsAny(id, "+#") {
		return false
	}
	rest, ok := ownDevicePath(id, filter)
	if !ok || !strings.HasPrefix(rest, deviceboundSeg) {
		return false
	}
	// Below devicebound/ only a trailing '#' may be a wildcard.
	tail := rest[len(deviceboundSeg):]
	if tail == "#" {
		return true
	}
	return !strings.ContainsAny(tail, "+#")
}

// servicePublishAllowed: a service sends cloud-to-device messages only.
func servicePublishAllowed(topic string) bool {
	id, rest, ok := splitDevicePath(topic)
	return ok && id != "" && strings.HasPrefix(rest, deviceboundSeg)
}

// serviceSubscribeAllowed: a service reads telemetry of one device or all
// (devices/+/messages/events/#).
func serviceSubscribeAllowed(filter string) bool {
	id, rest, ok := splitDevicePath(filter)
	if !ok || id == "" || (id != "+" && strings.ContainsAny(id, "+#")) {
		return false
	}
	if rest != eventsSeg+"/#" && rest != eventsSeg+"/" && !strings.HasPrefix(rest, eventsSeg+"/") {
		return false
	}
	tail := strings.TrimPrefix(rest, eventsSeg+"/")
	return tail == "#" || !strings.ContainsAny(tail, "+#")
}

// ownDevicePath returns what follows "devices/{id}" in topic.
func ownDevicePath(id, topic string) (string, bool) {
	const p = "devices/"
	if len(topic) <= len(p)+len(id) || topic[:len(p)] != p || topic[len(p):len(p)+len(id)] != id {
		return "", false
	}
	rest := topic[len(p)+len(id):]
	return rest, rest[0] == '/'
}

// splitDevicePath splits "devices/{id}/rest" into id and "/rest".
func splitDevicePath(topic string) (id, rest string, ok bool) {
	s, found := strings.CutPrefix(topic, "devices/")
	if !found {
		return "", "", false
	}
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}
