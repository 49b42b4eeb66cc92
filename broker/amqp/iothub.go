package amqp

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	amqpmsg "github.com/Azure/go-amqp"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker/amqp/engine"
	"github.com/hubgate/hubgate/broker/amqp/wire"
	"github.com/hubgate/hubgate/registry"
)

type linkKind int

const (
	kindOther linkKind = iota
	kindEvents
	kindDevicebound
	kindTwin
	kindMethods
)

// address is a parsed link address.
type address struct {
	cbs    bool
	device string
	module string
	kind   linkKind
}

// parseAddress accepts amqps://{host}/devices/..., /devices/... and
// devices/... (reference §4.4); fixed words match case-insensitively, ids
// are percent-decoded. A full URL must name one of our hosts.
func parseAddress(s string, hosts []string) (address, bool) {
	if s == "$cbs" || strings.EqualFold(s, "/$cbs") {
		return address{cbs: true}, true
	}
	if rest, ok := cutScheme(s); ok {
		host, path, _ := strings.Cut(rest, "/")
		if h, _, ok := strings.Cut(host, ":"); ok {
			host = h
		}
		known := false
		for _, n := range hosts {
			if strings.EqualFold(n, host) {
				known = true
			}
		}
		if !known {
			return address{}, false
		}
		s = path
	}
	s = strings.TrimPrefix(s, "/")
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	seg := strings.Split(s, "/")
	if len(seg) < 3 || !strings.EqualFold(seg[0], "devices") {
		return address{}, false
	}
	var a address
	var err error
	if a.device, err = url.PathUnescape(seg[1]); err != nil || a.device == "" {
		return address{}, false
	}
	rest := seg[2:]
	if len(rest) >= 2 && strings.EqualFold(rest[0], "modules") {
		if a.module, err = url.PathUnescape(rest[1]); err != nil || a.module == "" {
			return address{}, false
		}
		rest = rest[2:]
	}
	switch {
	case len(rest) == 2 && strings.EqualFold(rest[0], "messages") && strings.EqualFold(rest[1], "events"):
		a.kind = kindEvents
	case len(rest) == 2 && strings.EqualFold(rest[0], "messages") && strings.EqualFold(rest[1], "devicebound"):
		a.kind = kindDevicebound
	case len(rest) == 1 && strings.EqualFold(rest[0], "twin"):
		a.kind = kindTwin
	case len(rest) == 2 && strings.EqualFold(rest[0], "methods") && strings.EqualFold(rest[1], "devicebound"):
		a.kind = kindMethods
	}
	return a, true
}

func cutScheme(s string) (string, bool) {
	for _, p := range []string{"amqps://", "amqp://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return s[len(p):], true
		}
	}
	return "", false
}

// telemetry publishes one device message on the bus (reference §3.6 bag).
func (c *conn) telemetry(deviceID string, raw []byte) wire.DeliveryState {
	var m amqpmsg.Message
	if err := m.UnmarshalBinary(raw); err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: "not an AMQP message"}}
	}
	topic := "devices/" + deviceID + "/messages/events/" + propertyBag(&m)
	if err := c.h.cfg.Bus.Publish(topic, body(&m), 1); err != nil {
		c.h.log.Warn("telemetry not published", "protocol", "amqp", "device_id", deviceID, "error", err)
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrInternal, Description: "message not accepted, retry"}}
	}
	return &wire.Accepted{}
}

// body is the message payload: the Data sections joined, or an AMQP value
// that is a string or binary.
func body(m *amqpmsg.Message) []byte {
	switch len(m.Data) {
	case 0:
	case 1:
		return m.Data[0]
	default:
		var b []byte
		for _, d := range m.Data {
			b = append(b, d...)
		}
		return b
	}
	switch v := m.Value.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	}
	return nil
}

// propertyBag builds the MQTT property bag of a telemetry message, keys and
// values percent-encoded like the Node SDK's (reference §3.6).
func propertyBag(m *amqpmsg.Message) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(authn.EncodeResource(k))
		b.WriteByte('=')
		b.WriteString(authn.EncodeResource(v))
	}
	if p := m.Properties; p != nil {
		if p.MessageID != nil {
			add("$.mid", idString(p.MessageID))
		}
		if p.CorrelationID != nil {
			add("$.cid", idString(p.CorrelationID))
		}
		if p.ContentType != nil {
			add("$.ct", *p.ContentType)
		}
		if p.ContentEncoding != nil {
			add("$.ce", *p.ContentEncoding)
		}
		if p.UserID != nil {
			add("$.uid", string(p.UserID))
		}
		if p.AbsoluteExpiryTime != nil {
			add("$.exp", p.AbsoluteExpiryTime.UTC().Format(time.RFC3339Nano))
		}
	}
	for k, v := range m.ApplicationProperties {
		add(k, fmt.Sprint(v))
	}
	return b.String()
}

// idString renders a message or correlation id (uuid, ulong, binary or
// string) as text.
func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case amqpmsg.UUID:
		return x.String()
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// c2dMessage builds the AMQP message for a bus message on
// devices/{id}/messages/devicebound/{bag}: $.mid, $.cid, $.ct, $.ce, $.to,
// $.uid, $.exp map to properties, other keys to application properties.
func c2dMessage(deviceID, topic string, payload []byte) ([]byte, error) {
	prefix := "devices/" + deviceID + "/messages/devicebound/"
	bag := strings.TrimPrefix(topic, prefix)
	m := amqpmsg.NewMessage(payload)
	to := "/devices/" + deviceID + "/messages/devicebound"
	m.Properties = &amqpmsg.MessageProperties{To: &to}
	for kv := range strings.SplitSeq(bag, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if dk, err := url.PathUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		switch k {
		case "$.mid":
			m.Properties.MessageID = v
		case "$.cid":
			m.Properties.CorrelationID = v
		case "$.ct":
			m.Properties.ContentType = &v
		case "$.ce":
			m.Properties.ContentEncoding = &v
		case "$.to":
			m.Properties.To = &v
		case "$.uid":
			m.Properties.UserID = []byte(v)
		case "$.exp":
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				m.Properties.AbsoluteExpiryTime = &t
			}
		default:
			if m.ApplicationProperties == nil {
				m.ApplicationProperties = map[string]any{}
			}
			m.ApplicationProperties[k] = v
		}
	}
	return m.MarshalBinary()
}

