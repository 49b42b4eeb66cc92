package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// OperationStatus is the RegistrationOperationStatus of reference §6.4.
type OperationStatus struct {
	OperationID       string                   `json:"operationId"`
	Status            string                   `json:"status"`
	RegistrationState *DeviceRegistrationState `json:"registrationState,omitempty"`
}

// DPS error codes devices see (reference §6.4).
const (
	codeNoHub           = 400208
	codeHubUnauthorized = 400209
	codeHubUnavailable  = 503000 // UNCERTAIN: DPS's own code for a hub outage is not documented
	codeInvalid         = 400000
	codeInternal        = 500000
)

// Register attests the device and starts its assignment. The returned
// status is "assigning" with an operation id; poll with Operation. An
// attestation failure is returned as an error (ErrUnauthorized,
// ErrDisabled, ErrUnavailable).
func (s *Service) Register(ctx context.Context, c Credential, payload json.RawMessage) (OperationStatus, error) {
	att, err := s.attest(ctx, c)
	if err != nil {
		s.metrics.registration("refused", reasonOf(err), "")
		return OperationStatus{}, err
	}
	op := &operation{
		id:      "5." + strconv.FormatInt(s.now().Unix(), 16) + "." + uuid(),
		regID:   strings.ToLower(c.RegistrationID),
		created: s.now(),
		done:    make(chan struct{}),
	}
	s.opMu.Lock()
	for id, o := range s.ops { // drop operations nobody polled in time
		if s.now().Sub(o.created) > s.cfg.OperationTTL {
			delete(s.ops, id)
		}
	}
	s.ops[op.id] = op
	s.opMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.AssignTimeout)
		defer cancel()
		op.state = s.assign(ctx, att, payload, op.id)
		close(op.done)
	}()
	return OperationStatus{OperationID: op.id, Status: RegAssigning}, nil
}

