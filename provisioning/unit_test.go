package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/registry"
)

// TestDeriveDeviceKey: the reference §2.6a vector.
func TestDeriveDeviceKey(t *testing.T) {
	got := DeriveDeviceKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "dev1")
	if want := "dBQa2NH8KbHdr9PFmAU79U7IUPa+jXVxpnR4vsTWw64="; got != want {
		t.Fatalf("DeriveDeviceKey = %q, want %q", got, want)
	}
	if DeriveDeviceKey("not base64!", "dev1") != "" || DeriveDeviceKey("", "dev1") != "" {
		t.Fatal("a bad group key must derive nothing")
	}
}

// TestDPSSignatureVector: the §2.6a DPS token verifies through authn.
func TestDPSSignatureVector(t *testing.T) {
	tok, err := authn.ParseSAS("SharedAccessSignature sr=0ne00000001/registrations/dev1&sig=k64eQluyJR0EqV6soOH3QSQrjWhbQkpkFkzXtrxp8yE%3D&skn=registration&se=1796305120")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Verify("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") {
		t.Fatal("reference DPS token does not verify")
	}
}

func TestPickHashed(t *testing.T) {
	hubs := []LinkedHub{{HostName: "a", AllocationWeight: 1}, {HostName: "b", AllocationWeight: 1}, {HostName: "c", AllocationWeight: 2}}
	t.Run("ok/stable", func(t *testing.T) {
		for i := range 200 {
			id := fmt.Sprintf("dev-%d", i)
			h1, _ := pickHashed(hubs, id)
			rev := []LinkedHub{hubs[2], hubs[0], hubs[1]}
			h2, _ := pickHashed(rev, id)
			h3, _ := pickHashed(hubs, "DEV-"+id[4:]) // registration ids are case-insensitive
			if h1.HostName != h2.HostName || h1.HostName != h3.HostName {
				t.Fatalf("%s: %s, %s, %s", id, h1.HostName, h2.HostName, h3.HostName)
			}
		}
	})
	t.Run("ok/weighted-spread", func(t *testing.T) {
		const n = 20000
		count := map[string]int{}
		for i := range n {
			h, _ := pickHashed(hubs, fmt.Sprintf("device-%d", i))
			count[h.HostName]++
		}
		for host, want := range map[string]float64{"a": 0.25, "b": 0.25, "c": 0.5} {
			got := float64(count[host]) / n
			if math.Abs(got-want) > 0.02 {
				t.Errorf("hub %s got %.3f of the devices, want %.2f±0.02 (%v)", host, got, want, count)
			}
		}
	})
	t.Run("ok/minimal-movement", func(t *testing.T) {
		moved := 0
		for i := range 2000 {
			id := fmt.Sprintf("device-%d", i)
			before, _ := pickHashed(hubs[:2], id)
			after, _ := pickHashed(hubs, id)
			if after.HostName != before.HostName && after.HostName != "c" {
				moved++
			}
		}
		if moved != 0 {
			t.Fatalf("adding a hub moved %d devices between the old hubs", moved)
		}
	})
	t.Run("fail/no-hubs", func(t *testing.T) {
		if _, ok := pickHashed(nil, "x"); ok {
			t.Fatal("picked a hub from none")
		}
	})
}

// memHub is an in-memory hub registry (a fake, not a mock: it keeps state).
type memHub struct {
	mu      sync.Mutex
	devices map[string]registry.Device
	down    bool
}

func (m *memHub) Device(_ context.Context, id string) (registry.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return registry.Device{}, ErrHubUnavailable
	}
	d, ok := m.devices[id]
	if !ok {
		return d, ErrNotFound
	}
	return d, nil
}

func (m *memHub) PutDevice(_ context.Context, d registry.Device, ifMatch string) (registry.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return registry.Device{}, ErrHubUnavailable
	}
	_, ok := m.devices[d.DeviceID]
	if ifMatch == "" && ok {
		return d, ErrExists
	}
	if ifMatch != "" && !ok {
		return d, ErrNotFound
	}
	m.devices[d.DeviceID] = d
	return d, nil
}

func (m *memHub) DeleteDevice(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[id]; !ok {
		return ErrNotFound
	}
	delete(m.devices, id)
	return nil
}

type testEnv struct {
	svc  *Service
	hubs map[string]*memHub
}

