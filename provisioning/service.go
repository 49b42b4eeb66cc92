package provisioning

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/hubgate/hubgate/registry"
)

// Config configures the Service.
type Config struct {
	Store Store
	// IDScope is the scope devices name; empty: the stored one, or a new
	// "0ne" + 8 hex digits stored for next time.
	IDScope string
	// Dial reaches a linked hub's registry API; default DialHub.
	Dial   HubDialer
	Logger *slog.Logger
	// ClockSkew is the leeway on SAS expiry and certificate validity.
	ClockSkew time.Duration
	// RetryAfter is what 202 answers tell devices to wait before polling.
	// One second: DPS's own hint is a few seconds, and the SDKs read whole
	// seconds (the C SDK parses an integer).
	RetryAfter time.Duration
	// AssignTimeout bounds one assignment: hub REST calls and webhook.
	AssignTimeout time.Duration
	// OperationTTL is how long a finished operation can still be polled.
	OperationTTL time.Duration
	// Webhook is the client for custom allocation webhooks.
	Webhook *http.Client
	Now     func() time.Time
	// Meter receives the registration counters; default: none.
	Meter metric.Meter
}

func (c *Config) setDefaults() {
	if c.Dial == nil {
		c.Dial = DialHub
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.AssignTimeout == 0 {
		c.AssignTimeout = 20 * time.Second // inside Node's 30 s per request
	}
	if c.OperationTTL == 0 {
		c.OperationTTL = 10 * time.Minute
	}
	if c.Webhook == nil {
		c.Webhook = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// PolicyName is the service's one shared access policy.
const PolicyName = "provisioningserviceowner"

// Policy is a service-level shared access policy.
type Policy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// Service is the provisioning service: enrollments, linked hubs,
// attestation, allocation and the registration operations.
type Service struct {
	cfg     Config
	log     *slog.Logger
	policy  Policy
	metrics *metrics

	wmu sync.Mutex // serialises enrollment and hub writes (etag checks)

	regLocks [64]sync.Mutex // per registration id (hashed): one assignment at a time

	opMu sync.Mutex // guards ops
	ops  map[string]*operation

	wg sync.WaitGroup // running assignments

	dialMu sync.Mutex             // guards dialed
	dialed map[string]HubRegistry // by link etag: one client (and connection pool) per link version
}

// dial returns the registry client of a linked hub, reusing the client of
// the same link version so connections to the hub are pooled.
func (s *Service) dial(h LinkedHub) (HubRegistry, error) {
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	key := h.Name + "\x00" + h.Etag
	if c, ok := s.dialed[key]; ok {
		return c, nil
	}
	c, err := s.cfg.Dial(h)
	if err != nil {
		return nil, err
	}
	if s.dialed == nil || len(s.dialed) > 256 {
		s.dialed = map[string]HubRegistry{}
	}
	s.dialed[key] = c
	return c, nil
}

// operation is one registration in progress or done.
type operation struct {
	id      string
	regID   string
	created time.Time
	done    chan struct{} // closed when state is final
	state   DeviceRegistrationState
}

// New opens the service on cfg.Store: it loads or creates the ID scope and
// the service policy.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if cfg.Store == nil {
		return nil, errors.New("provisioning: Store is required")
	}
	m, err := newMetrics(cfg.Meter)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, ops: map[string]*operation{}, metrics: m}
	scope, err := s.loadMeta(ctx, "idScope")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if cfg.IDScope == "" {
		cfg.IDScope = scope
		if cfg.IDScope == "" {
			cfg.IDScope = "0ne" + strings.ToUpper(randomHex(4))
		}
	}
	if cfg.IDScope != scope {
		if err := s.putMeta(ctx, "idScope", cfg.IDScope); err != nil {
			return nil, err
		}
	}
	s.cfg = cfg
	raw, err := s.loadMeta(ctx, "policy")
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(raw), &s.policy); err != nil {
			return nil, fmt.Errorf("provisioning: stored policy: %w", err)
		}
	case errors.Is(err, ErrNotFound):
		s.policy = Policy{KeyName: PolicyName, PrimaryKey: newKey(), SecondaryKey: newKey()}
		b, _ := json.Marshal(s.policy)
		if err := s.putMeta(ctx, "policy", string(b)); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return s, nil
}

// IDScope is the service's ID scope.
func (s *Service) IDScope() string { return s.cfg.IDScope }

// Policy returns the named policy.
func (s *Service) Policy(name string) (Policy, bool) {
	if name != s.policy.KeyName {
		return Policy{}, false
	}
	return s.policy, true
}

// Close waits for running assignments.
func (s *Service) Close() { s.wg.Wait() }