// Operation reports an operation of registration id regID; ErrNotFound when
// there is none (or it is another device's). wait bounds how long it waits
// for a running assignment before answering "assigning".
func (s *Service) Operation(ctx context.Context, regID, opID string, wait time.Duration) (OperationStatus, error) {
	s.opMu.Lock()
	op, ok := s.ops[opID]
	s.opMu.Unlock()
	if !ok {
		return s.storedOperation(ctx, regID, opID)
	}
	if op.regID != strings.ToLower(regID) {
		return OperationStatus{}, fmt.Errorf("%w: operation %q", ErrNotFound, opID)
	}
	done := func() (OperationStatus, error) {
		st := op.state
		return OperationStatus{OperationID: op.id, Status: st.Status, RegistrationState: &st}, nil
	}
	select { // a finished operation wins over an expired wait: select alone would pick at random
	case <-op.done:
		return done()
	default:
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-op.done:
			return done()
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return OperationStatus{OperationID: op.id, Status: RegAssigning}, nil
}

// storedOperation answers a poll for an operation this node does not run
// (another node of a shared store took the register request, or this node
// restarted): the registration record names the operation that wrote it;
// an operation younger than an assignment can take is still "assigning";
// anything else is unknown.
func (s *Service) storedOperation(ctx context.Context, regID, opID string) (OperationStatus, error) {
	rec, err := s.record(ctx, regID)
	if err == nil && rec.OperationID == opID {
		st := rec.State
		return OperationStatus{OperationID: opID, Status: st.Status, RegistrationState: &st}, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return OperationStatus{}, err
	}
	parts := strings.Split(opID, ".")
	if len(parts) == 3 && parts[0] == "5" {
		if sec, perr := strconv.ParseInt(parts[1], 16, 64); perr == nil {
			if age := s.now().Sub(time.Unix(sec, 0)); age >= -time.Minute && age < s.cfg.AssignTimeout+5*time.Second {
				return OperationStatus{OperationID: opID, Status: RegAssigning}, nil
			}
		}
	}
	return OperationStatus{}, fmt.Errorf("%w: operation %q", ErrNotFound, opID)
}

// RetryAfter is the poll interval the edges announce.
func (s *Service) RetryAfter() time.Duration { return s.cfg.RetryAfter }

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// candidates are the linked hubs an enrollment may use: its iotHubs, or
// every linked hub when it names none.
func candidates(e *Enrollment, hubs []LinkedHub) []LinkedHub {
	if len(e.IoTHubs) == 0 {
		return hubs
	}
	var out []LinkedHub
	for _, n := range e.IoTHubs {
		if h, ok := hubByHost(hubs, n); ok {
			out = append(out, h)
		}
	}
	return out
}

// allocation is a chosen hub plus what a custom webhook added.
type allocation struct {
	hub     LinkedHub
	payload json.RawMessage
}

func (s *Service) allocate(ctx context.Context, att *attestation, e *Enrollment, cands []LinkedHub, rec *registrationRecord, payload json.RawMessage) (allocation, error) {
	if len(cands) == 0 {
		return allocation{}, ErrNoHub
	}
	switch e.AllocationPolicy {
	case AllocationStatic:
		return allocation{hub: cands[0]}, nil
	case AllocationCustom:
		req := customRequest{IndividualEnrollment: att.individual, EnrollmentGroup: att.group,
			DeviceRuntimeContext: customContext{RegistrationID: att.regID, Payload: payload}}
		if rec != nil && rec.State.Status == RegAssigned {
			req.DeviceRuntimeContext.CurrentIoTHubHostName = rec.State.AssignedHub
			req.DeviceRuntimeContext.CurrentDeviceID = rec.State.DeviceID
		}
		if att.kind == AttestationX509 {
			req.DeviceRuntimeContext.X509 = map[string]string{}
		} else {
			req.DeviceRuntimeContext.SymmetricKey = map[string]string{}
		}
		for _, h := range cands {
			req.LinkedHubs = append(req.LinkedHubs, h.HostName)
		}
		// The webhook sees the enrollment without its keys.
		req.IndividualEnrollment, req.EnrollmentGroup = redactIndividual(att.individual), redactGroup(att.group)
		resp, err := callWebhook(ctx, s.cfg.Webhook, e.CustomAllocationDefinition, req)
		if err != nil {
			return allocation{}, err
		}
		h, ok := hubByHost(cands, resp.IoTHubHostName)
		if !ok {
			return allocation{}, fmt.Errorf("%w: the custom allocation webhook chose %q, not one of the enrollment's hubs", ErrNoHub, resp.IoTHubHostName)
		}
		return allocation{hub: h, payload: resp.Payload}, nil
	default: // hashed; geoLatency has one region here and hashes too
		h, _ := pickHashed(cands, att.regID)
		return allocation{hub: h}, nil
	}
}

func redactIndividual(e *IndividualEnrollment) *IndividualEnrollment {
	if e == nil {
		return nil
	}
	c := *e
	c.Attestation = redactAttestation(c.Attestation)
	return &c
}

func redactGroup(g *EnrollmentGroup) *EnrollmentGroup {
	if g == nil {
		return nil
	}
	c := *g
	c.Attestation = redactAttestation(c.Attestation)
	return &c
}

func redactAttestation(a AttestationMechanism) AttestationMechanism {
	if a.SymmetricKey != nil {
		a.SymmetricKey = &SymmetricKeyAttestation{}
	}
	return a
}

// assign runs one registration to its final state: allocate, create or
// update the identity in the chosen hub, remove it from the hub it leaves,
// record the outcome.
func (s *Service) assign(ctx context.Context, att *attestation, payload json.RawMessage, opID string) DeviceRegistrationState {
	l := s.regLock(att.regID)
	l.Lock()
	defer l.Unlock()
	now := s.now().UTC()
	rec, err := s.record(ctx, att.regID)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return s.failed(att, now, codeInternal, err)
	}
	if !exists {
		rec = registrationRecord{State: DeviceRegistrationState{RegistrationID: att.regID, CreatedDateTimeUTC: now}}
	}
	rec.EnrollmentGroupID = att.groupID()
	rec.OperationID = opID
	e := att.enrollment()
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return s.failed(att, now, codeInternal, err)
	}
	cands := candidates(e, hubs)
	prevAssigned := exists && rec.State.Status == RegAssigned && rec.State.AssignedHub != ""
	prevHost := rec.State.AssignedHub

	var al allocation
	prevHub, prevLinked := hubByHost(hubs, prevHost)
	_, prevAllowed := hubByHost(cands, prevHost)
	switch {
	case prevAssigned && prevAllowed && e.AllocationPolicy != AllocationCustom:
		al.hub = prevHub // sticky: hashed is stable, static unchanged
	case prevAssigned && prevLinked && !e.reprovision().UpdateHubAssignment:
		al.hub = prevHub // "never re-provision": stays where it is
	default:
		al, err = s.allocate(ctx, att, e, cands, &rec, payload)
		if err != nil {
			return s.failedWith(ctx, &rec, att, now, err)
		}
	}
	substatus, cleanupErr, err := s.place(ctx, &rec, att.deviceID, al.hub, prevAssigned, att.hubAuth, e)
	if err != nil {
		return s.failedWith(ctx, &rec, att, now, err)
	}
	if cleanupErr != nil {
		s.log.Warn("identity not removed from the previous hub", "registration_id", att.regID, "hub", prevHost, "error", cleanupErr)
	}
	st := &rec.State
	if substatus != "" {
		st.Substatus = substatus
	} // else the hub did not change: the last assignment's substatus (an operator's move, say) stands
	rec.MovedBy = ""
	if st.Substatus == "" {
		st.Substatus = SubInitialAssignment
	}
	st.Status, st.ErrorCode, st.ErrorMessage = RegAssigned, 0, ""
	st.LastUpdatedDateTimeUTC = now
	st.Etag = newEtag()
	st.Payload = nil
	if len(al.payload) > 0 {
		st.Payload = al.payload
	}
	st.SymmetricKey, st.X509 = nil, nil
	ref := map[string]string{}
	if g := att.groupID(); g != "" {
		ref["enrollmentGroupId"] = g
	}
	if att.kind == AttestationX509 {
		st.X509 = ref
	} else {
		st.SymmetricKey = ref
	}
	if err := s.putRecord(ctx, rec); err != nil {
		return s.failed(att, now, codeInternal, err)
	}
	s.metrics.registration("assigned", "", st.Substatus)
	s.log.Info("device assigned", "registration_id", att.regID, "device_id", st.DeviceID, "hub", st.AssignedHub, "substatus", st.Substatus)
	return *st
}