func newTestEnv(t testing.TB, hubNames ...string) *testEnv {
	t.Helper()
	st, err := OpenFileStore(filepath.Join(t.TempDir(), "p.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := &testEnv{hubs: map[string]*memHub{}}
	for _, n := range hubNames {
		env.hubs[n+".example"] = &memHub{devices: map[string]registry.Device{}}
	}
	svc, err := New(t.Context(), Config{Store: st, IDScope: "0ne0000TEST", ClockSkew: time.Minute,
		Dial: func(h LinkedHub) (HubRegistry, error) {
			if m, ok := env.hubs[h.HostName]; ok {
				return m, nil
			}
			return nil, errors.New("unknown hub")
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	for _, n := range hubNames {
		if _, err := svc.LinkHub(t.Context(), LinkedHub{Name: n, ConnectionString: "HostName=" + n + ".example;SharedAccessKeyName=iothubowner;SharedAccessKey=eA=="}); err != nil {
			t.Fatal(err)
		}
	}
	env.svc = svc
	return env
}

func (e *testEnv) token(regID, key string) string {
	return authn.Sign("0ne0000TEST/registrations/"+regID, key, time.Now().Add(time.Hour), "registration")
}

// register runs a registration to its final state.
func (e *testEnv) register(t *testing.T, regID, key string) (OperationStatus, error) {
	t.Helper()
	cred := Credential{IDScope: "0ne0000TEST", RegistrationID: regID, Token: e.token(regID, key)}
	st, err := e.svc.Register(t.Context(), cred, nil)
	if err != nil {
		return st, err
	}
	if st.Status != RegAssigning || st.OperationID == "" {
		t.Fatalf("register answered %+v, want assigning with an operation id", st)
	}
	out, err := e.svc.Operation(t.Context(), regID, st.OperationID, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return out, nil
}

const key1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// TestRegistrationStateMachine walks a device through initial assignment,
// an operator's move, re-registration, a move back, revocation and errors.
func TestRegistrationStateMachine(t *testing.T) {
	env := newTestEnv(t, "test", "prod")
	ctx := t.Context()
	e := IndividualEnrollment{RegistrationID: "dev1", Enrollment: Enrollment{
		Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}},
		IoTHubs:     []string{"test"}}}
	if _, created, _, err := env.svc.PutIndividual(ctx, e, ""); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := env.register(t, "dev1", key1)
	if err != nil || st.Status != RegAssigned || st.RegistrationState.AssignedHub != "test.example" || st.RegistrationState.Substatus != SubInitialAssignment {
		t.Fatalf("first registration: %+v %v", st.RegistrationState, err)
	}
	if d, ok := env.hubs["test.example"].devices["dev1"]; !ok || d.Authentication.Type != registry.AuthSAS || d.Authentication.SymmetricKey.PrimaryKey != key1 {
		t.Fatalf("identity in test hub: %+v", d)
	}

	// The operator moves the enrollment to prod: the identity moves now.
	cur, _ := env.svc.GetIndividual(ctx, "dev1")
	cur.IoTHubs = []string{"prod.example"}
	if _, _, moveErr, err := env.svc.PutIndividual(ctx, cur, cur.Etag); err != nil || moveErr != nil {
		t.Fatalf("move: %v %v", err, moveErr)
	}
	if _, ok := env.hubs["test.example"].devices["dev1"]; ok {
		t.Fatal("identity still in the test hub after the move")
	}
	if _, ok := env.hubs["prod.example"].devices["dev1"]; !ok {
		t.Fatal("identity not created in prod")
	}
	rs, _ := env.svc.RegistrationState(ctx, "dev1")
	if rs.AssignedHub != "prod.example" || rs.Substatus != SubDeviceDataMigrated {
		t.Fatalf("state after move: %+v", rs)
	}
	st, _ = env.register(t, "dev1", key1)
	if st.RegistrationState.AssignedHub != "prod.example" || st.RegistrationState.Substatus != SubDeviceDataMigrated {
		t.Fatalf("re-registration after move: %+v", st.RegistrationState)
	}

	// Back to test with reset: that hub was its initial assignment.
	cur, _ = env.svc.GetIndividual(ctx, "dev1")
	cur.IoTHubs = []string{"test"}
	cur.ReprovisionPolicy = &ReprovisionPolicy{UpdateHubAssignment: true}
	if _, _, moveErr, err := env.svc.PutIndividual(ctx, cur, ""); err != nil || moveErr != nil {
		t.Fatalf("move back: %v %v", err, moveErr)
	}
	rs, _ = env.svc.RegistrationState(ctx, "dev1")
	if rs.AssignedHub != "test.example" || rs.Substatus != SubReprovisionedToInitialAssignment {
		t.Fatalf("state after move back: %+v", rs)
	}

	// Stale etag.
	if _, _, _, err := env.svc.PutIndividual(ctx, cur, cur.Etag); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("stale etag: %v", err)
	}

	// Wrong key, then revocation without and with cascade.
	if _, err := env.register(t, "dev1", DeriveDeviceKey(key1, "x")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := env.svc.RevokeIndividual(ctx, "dev1", CascadeNone); err != nil {
		t.Fatal(err)
	}
	if _, err := env.register(t, "dev1", key1); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	if _, ok := env.hubs["test.example"].devices["dev1"]; !ok {
		t.Fatal("revocation without cascade touched the hub")
	}
	if _, err := env.svc.RevokeIndividual(ctx, "dev1", CascadeDelete); err != nil {
		t.Fatal(err)
	}
	if _, ok := env.hubs["test.example"].devices["dev1"]; ok {
		t.Fatal("cascade did not delete the hub identity")
	}
}

func TestGroupSymmetricKey(t *testing.T) {
	env := newTestEnv(t, "a", "b")
	ctx := t.Context()
	g := EnrollmentGroup{EnrollmentGroupID: "g1", Enrollment: Enrollment{
		Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}}}}
	if _, _, _, err := env.svc.PutGroup(ctx, g, ""); err != nil {
		t.Fatal(err)
	}
	t.Run("ok/derived-key", func(t *testing.T) {
		st, err := env.register(t, "dev1", DeriveDeviceKey(key1, "dev1"))
		if err != nil || st.Status != RegAssigned {
			t.Fatalf("%+v %v", st, err)
		}
		d := env.hubs[st.RegistrationState.AssignedHub].devices["dev1"]
		if d.Authentication.SymmetricKey.PrimaryKey != "dBQa2NH8KbHdr9PFmAU79U7IUPa+jXVxpnR4vsTWw64=" {
			t.Fatalf("hub identity keys: %+v", d.Authentication)
		}
	})
	t.Run("fail/group-key-itself", func(t *testing.T) {
		if _, err := env.register(t, "dev2", key1); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("group key accepted as device key: %v", err)
		}
	})
	t.Run("fail/disabled-individual-under-group", func(t *testing.T) {
		e := IndividualEnrollment{RegistrationID: "dev3", Enrollment: Enrollment{ProvisioningStatus: StatusDisabled,
			Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: DeriveDeviceKey(key1, "dev3")}}}}
		if _, _, _, err := env.svc.PutIndividual(ctx, e, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := env.register(t, "dev3", DeriveDeviceKey(key1, "dev3")); !errors.Is(err, ErrDisabled) {
			t.Fatalf("want ErrDisabled, got %v", err)
		}
	})
	t.Run("fail/hub-down", func(t *testing.T) {
		for _, h := range env.hubs {
			h.down = true
		}
		defer func() {
			for _, h := range env.hubs {
				h.down = false
			}
		}()
		st, err := env.register(t, "dev4", DeriveDeviceKey(key1, "dev4"))
		if err != nil || st.Status != RegFailed || st.RegistrationState.ErrorCode != codeHubUnavailable {
			t.Fatalf("%+v %v", st.RegistrationState, err)
		}
	})
}

func TestStoreReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.jsonl")
	s, err := OpenFileStore(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Put(ctx, "k", "a", []byte(`{"x":1}`))
	s.Put(ctx, "k", "b", []byte(`{"x":2}`))
	s.Delete(ctx, "k", "a")
	s.Close()
	s, err = OpenFileStore(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "k", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal("deleted record came back")
	}
	if b, err := s.Get(ctx, "k", "b"); err != nil || string(b) != `{"x":2}` {
		t.Fatalf("%s %v", b, err)
	}
}

func FuzzParseUsername(f *testing.F) {
	f.Add("0ne00000001/registrations/dev1/api-version=2019-03-31&ClientVersion=azure-iot-provisioning-device%2F1.9.1")
	f.Add("0ne/registrations/x/?api-version=1")
	f.Add("/registrations//")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUsername(s)
		if err == nil && (u.IDScope == "" || u.RegistrationID == "" || u.APIVersion == "") {
			t.Fatalf("accepted %q with empty parts: %+v", s, u)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add("$dps/registrations/PUT/iotdps-register/?$rid=1")
	f.Add("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=5.a.b")
	f.Add("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTopic(s)
		if err == nil && (r.RID == "" || (r.Kind == RequestStatus && r.OperationID == "")) {
			t.Fatalf("accepted %q: %+v", s, r)
		}
	})
}

