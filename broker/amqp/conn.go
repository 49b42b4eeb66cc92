package amqp

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/broker"
	"github.com/hubgate/hubgate/broker/amqp/engine"
	"github.com/hubgate/hubgate/broker/amqp/wire"
	"github.com/hubgate/hubgate/registry"
)

// conn is the IoT Hub state of one AMQP connection; it is the engine's Handler.
type conn struct {
	h         *Head
	ec        *engine.Conn
	transport authn.Transport
	certs     []*x509.Certificate

	mu       sync.Mutex        // guards everything below
	grants   map[string]*grant // device id → what admits it on this connection
	root     string            // hub-scope policy token (PLAIN root or CBS), "" if none
	rootExp  time.Time
	plainDev string       // PLAIN device username: the only device this connection may use
	cbsReply *engine.Link // the client's $cbs receiver (our sender), most recent
	timer    *time.Timer  // ends expired grants
	hadGrant bool
}

// grant admits one device on the connection.
type grant struct {
	id       authn.Identity
	admitted time.Time
	links    map[*engine.Link]struct{}
}

func (c *conn) SASLMechanisms() []wire.Symbol {
	m := []wire.Symbol{wire.MechPlain, wire.MechAnonymous, wire.MechMSSBCBS}
	if len(c.certs) > 0 {
		m = append(m, wire.MechExternal)
	}
	return m
}

// SASLInit decides PLAIN at once; ANONYMOUS and MSSBCBS admit the
// connection without a credential (CBS follows), EXTERNAL needs the TLS
// certificate (the device id comes with each link).
func (c *conn) SASLInit(in *wire.SASLInit) uint8 {
	switch in.Mechanism {
	case wire.MechAnonymous, wire.MechMSSBCBS:
		return wire.SASLOK
	case wire.MechExternal:
		if len(c.certs) == 0 {
			c.h.metrics.Connect(c.transport, "x509", "rejected", "no_credential")
			return wire.SASLAuth
		}
		return wire.SASLOK
	case wire.MechPlain:
		_, user, pass, ok := wire.ParsePlain(in.InitialResponse)
		if !ok {
			c.h.metrics.Connect(c.transport, "sas", "rejected", "malformed_username")
			return wire.SASLAuth
		}
		return c.plain(user, pass)
	}
	c.h.metrics.Connect(c.transport, "unknown", "rejected", "unsupported_mechanism")
	return wire.SASLAuth
}

var errPlainUsername = errors.New("amqp: PLAIN username is not {id}@sas.{hub}, {id}/modules/{mid}@sas.{hub} or {policy}@sas.root.{hub}")

// plain decides a SASL PLAIN username and SAS token (reference §4.1).
func (c *conn) plain(user, token string) uint8 {
	name, hub, ok := cutLast(user, "@sas.")
	if !ok {
		c.h.metrics.Connect(c.transport, "sas", "rejected", "malformed_username")
		c.h.log.Info("connect refused", "protocol", "amqp", "transport", c.transport.String(), "reason", "malformed_username", "error", errPlainUsername)
		return wire.SASLAuth
	}
	if root, ok := strings.CutPrefix(hub, "root."); ok {
		if !c.h.hubName(root) {
			return c.refuse("sas_policy", authn.ErrWrongHost)
		}
		policy, expires, err := c.h.cfg.Auth.AuthorizePolicy(token, registry.DeviceConnect)
		if err == nil && policy != name {
			err = authn.ErrUnknownPolicy
		}
		if err != nil {
			return c.refuse("sas_policy", err)
		}
		c.h.metrics.Connect(c.transport, "sas_policy", "accepted", "")
		c.mu.Lock()
		c.root, c.rootExp, c.hadGrant = token, expires, true
		c.scheduleLocked()
		c.mu.Unlock()
		return wire.SASLOK
	}
	if !c.h.hubName(hub) {
		return c.refuse("sas", authn.ErrWrongHost)
	}
	dev, mod, _ := strings.Cut(name, "/modules/")
	id, err := c.authenticate(authn.Request{DeviceID: dev, ModuleID: mod, Token: token, Transport: c.transport})
	if err != nil {
		return c.refuse("sas", err)
	}
	c.mu.Lock()
	c.plainDev = id.DeviceID
	c.mu.Unlock()
	if err := c.addGrant(id); err != nil {
		return c.refuse("sas", err)
	}
	return wire.SASLOK
}

func (c *conn) refuse(method string, err error) uint8 {
	outcome, code := "rejected", wire.SASLAuth
	if errors.Is(err, authn.ErrRegistryUnavailable) {
		outcome, code = "unavailable", wire.SASLSysTemp
	}
	reason := broker.ReasonOf(err)
	c.h.metrics.Connect(c.transport, method, outcome, reason)
	c.h.log.Info("connect refused", "protocol", "amqp", "transport", c.transport.String(), "auth_method", method, "reason", reason, "error", err)
	return code
}