// place makes deviceID live in hub target with auth, and only there: it
// removes the identity from the hub the device had. It returns the
// substatus of what happened ("" when the hub did not change), and the
// error of removing the old identity separately: the device is assigned
// either way.
func (s *Service) place(ctx context.Context, rec *registrationRecord, deviceID string, target LinkedHub, prevAssigned bool, auth registry.Authentication, e *Enrollment) (substatus string, cleanupErr, err error) {
	prevHost := rec.State.AssignedHub
	moved := prevAssigned && !strings.EqualFold(prevHost, target.HostName)
	migrate := e.reprovision().MigrateDeviceData
	caps := Capabilities{}
	if e.Capabilities != nil {
		caps = *e.Capabilities
	}
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return "", nil, err
	}
	var old HubRegistry
	var oldDev *registry.Device
	if moved {
		if h, ok := hubByHost(hubs, prevHost); ok {
			if old, cleanupErr = s.dial(h); cleanupErr == nil && migrate {
				// "Device data" the hub holds: status and capabilities
				// (there is no twin to carry yet).
				if d, err := old.Device(ctx, rec.State.DeviceID); err == nil {
					oldDev = &d
				}
			}
		} else {
			cleanupErr = fmt.Errorf("hub %s is no longer linked", prevHost)
		}
	}
	hub, err := s.dial(target)
	if err != nil {
		return "", nil, err
	}
	reset := !prevAssigned || (moved && !migrate)
	if err := upsertIdentity(ctx, hub, deviceID, auth, caps, reset); err != nil {
		return "", nil, err
	}
	if oldDev != nil && oldDev.Status == registry.StatusDisabled {
		if cur, err := hub.Device(ctx, deviceID); err == nil {
			cur.Status, cur.StatusReason, cur.Capabilities = oldDev.Status, oldDev.StatusReason, oldDev.Capabilities
			if _, err := hub.PutDevice(ctx, cur, "*"); err != nil {
				return "", nil, err
			}
		}
	}
	if prevAssigned && rec.State.DeviceID != "" && rec.State.DeviceID != deviceID && !moved && old == nil {
		// Same hub, new device id: the old identity goes.
		if err := hub.DeleteDevice(ctx, rec.State.DeviceID); err != nil && !errors.Is(err, ErrNotFound) {
			cleanupErr = err
		}
	}
	if old != nil {
		if err := old.DeleteDevice(ctx, rec.State.DeviceID); err != nil && !errors.Is(err, ErrNotFound) {
			cleanupErr = err
		}
	}
	switch {
	case !prevAssigned:
		substatus = SubInitialAssignment
	case moved && len(rec.PreviousHubs) > 0 && strings.EqualFold(rec.PreviousHubs[0], target.HostName):
		substatus = SubReprovisionedToInitialAssignment
	case moved && migrate:
		substatus = SubDeviceDataMigrated
	case moved:
		substatus = SubDeviceDataReset
	}
	if moved {
		if len(rec.PreviousHubs) == 0 || !strings.EqualFold(rec.PreviousHubs[len(rec.PreviousHubs)-1], prevHost) {
			rec.PreviousHubs = append(rec.PreviousHubs, prevHost)
		}
		if len(rec.PreviousHubs) > 16 {
			rec.PreviousHubs = slices.Delete(rec.PreviousHubs, 1, 2) // keep the initial hub
		}
	} else if !prevAssigned && len(rec.PreviousHubs) == 0 {
		rec.PreviousHubs = []string{target.HostName}
	}
	rec.State.AssignedHub = target.HostName
	rec.State.DeviceID = deviceID
	rec.HubAuth = auth
	return substatus, cleanupErr, nil
}