// FuzzEnrollmentJSON: any body the service API accepts normalizes without
// panicking and round-trips through JSON.
func FuzzEnrollmentJSON(f *testing.F) {
	f.Add(`{"registrationId":"d","attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`)
	f.Add(`{"registrationId":"d","attestation":{"type":"x509","x509":{"clientCertificates":{"primary":{"certificate":"AAAA"}}}},"iotHubs":["x"]}`)
	f.Add(`{"registrationId":"d","attestation":{"type":"tpm"},"allocationPolicy":"custom"}`)
	env := newTestEnv(f, "x")
	f.Fuzz(func(t *testing.T, s string) {
		var e IndividualEnrollment
		if json.Unmarshal([]byte(s), &e) != nil {
			return
		}
		if err := env.svc.normalize(context.Background(), &e.Enrollment, false); err != nil {
			return
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back IndividualEnrollment
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestCustomAllocation: a real webhook over HTTP picks the hub; an answer
// naming a hub outside the enrollment fails the registration.
func TestCustomAllocation(t *testing.T) {
	env := newTestEnv(t, "a", "b")
	var got customRequest
	pick := "b.example"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"iotHubHostName":%q,"payload":{"hello":"device"}}`, pick)
	}))
	defer srv.Close()
	e := IndividualEnrollment{RegistrationID: "cust1", Enrollment: Enrollment{
		Attestation:                AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}},
		AllocationPolicy:           AllocationCustom,
		CustomAllocationDefinition: &CustomAllocationDefinition{WebhookURL: srv.URL, APIVersion: "2021-10-01"}}}
	if _, _, _, err := env.svc.PutIndividual(t.Context(), e, ""); err != nil {
		t.Fatal(err)
	}
	st, err := env.register(t, "cust1", key1)
	if err != nil || st.RegistrationState.AssignedHub != "b.example" {
		t.Fatalf("%+v %v", st.RegistrationState, err)
	}
	if got.DeviceRuntimeContext.RegistrationID != "cust1" || len(got.LinkedHubs) != 2 ||
		got.IndividualEnrollment == nil || got.IndividualEnrollment.Attestation.SymmetricKey.PrimaryKey != "" {
		t.Fatalf("webhook request: %+v (keys must be redacted)", got)
	}
	if b, _ := json.Marshal(st.RegistrationState.Payload); string(b) != `{"hello":"device"}` {
		t.Fatalf("payload not echoed: %s", b)
	}
	pick = "elsewhere.example"
	st, _ = env.register(t, "cust1", key1)
	if st.Status != RegFailed || st.RegistrationState.ErrorCode != codeNoHub {
		t.Fatalf("a webhook choosing an unlinked hub must fail the registration: %+v", st.RegistrationState)
	}
}

// TestDeps: the service stays a library of its own: no protocol head of the
// hub, no Redis client, no AMQP (STYLE rule 2).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"github.com/hubgate/hubgate/broker", "github.com/redis/go-redis", "github.com/Azure/go-amqp"} {
		for _, dep := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("provisioning imports %s", dep)
			}
		}
	}
}

// TestOperationOnAnotherNode: two services sharing a store; a poll reaching
// the node that did not take the register request is answered from the
// registration record.
func TestOperationOnAnotherNode(t *testing.T) {
	env := newTestEnv(t, "a")
	ctx := t.Context()
	other, err := New(ctx, Config{Store: env.svc.cfg.Store, Dial: env.svc.cfg.Dial})
	if err != nil {
		t.Fatal(err)
	}
	e := IndividualEnrollment{RegistrationID: "multi", Enrollment: Enrollment{
		Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}}}}
	if _, _, _, err := env.svc.PutIndividual(ctx, e, ""); err != nil {
		t.Fatal(err)
	}
	st, err := env.register(t, "multi", key1) // waits for the assignment on node 1
	if err != nil || st.Status != RegAssigned {
		t.Fatalf("%+v %v", st, err)
	}
	got, err := other.Operation(ctx, "multi", st.OperationID, 0)
	if err != nil || got.Status != RegAssigned || got.RegistrationState.AssignedHub != "a.example" {
		t.Fatalf("poll on the other node: %+v %v", got, err)
	}
	fresh := "5." + strconv.FormatInt(time.Now().Unix(), 16) + ".x"
	if got, err := other.Operation(ctx, "multi", fresh, 0); err != nil || got.Status != RegAssigning {
		t.Fatalf("a young unknown operation must read as assigning: %+v %v", got, err)
	}
	if _, err := other.Operation(ctx, "multi", "5.1.x", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an old unknown operation must be not found: %v", err)
	}
}

// TestOperationDoneWins: a poll of a finished operation always answers its
// outcome, never "assigning" (regression: a zero wait raced the done channel).
func TestOperationDoneWins(t *testing.T) {
	env := newTestEnv(t, "a")
	e := IndividualEnrollment{RegistrationID: "done", Enrollment: Enrollment{
		Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}}}}
	if _, _, _, err := env.svc.PutIndividual(t.Context(), e, ""); err != nil {
		t.Fatal(err)
	}
	st, err := env.register(t, "done", key1)
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		got, err := env.svc.Operation(t.Context(), "done", st.OperationID, 0)
		if err != nil || got.Status != RegAssigned {
			t.Fatalf("poll of a finished operation: %+v %v", got, err)
		}
	}
}

// TestReprovisionPolicies: "reset" moves with deviceDataReset and a fresh
// (enabled) identity; "never" keeps the device where it is.
func TestReprovisionPolicies(t *testing.T) {
	env := newTestEnv(t, "a", "b")
	ctx := t.Context()
	mk := func(id string, p *ReprovisionPolicy) {
		e := IndividualEnrollment{RegistrationID: id, Enrollment: Enrollment{ReprovisionPolicy: p, IoTHubs: []string{"a"},
			Attestation: AttestationMechanism{Type: AttestationSymmetricKey, SymmetricKey: &SymmetricKeyAttestation{PrimaryKey: key1}}}}
		if _, _, _, err := env.svc.PutIndividual(ctx, e, ""); err != nil {
			t.Fatal(err)
		}
		if st, err := env.register(t, id, key1); err != nil || st.RegistrationState.AssignedHub != "a.example" {
			t.Fatalf("%s: %+v %v", id, st, err)
		}
	}
	move := func(id string) {
		e, _ := env.svc.GetIndividual(ctx, id)
		e.IoTHubs = []string{"b"}
		if _, _, moveErr, err := env.svc.PutIndividual(ctx, e, e.Etag); err != nil || moveErr != nil {
			t.Fatalf("%s: %v %v", id, err, moveErr)
		}
	}
	t.Run("ok/reset", func(t *testing.T) {
		mk("reset-dev", &ReprovisionPolicy{UpdateHubAssignment: true, MigrateDeviceData: false})
		d := env.hubs["a.example"].devices["reset-dev"]
		d.Status = registry.StatusDisabled // an operator disabled it in hub a
		env.hubs["a.example"].devices["reset-dev"] = d
		move("reset-dev")
		rs, _ := env.svc.RegistrationState(ctx, "reset-dev")
		if rs.AssignedHub != "b.example" || rs.Substatus != SubDeviceDataReset {
			t.Fatalf("%+v", rs)
		}
		if nd := env.hubs["b.example"].devices["reset-dev"]; nd.Status != registry.StatusEnabled {
			t.Fatalf("reset must seed a fresh identity, got status %q", nd.Status)
		}
	})
	t.Run("ok/migrate-carries-status", func(t *testing.T) {
		mk("mig-dev", nil)
		d := env.hubs["a.example"].devices["mig-dev"]
		d.Status = registry.StatusDisabled
		env.hubs["a.example"].devices["mig-dev"] = d
		move("mig-dev")
		if nd := env.hubs["b.example"].devices["mig-dev"]; nd.Status != registry.StatusDisabled {
			t.Fatalf("migrate must carry the status, got %q", nd.Status)
		}
	})
	t.Run("ok/never", func(t *testing.T) {
		mk("never-dev", &ReprovisionPolicy{UpdateHubAssignment: false})
		move("never-dev")
		if _, ok := env.hubs["a.example"].devices["never-dev"]; !ok {
			t.Fatal("never re-provision: the identity left hub a")
		}
		st, err := env.register(t, "never-dev", key1)
		if err != nil || st.RegistrationState.AssignedHub != "a.example" {
			t.Fatalf("never re-provision: device moved on re-registration: %+v %v", st.RegistrationState, err)
		}
	})
}