// authenticate runs one authn decision under AuthTimeout and counts it.
func (c *conn) authenticate(r authn.Request) (authn.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.AuthTimeout)
	defer cancel()
	id, err := c.h.cfg.Auth.Authenticate(ctx, r)
	method := "x509"
	if r.Token != "" {
		method = "sas"
	}
	if err != nil {
		outcome := "rejected"
		if errors.Is(err, authn.ErrRegistryUnavailable) {
			outcome = "unavailable"
		}
		reason := broker.ReasonOf(err)
		c.h.metrics.Connect(c.transport, method, outcome, reason)
		c.h.log.Info("connect refused", "protocol", "amqp", "device_id", r.DeviceID, "transport", c.transport.String(),
			"auth_method", method, "reason", reason, "error", err)
		return id, err
	}
	c.h.metrics.Connect(c.transport, id.Method.String(), "accepted", "")
	c.h.log.Debug("connect accepted", "protocol", "amqp", "device_id", id.DeviceID, "transport", c.transport.String(), "auth_method", id.Method.String())
	return id, nil
}

// addGrant admits (or renews) a device on this connection. A registry
// write may have raced the decision: once the grant is tracked (so the
// write's change event finds it), the current record is read again, and a
// grant it no longer allows is dropped — no stale allow survives.
func (c *conn) addGrant(id authn.Identity) error {
	c.mu.Lock()
	g := c.grants[id.DeviceID]
	if g == nil {
		g = &grant{links: map[*engine.Link]struct{}{}}
		c.grants[id.DeviceID] = g
	}
	g.id, g.admitted = id, time.Now()
	c.hadGrant = true
	c.scheduleLocked()
	c.mu.Unlock()
	c.h.track(id.DeviceID, c)

	ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.AuthTimeout)
	defer cancel()
	d, err := c.h.cfg.Devices.Device(ctx, id.DeviceID)
	revoked := errors.Is(err, registry.ErrDeviceNotFound) ||
		(err == nil && d.Etag != id.Etag && !c.h.cfg.Auth.StillAllowed(id, d))
	if !revoked {
		if c.h.claims != nil {
			c.h.claims.Claim(id.DeviceID)
		}
		return nil // unavailable now: the decision stands on what it read
	}
	c.dropGrant(id.DeviceID, unauthorized("device changed while connecting"))
	return broker.ErrRevokedDuringConnect
}

// dropGrant ends a device's grant: its links detach with cond; a
// connection left with no credential closes.
func (c *conn) dropGrant(deviceID string, e *wire.Error) {
	c.mu.Lock()
	g := c.grants[deviceID]
	delete(c.grants, deviceID)
	empty := len(c.grants) == 0 && c.root == ""
	c.mu.Unlock()
	if g == nil {
		return
	}
	c.h.untrack(deviceID, c)
	for l := range g.links {
		l.Detach(e)
	}
	if empty {
		c.ec.Close(e)
	}
}