// failedWith records a failed assignment and returns its state. The
// record keeps the hub the device had: a failure does not forget it.
func (s *Service) failedWith(ctx context.Context, rec *registrationRecord, att *attestation, now time.Time, err error) DeviceRegistrationState {
	st := s.failed(att, now, errorCode(err), err)
	if rec.State.Status != RegAssigned { // keep an assigned record as it was
		rec.State.Status, rec.State.ErrorCode, rec.State.ErrorMessage = st.Status, st.ErrorCode, st.ErrorMessage
		rec.State.LastUpdatedDateTimeUTC = now
		rec.State.Etag = newEtag()
		if perr := s.putRecord(ctx, *rec); perr != nil {
			s.log.Warn("registration record not saved", "registration_id", att.regID, "error", perr)
		}
	}
	return st
}

func (s *Service) failed(att *attestation, now time.Time, code int, err error) DeviceRegistrationState {
	s.metrics.registration("failed", reasonOf(err), "")
	s.log.Warn("assignment failed", "registration_id", att.regID, "reason", reasonOf(err), "error", err)
	return DeviceRegistrationState{RegistrationID: att.regID, CreatedDateTimeUTC: now, LastUpdatedDateTimeUTC: now,
		Status: RegFailed, ErrorCode: code, ErrorMessage: publicMessage(err)}
}

func errorCode(err error) int {
	switch {
	case errors.Is(err, ErrNoHub):
		return codeNoHub
	case errors.Is(err, ErrHubUnauthorized):
		return codeHubUnauthorized
	case errors.Is(err, ErrHubUnavailable):
		return codeHubUnavailable
	case errors.Is(err, ErrInvalid):
		return codeInvalid
	}
	return codeInternal
}

