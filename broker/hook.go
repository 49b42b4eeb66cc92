package broker

import (
	"bytes"
	"context"
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/registry"
)

// hook is the one and only mochi hook (mochi admits a client if ANY hook says
// yes, so there must be no other). The decision happens in OnConnect, which
// may answer its own CONNACK; OnConnectAuthenticate only admits clients that
// OnConnect put in the session table, so an unexpected path fails closed.
type hook struct {
	mqtt.HookBase
	m *MQTT
}

func (h *hook) ID() string { return "hubgate-auth" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect, mqtt.OnPublish,
	}, []byte{b})
}

func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	m := h.m
	transport := transportOf(cl)
	s, err := m.authenticate(cl, pk, transport)
	if err != nil {
		code := packets.ErrNotAuthorized // v3: 5 (mapped below)
		outcome := "rejected"
		if errors.Is(err, authn.ErrRegistryUnavailable) {
			code, outcome = packets.ErrServerUnavailable, "unavailable" // v3: 3
		} else if cl.Properties.ProtocolVersion < 5 {
			code = packets.ErrBadUsernameOrPassword // mochi maps it to v3 return code 5
		}
		reason := reasonOf(err)
		m.metrics.Connect(transport, methodOf(pk, cl), outcome, reason)
		m.log.Info("connect refused", "client_id", cl.ID, "remote", cl.Net.Remote,
			"transport", transport.String(), "reason", reason, "error", err)
		_ = m.srv.SendConnack(cl, code, false, nil)
		return code
	}
	m.metrics.Connect(transport, s.method(), "accepted", "")
	m.log.Debug("connect accepted", "client_id", cl.ID, "transport", transport.String(), "auth_method", s.method())
	return nil
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.m.table.get(cl) != nil
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	s := h.m.table.get(cl)
	switch {
	case s == nil:
		return false
	case s.service:
		if write {
			return servicePublishAllowed(topic)
		}
		return serviceSubscribeAllowed(topic)
	case write:
		return devicePublishAllowed(s.identity.DeviceID, topic)
	default:
		return deviceSubscribeAllowed(s.identity.DeviceID, topic)
	}
}

// OnPublish drops the retain flag: IoT Hub does not store retained messages.
func (h *hook) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pk.FixedHeader.Retain = false
	return pk, nil
}

func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.m.table.remove(cl)
}

// authenticate decides a CONNECT and, when admitted, enters the session.
func (m *MQTT) authenticate(cl *mqtt.Client, pk packets.Packet, transport authn.Transport) (*session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.AuthTimeout)
	defer cancel()
	var password string
	if pk.Connect.PasswordFlag {
		password = string(pk.Connect.Password)
	}
	if len(cl.ID) > len(ServicePrefix) && cl.ID[:len(ServicePrefix)] == ServicePrefix {
		return m.authenticateService(cl, password, transport)
	}

	u, err := authn.ParseMQTTUsername(string(cl.Properties.Username))
	if err != nil {
		return nil, err
	}
	want := u.DeviceID
	if u.ModuleID != "" {
		want += "/" + u.ModuleID
	}
	if cl.ID != want { // edgeHub: client id must equal the identity (ordinal)
		return nil, errClientIDMismatch
	}
	if pk.Connect.WillFlag && !devicePublishAllowed(u.DeviceID, pk.Connect.WillTopic) {
		return nil, errWillTopic
	}
	id, err := m.cfg.Auth.Authenticate(ctx, authn.Request{
		DeviceID:         u.DeviceID,
		ModuleID:         u.ModuleID,
		Token:            password,
		PeerCertificates: PeerCertificates(cl.Net.Conn),
		Transport:        transport,
	})
	if err != nil {
		return nil, err
	}
	s := &session{cl: cl, identity: id, transport: transport, admitted: time.Now()}
	m.table.add(s)
	// A registry write may have raced this decision: its change event either
	// finds the session just added, or the record read below is already the
	// new one. Either way no stale allow survives.
	d, err := m.cfg.Devices.Device(ctx, id.DeviceID)
	if err == nil && d.Etag != id.Etag && !m.cfg.Auth.StillAllowed(id, d) {
		err = ErrRevokedDuringConnect
	} else if errors.Is(err, registry.ErrDeviceNotFound) {
		err = ErrRevokedDuringConnect
	} else {
		err = nil // registry unavailable now: the decision stands on what it read
	}
	if err != nil {
		m.table.remove(cl)
		return nil, err
	}
	m.startExpiry(s, id.Expires)
	if m.claims != nil {
		m.claims.Claim(id.DeviceID)
	}
	return s, nil
}

func (m *MQTT) authenticateService(cl *mqtt.Client, password string, transport authn.Transport) (*session, error) {
	if password == "" {
		return nil, authn.ErrNoCredential
	}
	policy, expires, err := m.cfg.Auth.AuthorizePolicy(password, registry.ServiceConnect)
	if err != nil {
		return nil, err
	}
	s := &session{cl: cl, service: true, policy: policy, transport: transport}
	m.table.add(s)
	m.startExpiry(s, expires)
	return s, nil
}

// startExpiry ends the session when its credential expires (DESIGN.md rule 4).
func (m *MQTT) startExpiry(s *session, at time.Time) {
	if at.IsZero() {
		return
	}
	cl := s.cl
	s.timer = time.AfterFunc(time.Until(at), func() {
		m.log.Info("session closed", "client_id", cl.ID, "reason", "credential_expired")
		m.metrics.Evicted("credential_expired")
		m.disconnect(cl, packets.ErrNotAuthorized)
	})
}

var (
	errClientIDMismatch = errors.New("broker: client id does not match the username identity")
	errWillTopic        = errors.New("broker: will topic not allowed for this device")
	// ErrRevokedDuringConnect: a registry write raced an admission and the
	// new record does not allow it.
	ErrRevokedDuringConnect = errors.New("broker: device changed while connecting")
)

func methodOf(pk packets.Packet, cl *mqtt.Client) string {
	switch {
	case len(cl.ID) > len(ServicePrefix) && cl.ID[:len(ServicePrefix)] == ServicePrefix:
		return "sas_policy"
	case pk.Connect.PasswordFlag:
		return "sas"
	default:
		return "x509"
	}
}
