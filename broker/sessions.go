package broker

import (
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/hubgate/hubgate/authn"
)

// session is an admitted MQTT connection.
type session struct {
	cl        *mqtt.Client
	identity  authn.Identity // zero for service clients
	service   bool
	policy    string
	transport authn.Transport
	admitted  time.Time
	timer     *time.Timer // ends the session when its credential expires
}

func (s *session) method() string {
	if s.service {
		return "sas_policy"
	}
	return s.identity.Method.String()
}

// sessionTable maps connections to sessions (read on every publish and
// subscribe, lock-free) and device ids to their live sessions (for eviction).
type sessionTable struct {
	byClient sync.Map // *mqtt.Client → *session
	byConn   sync.Map // net.Conn → *mqtt.Client, to clean up paths where mochi skips OnDisconnect

	mu       sync.Mutex            // guards byDevice
	byDevice map[string][]*session // device id → sessions (two while a takeover runs)
}

func newSessionTable() *sessionTable {
	return &sessionTable{byDevice: map[string][]*session{}}
}

func (t *sessionTable) get(cl *mqtt.Client) *session {
	v, ok := t.byClient.Load(cl)
	if !ok {
		return nil
	}
	return v.(*session)
}

func (t *sessionTable) add(s *session) {
	t.byClient.Store(s.cl, s)
	t.byConn.Store(s.cl.Net.Conn, s.cl)
	if s.service {
		return
	}
	t.mu.Lock()
	t.byDevice[s.identity.DeviceID] = append(t.byDevice[s.identity.DeviceID], s)
	t.mu.Unlock()
}

func (t *sessionTable) remove(cl *mqtt.Client) {
	v, ok := t.byClient.LoadAndDelete(cl)
	if !ok {
		return
	}
	s := v.(*session)
	t.byConn.Delete(s.cl.Net.Conn)
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.service {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	id := s.identity.DeviceID
	list := t.byDevice[id]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(t.byDevice, id)
	} else {
		t.byDevice[id] = list
	}
}

// removeConn forgets the session of connection c, if any is left.
func (t *sessionTable) removeConn(c net.Conn) {
	if v, ok := t.byConn.Load(c); ok {
		t.remove(v.(*mqtt.Client))
	}
}

// device returns a copy of the live sessions of a device.
func (t *sessionTable) device(id string) []*session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*session(nil), t.byDevice[id]...)
}

func (t *sessionTable) len() int {
	n := 0
	t.byClient.Range(func(any, any) bool { n++; return true })
	return n
}