// publicMessage is what a device may read about a failure.
func publicMessage(err error) string {
	switch {
	case errors.Is(err, ErrNoHub):
		return strings.TrimPrefix(err.Error(), "provisioning: ")
	case errors.Is(err, ErrHubUnauthorized):
		return "the assigned IoT hub refused the provisioning service's credentials"
	case errors.Is(err, ErrHubUnavailable):
		return "the assigned IoT hub is unavailable; retry later"
	case errors.Is(err, ErrInvalid):
		return "the hub refused the device identity"
	}
	return "internal error"
}

// reasonOf names an error for logs and metrics.
func reasonOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrDisabled):
		return "enrollment_disabled"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrNoHub):
		return "no_hub"
	case errors.Is(err, ErrHubUnauthorized):
		return "hub_unauthorized"
	case errors.Is(err, ErrHubUnavailable):
		return "hub_unavailable"
	case errors.Is(err, ErrUnavailable):
		return "store_unavailable"
	}
	return "internal"
}

// ReasonOf is reasonOf for the edges.
func ReasonOf(err error) string { return reasonOf(err) }

// Reassign moves an assigned device whose hub its enrollment no longer
// allows, when the enrollment is enabled and its reprovision policy updates
// hub assignments: the identity is created in the new hub and deleted from
// the old one (which then refuses the device and closes its sessions). The
// device learns its new hub when it re-provisions. A device that needs no
// move is left alone.
func (s *Service) Reassign(ctx context.Context, regID string) error {
	l := s.regLock(regID)
	l.Lock()
	defer l.Unlock()
	rec, err := s.record(ctx, regID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.State.Status != RegAssigned {
		return nil
	}
	att := &attestation{regID: rec.State.RegistrationID, deviceID: rec.State.DeviceID, hubAuth: rec.HubAuth, kind: AttestationSymmetricKey}
	if rec.HubAuth.Type == registry.AuthSelfSigned {
		att.kind = AttestationX509
	}
	if ind, err := s.individual(ctx, regID); err == nil {
		att.individual = &ind
		att.deviceID = deviceIDOf(&ind)
	} else if g, err := s.GetGroup(ctx, rec.EnrollmentGroupID); err == nil && rec.EnrollmentGroupID != "" {
		att.group = &g
	} else {
		return nil
	}
	e := att.enrollment()
	if !e.enabled() || !e.reprovision().UpdateHubAssignment {
		return nil
	}
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return err
	}
	cands := candidates(e, hubs)
	if _, ok := hubByHost(cands, rec.State.AssignedHub); ok {
		return nil
	}
	al, err := s.allocate(ctx, att, e, cands, &rec, nil)
	if err != nil {
		s.metrics.move("failed")
		return err
	}
	substatus, cleanupErr, err := s.place(ctx, &rec, att.deviceID, al.hub, true, rec.HubAuth, e)
	if err != nil {
		s.metrics.move("failed")
		return err
	}
	s.metrics.move("moved")
	rec.State.Substatus = substatus
	rec.MovedBy = "operator"
	rec.State.LastUpdatedDateTimeUTC = s.now().UTC()
	rec.State.Etag = newEtag()
	if err := s.putRecord(ctx, rec); err != nil {
		return err
	}
	s.log.Info("device moved", "registration_id", regID, "hub", al.hub.HostName, "substatus", substatus)
	if cleanupErr != nil {
		return fmt.Errorf("%w: moved to %s, but the identity was not removed from the previous hub: %v", ErrHubUnavailable, al.hub.HostName, cleanupErr)
	}
	return nil
}

// Cascade says what revocation does to hub identities.
type Cascade string

const (
	CascadeNone    Cascade = ""
	CascadeDelete  Cascade = "delete"
	CascadeDisable Cascade = "disable"
)