func (s *Service) now() time.Time { return s.cfg.Now() }

func (s *Service) loadMeta(ctx context.Context, key string) (string, error) {
	b, err := s.cfg.Store.Get(ctx, kindMeta, key)
	if err != nil {
		return "", err
	}
	var v string
	return v, json.Unmarshal(b, &v)
}

func (s *Service) putMeta(ctx context.Context, key, v string) error {
	b, _ := json.Marshal(v)
	return s.cfg.Store.Put(ctx, kindMeta, key, b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

func newKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// newEtag is base64 of a quoted random string, the shape DPS uses.
func newEtag() string {
	return base64.StdEncoding.EncodeToString([]byte(`"` + randomHex(16) + `"`))
}

// etagMatches applies If-Match: "" or * match anything present; quotes and
// W/ are stripped (the Node client sends the etag unquoted).
func etagMatches(ifMatch, etag string) bool {
	v := strings.TrimSpace(ifMatch)
	v = strings.TrimPrefix(v, "W/")
	v = strings.Trim(v, `"`)
	return v == "" || v == "*" || v == etag
}

func (s *Service) regLock(regID string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(regID)))
	return &s.regLocks[h.Sum32()%uint32(len(s.regLocks))]
}

// ---- linked hubs ----

// LinkHub creates or replaces a linked hub.
func (s *Service) LinkHub(ctx context.Context, h LinkedHub) (LinkedHub, error) {
	if h.Name == "" || strings.ContainsAny(h.Name, "/?#") {
		return LinkedHub{}, fmt.Errorf("%w: a linked hub needs a name without / ? #", ErrInvalid)
	}
	if h.ConnectionString == "" {
		return LinkedHub{}, fmt.Errorf("%w: hubConnectionString is required", ErrInvalid)
	}
	host := ""
	for _, part := range strings.Split(h.ConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "HostName") {
			host = strings.TrimSpace(v)
		}
	}
	if host == "" {
		return LinkedHub{}, fmt.Errorf("%w: the hub connection string has no HostName", ErrInvalid)
	}
	if h.AllocationWeight < 0 || h.AllocationWeight > 1000 {
		return LinkedHub{}, fmt.Errorf("%w: allocationWeight must be 0..1000", ErrInvalid)
	}
	h.HostName = host
	if _, err := s.cfg.Dial(h); err != nil {
		return LinkedHub{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	h.ApplyAllocationPolicy = true
	h.Etag = newEtag()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return LinkedHub{}, err
	}
	for _, o := range hubs {
		if o.Name != h.Name && strings.EqualFold(o.HostName, host) {
			return LinkedHub{}, fmt.Errorf("%w: hub %s is already linked as %q", ErrExists, host, o.Name)
		}
	}
	b, _ := json.Marshal(h)
	if err := s.cfg.Store.Put(ctx, kindHub, h.Name, b); err != nil {
		return LinkedHub{}, err
	}
	s.log.Info("hub linked", "hub", host, "name", h.Name, "weight", h.AllocationWeight)
	return h.Redacted(), nil
}

// UnlinkHub removes a linked hub; devices assigned to it stay there until
// they re-provision.
func (s *Service) UnlinkHub(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.cfg.Store.Delete(ctx, kindHub, name)
}