// CBS token types clients send (reference §4.3).
var tokenTypes = map[string]bool{"servicebus.windows.net:sastoken": true, "azure-devices.net:sastoken": true}

func (c *conn) attachCBS(l *engine.Link) *wire.Error {
	if l.Role == wire.RoleSender { // the client's receiver: replies go here
		l.PreSettle = true
		c.mu.Lock()
		c.cbsReply = l
		c.mu.Unlock()
		l.OnDetach = func(l *engine.Link) {
			c.mu.Lock()
			if c.cbsReply == l {
				c.cbsReply = nil
			}
			c.mu.Unlock()
		}
		return nil
	}
	l.OnMessage = func(_ *engine.Link, msg []byte) wire.DeliveryState { return c.putToken(msg) }
	return nil
}

// putToken decides one CBS request and answers it on the client's $cbs
// receiver link (reference §4.3).
func (c *conn) putToken(raw []byte) wire.DeliveryState {
	var m amqpmsg.Message
	if err := m.UnmarshalBinary(raw); err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: "not an AMQP message"}}
	}
	var msgID any
	if m.Properties != nil {
		msgID = m.Properties.MessageID
	}
	status, desc := c.decidePutToken(&m)
	resp := &amqpmsg.Message{
		Properties:            &amqpmsg.MessageProperties{CorrelationID: msgID},
		ApplicationProperties: map[string]any{"status-code": status, "status-description": desc},
	}
	if m.Properties != nil && m.Properties.ReplyTo != nil {
		resp.Properties.To = m.Properties.ReplyTo
	}
	enc, err := resp.MarshalBinary()
	if err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrInternal}}
	}
	c.mu.Lock()
	reply := c.cbsReply
	c.mu.Unlock()
	if reply == nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotAllowed, Description: "attach a receiver from $cbs for the answer"}}
	}
	if err := reply.Send(enc); err != nil {
		c.h.log.Warn("cbs answer not sent", "protocol", "amqp", "error", err)
	}
	return &wire.Accepted{}
}

// decidePutToken returns the CBS status code and description.
func (c *conn) decidePutToken(m *amqpmsg.Message) (int32, string) {
	op, _ := m.ApplicationProperties["operation"].(string)
	typ, _ := m.ApplicationProperties["type"].(string)
	if op != "put-token" {
		return 400, "unsupported operation"
	}
	if !tokenTypes[typ] {
		return 400, "unsupported token type"
	}
	token, ok := m.Value.(string)
	if !ok {
		if d := body(m); d != nil {
			token = string(d)
		}
	}
	sas, err := authn.ParseSAS(token)
	if err != nil {
		c.h.metrics.Connect(c.transport, "sas", "rejected", "malformed_token")
		return 401, "malformed token"
	}
	_, path, err := sas.Audience()
	if err != nil {
		c.h.metrics.Connect(c.transport, "sas", "rejected", "malformed_token")
		return 401, "malformed token"
	}
	// Identity comes from the token's sr, as edgeHub does (reference §4.3).
	if len(path) == 0 || (len(path) == 1 && strings.EqualFold(path[0], "devices")) {
		policy, expires, err := c.h.cfg.Auth.AuthorizePolicy(token, registry.DeviceConnect)
		if err != nil {
			c.refuse("sas_policy", err)
			return statusOf(err)
		}
		_ = policy
		c.h.metrics.Connect(c.transport, "sas_policy", "accepted", "")
		c.mu.Lock()
		c.root, c.rootExp, c.hadGrant = token, expires, true
		c.scheduleLocked()
		c.mu.Unlock()
		return 200, "OK"
	}
	if len(path) < 2 || !strings.EqualFold(path[0], "devices") {
		c.h.metrics.Connect(c.transport, "sas", "rejected", "wrong_audience")
		return 401, "token audience is not a device"
	}
	r := authn.Request{DeviceID: path[1], Token: token, Transport: c.transport}
	if len(path) >= 4 && strings.EqualFold(path[2], "modules") {
		r.ModuleID = path[3]
	}
	c.mu.Lock()
	plainDev := c.plainDev
	c.mu.Unlock()
	if plainDev != "" && plainDev != r.DeviceID {
		c.h.metrics.Connect(c.transport, "sas", "rejected", "identity_mismatch")
		return 401, "this connection is for another device"
	}
	id, err := c.authenticate(r)
	if err != nil {
		// A refused renewal ends what the old token admitted.
		c.dropGrant(r.DeviceID, unauthorized("token refused"))
		return statusOf(err)
	}
	if err := c.addGrant(id); err != nil {
		return statusOf(err)
	}
	return 200, "OK"
}

func statusOf(err error) (int32, string) {
	if e := linkError(err); e.Condition == wire.ErrInternal {
		return 503, "registry unavailable, retry later"
	}
	return 401, "unauthorized"
}

var _ engine.Handler = (*conn)(nil)