// RevokeIndividual disables an individual enrollment (future registrations
// are refused) and, with a cascade, deletes or disables the identity in the
// device's assigned hub — which the reference service never does.
func (s *Service) RevokeIndividual(ctx context.Context, regID string, c Cascade) (IndividualEnrollment, error) {
	s.wmu.Lock()
	e, err := s.individual(ctx, regID)
	if err != nil {
		s.wmu.Unlock()
		return e, err
	}
	e.ProvisioningStatus = StatusDisabled
	e.LastUpdatedDateTimeUTC = s.now().UTC()
	e.Etag = newEtag()
	b, _ := json.Marshal(e)
	err = s.cfg.Store.Put(ctx, kindIndividual, strings.ToLower(regID), b)
	s.wmu.Unlock()
	if err != nil {
		return e, err
	}
	if c != CascadeNone {
		if err := s.cascade(ctx, regID, c); err != nil {
			return e, err
		}
	}
	e.RegistrationState = s.stateOf(ctx, regID)
	return e, nil
}

// RevokeGroup disables a group and, with a cascade, every identity its
// devices got.
func (s *Service) RevokeGroup(ctx context.Context, id string, c Cascade) (EnrollmentGroup, error) {
	s.wmu.Lock()
	g, err := s.GetGroup(ctx, id)
	if err != nil {
		s.wmu.Unlock()
		return g, err
	}
	g.ProvisioningStatus = StatusDisabled
	g.LastUpdatedDateTimeUTC = s.now().UTC()
	g.Etag = newEtag()
	b, _ := json.Marshal(g)
	err = s.cfg.Store.Put(ctx, kindGroup, strings.ToLower(id), b)
	s.wmu.Unlock()
	if err != nil || c == CascadeNone {
		return g, err
	}
	recs, err := s.groupRecords(ctx, id)
	if err != nil {
		return g, err
	}
	var first error
	for _, r := range recs {
		if err := s.cascade(ctx, r.State.RegistrationID, c); err != nil && first == nil {
			first = err
		}
	}
	return g, first
}

// cascade deletes or disables the hub identity of regID's last assignment.
func (s *Service) cascade(ctx context.Context, regID string, c Cascade) error {
	l := s.regLock(regID)
	l.Lock()
	defer l.Unlock()
	rec, err := s.record(ctx, regID)
	if errors.Is(err, ErrNotFound) || (err == nil && rec.State.Status != RegAssigned) {
		return nil
	}
	if err != nil {
		return err
	}
	hubs, err := s.Hubs(ctx)
	if err != nil {
		return err
	}
	h, ok := hubByHost(hubs, rec.State.AssignedHub)
	if !ok {
		return fmt.Errorf("%w: hub %s is no longer linked", ErrHubUnavailable, rec.State.AssignedHub)
	}
	hub, err := s.dial(h)
	if err != nil {
		return err
	}
	switch c {
	case CascadeDelete:
		if err := hub.DeleteDevice(ctx, rec.State.DeviceID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	case CascadeDisable:
		d, err := hub.Device(ctx, rec.State.DeviceID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			d.Status = registry.StatusDisabled
			reason := "revoked by the provisioning service"
			d.StatusReason = &reason
			if _, err := hub.PutDevice(ctx, d, "*"); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: cascade must be delete or disable", ErrInvalid)
	}
	rec.State.Status = RegDisabled
	rec.State.ErrorMessage = "enrollment revoked; hub identity " + string(c) + "d"
	rec.State.LastUpdatedDateTimeUTC = s.now().UTC()
	rec.State.Etag = newEtag()
	s.log.Info("enrollment revoked with cascade", "registration_id", regID, "hub", h.HostName, "cascade", string(c))
	return s.putRecord(ctx, rec)
}

// Attest checks a device's credential without registering it (the AMQP
// and MQTT heads decide a connection with it). ErrDisabled means the
// credential is good but its enrollment refuses registrations.
func (s *Service) Attest(ctx context.Context, c Credential) error {
	_, err := s.attest(ctx, c)
	return err
}

// RefusalBody is the device's answer to a refused registration: an
// HTTP-like status and a ProvisioningServiceErrorDetails JSON body. The
// reason is logged, not told.
func (s *Service) RefusalBody(regID, transport string, err error) (int, []byte) {
	status, _, body := registerError(s.log, regID, transport, err)
	return status, body
}