// scheduleLocked arms the timer for the earliest expiry of any grant.
func (c *conn) scheduleLocked() {
	var next time.Time
	for _, g := range c.grants {
		if e := g.id.Expires; !e.IsZero() && (next.IsZero() || e.Before(next)) {
			next = e
		}
	}
	if c.root != "" && !c.rootExp.IsZero() && (next.IsZero() || c.rootExp.Before(next)) {
		next = c.rootExp
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !next.IsZero() {
		c.timer = time.AfterFunc(time.Until(next), c.expire)
	}
}

// expire ends grants whose credential has expired (DESIGN.md rule 4: an
// expiring SAS token ends the session it opened).
func (c *conn) expire() {
	now := time.Now()
	expiredErr := &wire.Error{Condition: wire.ErrUnauthorized, Description: "credential expired"}
	c.mu.Lock()
	var ids []string
	for id, g := range c.grants {
		if !g.id.Expires.IsZero() && !g.id.Expires.After(now) {
			ids = append(ids, id)
		}
	}
	rootExpired := c.root != "" && !c.rootExp.IsZero() && !c.rootExp.After(now)
	if rootExpired {
		c.root = ""
	}
	c.scheduleLocked()
	c.mu.Unlock()
	for _, id := range ids {
		c.h.log.Info("session closed", "protocol", "amqp", "device_id", id, "reason", "credential_expired")
		c.h.metrics.Evicted("credential_expired")
		c.dropGrant(id, expiredErr)
	}
	if rootExpired {
		c.mu.Lock()
		empty := len(c.grants) == 0
		c.mu.Unlock()
		if empty {
			c.h.metrics.Evicted("credential_expired")
			c.ec.Close(expiredErr)
		}
	}
}

// recheck ends the device's grant when the new record no longer allows it.
func (c *conn) recheck(id string, d *registry.Device) {
	c.mu.Lock()
	g := c.grants[id]
	c.mu.Unlock()
	if g == nil || (d != nil && c.h.cfg.Auth.StillAllowed(g.id, *d)) {
		return
	}
	reason := "device_deleted"
	if d != nil {
		reason = "credentials_revoked"
	}
	c.h.log.Info("session closed", "protocol", "amqp", "device_id", id, "reason", reason, "transport", c.transport.String())
	c.h.metrics.Evicted(reason)
	c.dropGrant(id, &wire.Error{Condition: wire.ErrUnauthorized, Description: "device no longer allowed"})
}

func (c *conn) Opened(*engine.Conn, *wire.Open) *wire.Error { return nil }

func (c *conn) Closed(_ *engine.Conn, err error) {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	ids := make([]string, 0, len(c.grants))
	for id := range c.grants {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.h.untrack(id, c)
	}
	c.h.forget(c)
	if err != nil {
		c.h.log.Debug("connection ended", "protocol", "amqp", "transport", c.transport.String(), "error", err)
	}
}

// deviceGrant returns the grant for deviceID, creating it from a hub-scope
// token or the TLS certificate when the connection has one.
func (c *conn) deviceGrant(deviceID, moduleID string) (*grant, *wire.Error) {
	if moduleID != "" {
		return nil, &wire.Error{Condition: wire.ErrUnauthorized, Description: "module identities are not supported"}
	}
	c.mu.Lock()
	g, root, plainDev := c.grants[deviceID], c.root, c.plainDev
	c.mu.Unlock()
	if g != nil {
		return g, nil
	}
	var r authn.Request
	switch {
	case plainDev != "":
		return nil, unauthorized("this connection is for another device")
	case root != "":
		r = authn.Request{DeviceID: deviceID, Token: root, Transport: c.transport}
	case len(c.certs) > 0:
		r = authn.Request{DeviceID: deviceID, PeerCertificates: c.certs, Transport: c.transport}
	default:
		return nil, unauthorized("no credential for this device: put a token on $cbs first")
	}
	id, err := c.authenticate(r)
	if err != nil {
		return nil, linkError(err)
	}
	if err := c.addGrant(id); err != nil {
		return nil, linkError(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g = c.grants[deviceID]; g == nil {
		return nil, unauthorized("credential expired")
	}
	return g, nil
}

func unauthorized(desc string) *wire.Error {
	return &wire.Error{Condition: wire.ErrUnauthorized, Description: desc}
}

// linkError maps an authn refusal to a link error: registry trouble is an
// internal error, never a credential statement (DESIGN.md rule 6).
func linkError(err error) *wire.Error {
	if errors.Is(err, authn.ErrRegistryUnavailable) {
		return &wire.Error{Condition: wire.ErrInternal, Description: "registry unavailable, retry later"}
	}
	if errors.Is(err, authn.ErrModuleNotSupported) {
		return unauthorized("module identities are not supported")
	}
	return unauthorized("unauthorized")
}

// Attach routes a link by its address (reference §4.4).
func (c *conn) Attach(l *engine.Link) *wire.Error {
	a, ok := parseAddress(l.Address(), c.h.cfg.HostNames)
	if !ok {
		return &wire.Error{Condition: wire.ErrNotFound, Description: "unknown address"}
	}
	if a.cbs {
		return c.attachCBS(l)
	}
	switch {
	case a.kind == kindEvents && l.Role == wire.RoleReceiver && a.module == "":
	case a.kind == kindDevicebound && l.Role == wire.RoleSender:
	case a.kind == kindTwin || a.kind == kindMethods:
		if _, e := c.deviceGrant(a.device, a.module); e != nil {
			return e
		}
		return &wire.Error{Condition: wire.ErrNotImplemented, Description: "twin and methods over AMQP are not supported yet"}
	default:
		if a.module != "" {
			return unauthorized("module identities are not supported")
		}
		return &wire.Error{Condition: wire.ErrNotFound, Description: "unknown address"}
	}
	g, e := c.deviceGrant(a.device, a.module)
	if e != nil {
		return e
	}
	c.mu.Lock()
	g.links[l] = struct{}{}
	c.mu.Unlock()
	onDetach := func(l *engine.Link) {
		c.mu.Lock()
		if g := c.grants[a.device]; g != nil {
			delete(g.links, l)
		}
		c.mu.Unlock()
	}
	if a.kind == kindEvents {
		id := a.device
		l.OnMessage = func(_ *engine.Link, msg []byte) wire.DeliveryState { return c.telemetry(id, msg) }
		l.OnDetach = onDetach
		return nil
	}
	cancel, err := c.h.cfg.Bus.Subscribe("devices/"+a.device+"/messages/devicebound/#", func(topic string, payload []byte) {
		msg, err := c2dMessage(a.device, topic, payload)
		if err == nil {
			err = l.Send(msg)
		}
		if err != nil {
			c.h.log.Warn("cloud-to-device message not delivered", "protocol", "amqp", "device_id", a.device, "error", err)
		}
	})
	if err != nil {
		return &wire.Error{Condition: wire.ErrInternal, Description: "cannot subscribe"}
	}
	l.OnDetach = func(l *engine.Link) { cancel(); onDetach(l) }
	return nil
}

// cutLast cuts s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