// Hubs lists the linked hubs, secrets included (callers redact).
func (s *Service) Hubs(ctx context.Context) ([]LinkedHub, error) {
	docs, err := s.cfg.Store.List(ctx, kindHub)
	if err != nil {
		return nil, err
	}
	out := make([]LinkedHub, 0, len(docs))
	for _, b := range docs {
		var h LinkedHub
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// hubByHost finds a linked hub by host name or link name.
func hubByHost(hubs []LinkedHub, name string) (LinkedHub, bool) {
	for _, h := range hubs {
		if strings.EqualFold(h.HostName, name) || h.Name == name {
			return h, true
		}
	}
	return LinkedHub{}, false
}

// ---- enrollments ----

// normalize validates e in place and fills defaults, generated keys and
// certificate info. iotHubs entries may name links; they become host names.
func (s *Service) normalize(ctx context.Context, e *Enrollment, group bool) error {
	a := &e.Attestation
	switch a.Type {
	case AttestationSymmetricKey:
		if a.SymmetricKey == nil {
			a.SymmetricKey = &SymmetricKeyAttestation{}
		}
		if a.SymmetricKey.PrimaryKey == "" {
			a.SymmetricKey.PrimaryKey = newKey()
		}
		if a.SymmetricKey.SecondaryKey == "" {
			a.SymmetricKey.SecondaryKey = newKey()
		}
		for _, k := range []string{a.SymmetricKey.PrimaryKey, a.SymmetricKey.SecondaryKey} {
			b, err := base64.StdEncoding.DecodeString(k)
			if err != nil || len(b) < 16 || len(b) > 64 {
				return fmt.Errorf("%w: symmetric keys must be base64 of 16 to 64 bytes", ErrInvalid)
			}
		}
		a.X509, a.TPM = nil, nil
	case AttestationX509:
		x := a.X509
		if x == nil {
			return fmt.Errorf("%w: x509 attestation without certificates", ErrInvalid)
		}
		var certs *X509Certificates
		switch {
		case x.CAReferences != nil && !group:
			return fmt.Errorf("%w: caReferences are for enrollment groups", ErrInvalid)
		case x.CAReferences != nil:
			if x.CAReferences.Primary == "" {
				return fmt.Errorf("%w: caReferences needs a primary CA name", ErrInvalid)
			}
			for _, n := range []string{x.CAReferences.Primary, x.CAReferences.Secondary} {
				if n == "" {
					continue
				}
				if _, err := s.CA(ctx, n); err != nil {
					return fmt.Errorf("%w: caReferences: CA %q is not registered with the service", ErrInvalid, n)
				}
			}
			x.ClientCertificates, x.SigningCertificates = nil, nil
			a.SymmetricKey, a.TPM = nil, nil
			break
		case group && x.SigningCertificates != nil:
			certs, x.ClientCertificates = x.SigningCertificates, nil
		case !group && x.ClientCertificates != nil:
			certs, x.SigningCertificates = x.ClientCertificates, nil
		default:
			if group {
				return fmt.Errorf("%w: an x509 enrollment group needs signingCertificates", ErrInvalid)
			}
			return fmt.Errorf("%w: an x509 individual enrollment needs clientCertificates", ErrInvalid)
		}
		if x.CAReferences != nil {
			break
		}
		if certs.Primary == nil || certs.Primary.Certificate == "" {
			return fmt.Errorf("%w: x509 attestation needs a primary certificate", ErrInvalid)
		}
		for _, cw := range []*X509CertificateWithInfo{certs.Primary, certs.Secondary} {
			if err := fillInfo(cw); err != nil {
				return err
			}
		}
		a.SymmetricKey, a.TPM = nil, nil
	case AttestationTPM:
		return fmt.Errorf("%w: TPM attestation is not supported", ErrInvalid)
	default:
		return fmt.Errorf("%w: attestation type must be symmetricKey or x509, not %q", ErrInvalid, a.Type)
	}
	switch e.ProvisioningStatus {
	case "":
		e.ProvisioningStatus = StatusEnabled
	case StatusEnabled, StatusDisabled:
	default:
		return fmt.Errorf("%w: provisioningStatus must be enabled or disabled", ErrInvalid)
	}
	switch e.AllocationPolicy {
	case "":
		e.AllocationPolicy = AllocationHashed
	case AllocationHashed, AllocationStatic, AllocationGeoLatency:
	case AllocationCustom:
		if e.CustomAllocationDefinition == nil || e.CustomAllocationDefinition.WebhookURL == "" {
			return fmt.Errorf("%w: custom allocation needs customAllocationDefinition.webhookUrl", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: allocationPolicy must be hashed, geoLatency, static or custom", ErrInvalid)
	}
	if len(e.IoTHubs) == 0 && e.IoTHubHostName != "" {
		e.IoTHubs = []string{e.IoTHubHostName}
	}
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, n := range e.IoTHubs {
		h, ok := hubByHost(hubs, n)
		if !ok {
			return fmt.Errorf("%w: iotHubs: %q is not a linked hub", ErrInvalid, n)
		}
		if !slices.Contains(names, h.HostName) {
			names = append(names, h.HostName)
		}
	}
	e.IoTHubs = names
	if e.AllocationPolicy == AllocationStatic && len(names) != 1 {
		return fmt.Errorf("%w: static allocation needs exactly one hub in iotHubs", ErrInvalid)
	}
	if len(names) == 1 {
		e.IoTHubHostName = names[0]
	} else {
		e.IoTHubHostName = ""
	}
	return nil
}

// PutIndividual creates or replaces an individual enrollment. ifMatch, when
// set, must match the stored etag. When the change takes the device's
// assigned hub out of the enrollment and its policy allows, the device is
// moved right away (see Reassign); moveErr reports a move that failed
// after the enrollment was saved.
func (s *Service) PutIndividual(ctx context.Context, e IndividualEnrollment, ifMatch string) (out IndividualEnrollment, created bool, moveErr error, err error) {
	if err := ValidateRegistrationID(e.RegistrationID); err != nil {
		return out, false, nil, err
	}
	if e.DeviceID != "" {
		if err := registry.ValidateDeviceID(e.DeviceID); err != nil {
			return out, false, nil, fmt.Errorf("%w: deviceId: %v", ErrInvalid, err)
		}
	}
	if err := s.normalize(ctx, &e.Enrollment, false); err != nil {
		return out, false, nil, err
	}
	s.wmu.Lock()
	cur, err := s.individual(ctx, e.RegistrationID)
	switch {
	case errors.Is(err, ErrNotFound):
		if ifMatch != "" && ifMatch != "*" {
			s.wmu.Unlock()
			return out, false, nil, fmt.Errorf("%w: enrollment %q does not exist", ErrPreconditionFailed, e.RegistrationID)
		}
		created = true
		e.CreatedDateTimeUTC = s.now().UTC()
	case err != nil:
		s.wmu.Unlock()
		return out, false, nil, err
	default:
		if ifMatch != "" && !etagMatches(ifMatch, cur.Etag) {
			s.wmu.Unlock()
			return out, false, nil, fmt.Errorf("%w: enrollment %q has another etag", ErrPreconditionFailed, e.RegistrationID)
		}
		e.CreatedDateTimeUTC = cur.CreatedDateTimeUTC
	}
	e.LastUpdatedDateTimeUTC = s.now().UTC()
	e.Etag = newEtag()
	e.RegistrationState = nil
	b, _ := json.Marshal(e)
	err = s.cfg.Store.Put(ctx, kindIndividual, strings.ToLower(e.RegistrationID), b)
	s.wmu.Unlock()
	if err != nil {
		return out, false, nil, err
	}
	if !created {
		moveErr = s.Reassign(ctx, e.RegistrationID)
	}
	out = e
	out.RegistrationState = s.stateOf(ctx, e.RegistrationID)
	return out, created, moveErr, nil
}

// GetIndividual returns an enrollment with its registration state.
func (s *Service) GetIndividual(ctx context.Context, regID string) (IndividualEnrollment, error) {
	e, err := s.individual(ctx, regID)
	if err != nil {
		return e, err
	}
	e.RegistrationState = s.stateOf(ctx, regID)
	return e, nil
}

// Individuals lists individual enrollments.
func (s *Service) Individuals(ctx context.Context) ([]IndividualEnrollment, error) {
	docs, err := s.cfg.Store.List(ctx, kindIndividual)
	if err != nil {
		return nil, err
	}
	out := make([]IndividualEnrollment, 0, len(docs))
	for _, b := range docs {
		var e IndividualEnrollment
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, err
		}
		e.RegistrationState = s.stateOf(ctx, e.RegistrationID)
		out = append(out, e)
	}
	return out, nil
}

// DeleteIndividual deletes an enrollment and its registration record. Like
// the reference service it leaves the hub identity alone (DESIGN rule 5).
func (s *Service) DeleteIndividual(ctx context.Context, regID, ifMatch string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	cur, err := s.individual(ctx, regID)
	if err != nil {
		return err
	}
	if !etagMatches(ifMatch, cur.Etag) {
		return fmt.Errorf("%w: enrollment %q has another etag", ErrPreconditionFailed, regID)
	}
	if err := s.cfg.Store.Delete(ctx, kindIndividual, strings.ToLower(regID)); err != nil {
		return err
	}
	if err := s.cfg.Store.Delete(ctx, kindRegistration, strings.ToLower(regID)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// PutGroup creates or replaces an enrollment group; see PutIndividual.
func (s *Service) PutGroup(ctx context.Context, g EnrollmentGroup, ifMatch string) (out EnrollmentGroup, created bool, moveErr error, err error) {
	if err := ValidateRegistrationID(g.EnrollmentGroupID); err != nil {
		return out, false, nil, fmt.Errorf("%w: enrollmentGroupId: %v", ErrInvalid, err)
	}
	if err := s.normalize(ctx, &g.Enrollment, true); err != nil {
		return out, false, nil, err
	}
	id := strings.ToLower(g.EnrollmentGroupID)
	s.wmu.Lock()
	var cur EnrollmentGroup
	b, err := s.cfg.Store.Get(ctx, kindGroup, id)
	switch {
	case errors.Is(err, ErrNotFound):
		if ifMatch != "" && ifMatch != "*" {
			s.wmu.Unlock()
			return out, false, nil, fmt.Errorf("%w: enrollment group %q does not exist", ErrPreconditionFailed, g.EnrollmentGroupID)
		}
		created = true
		g.CreatedDateTimeUTC = s.now().UTC()
	case err != nil:
		s.wmu.Unlock()
		return out, false, nil, err
	default:
		if err := json.Unmarshal(b, &cur); err != nil {
			s.wmu.Unlock()
			return out, false, nil, err
		}
		if ifMatch != "" && !etagMatches(ifMatch, cur.Etag) {
			s.wmu.Unlock()
			return out, false, nil, fmt.Errorf("%w: enrollment group %q has another etag", ErrPreconditionFailed, g.EnrollmentGroupID)
		}
		g.CreatedDateTimeUTC = cur.CreatedDateTimeUTC
	}
	g.LastUpdatedDateTimeUTC = s.now().UTC()
	g.Etag = newEtag()
	b, _ = json.Marshal(g)
	err = s.cfg.Store.Put(ctx, kindGroup, id, b)
	s.wmu.Unlock()
	if err != nil {
		return out, false, nil, err
	}
	if !created {
		recs, err := s.groupRecords(ctx, g.EnrollmentGroupID)
		if err != nil {
			moveErr = err
		}
		for _, r := range recs {
			if err := s.Reassign(ctx, r.State.RegistrationID); err != nil && moveErr == nil {
				moveErr = err
			}
		}
	}
	return g, created, moveErr, nil
}

// GetGroup returns an enrollment group.
func (s *Service) GetGroup(ctx context.Context, id string) (EnrollmentGroup, error) {
	var g EnrollmentGroup
	b, err := s.cfg.Store.Get(ctx, kindGroup, strings.ToLower(id))
	if err != nil {
		return g, err
	}
	return g, json.Unmarshal(b, &g)
}

// Groups lists enrollment groups.
func (s *Service) Groups(ctx context.Context) ([]EnrollmentGroup, error) { return s.groups(ctx) }

// DeleteGroup deletes a group; hub identities stay (DESIGN rule 5).
func (s *Service) DeleteGroup(ctx context.Context, id, ifMatch string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	g, err := s.GetGroup(ctx, id)
	if err != nil {
		return err
	}
	if !etagMatches(ifMatch, g.Etag) {
		return fmt.Errorf("%w: enrollment group %q has another etag", ErrPreconditionFailed, id)
	}
	return s.cfg.Store.Delete(ctx, kindGroup, strings.ToLower(id))
}

// ---- registration records ----

func (s *Service) record(ctx context.Context, regID string) (registrationRecord, error) {
	var r registrationRecord
	b, err := s.cfg.Store.Get(ctx, kindRegistration, strings.ToLower(regID))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

func (s *Service) putRecord(ctx context.Context, r registrationRecord) error {
	b, _ := json.Marshal(r)
	return s.cfg.Store.Put(ctx, kindRegistration, strings.ToLower(r.State.RegistrationID), b)
}

func (s *Service) stateOf(ctx context.Context, regID string) *DeviceRegistrationState {
	r, err := s.record(ctx, regID)
	if err != nil {
		return nil
	}
	return &r.State
}

// RegistrationState returns the last registration outcome of regID.
func (s *Service) RegistrationState(ctx context.Context, regID string) (DeviceRegistrationState, error) {
	r, err := s.record(ctx, regID)
	return r.State, err
}

// DeleteRegistrationState forgets a device's registration (its next one is
// an initial assignment); the hub identity stays.
func (s *Service) DeleteRegistrationState(ctx context.Context, regID, ifMatch string) error {
	l := s.regLock(regID)
	l.Lock()
	defer l.Unlock()
	r, err := s.record(ctx, regID)
	if err != nil {
		return err
	}
	if !etagMatches(ifMatch, r.State.Etag) {
		return fmt.Errorf("%w: registration %q has another etag", ErrPreconditionFailed, regID)
	}
	return s.cfg.Store.Delete(ctx, kindRegistration, strings.ToLower(regID))
}

// RegistrationStates lists the records of a group's devices.
func (s *Service) RegistrationStates(ctx context.Context, groupID string) ([]DeviceRegistrationState, error) {
	recs, err := s.groupRecords(ctx, groupID)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceRegistrationState, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.State)
	}
	return out, nil
}

func (s *Service) groupRecords(ctx context.Context, groupID string) ([]registrationRecord, error) {
	docs, err := s.cfg.Store.List(ctx, kindRegistration)
	if err != nil {
		return nil, err
	}
	var out []registrationRecord
	for _, b := range docs {
		var r registrationRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, err
		}
		if strings.EqualFold(r.EnrollmentGroupID, groupID) {
			out = append(out, r)
		}
	}
	return out, nil
}
