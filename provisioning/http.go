package provisioning

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubgate/hubgate/authn"
)

// HTTP serves the service's HTTPS surface (reference §6.3, §7.6):
//
//	device:  PUT  /{idScope}/registrations/{registrationId}/register
//	         GET  /{idScope}/registrations/{registrationId}/operations/{operationId}
//	         POST /{idScope}/registrations/{registrationId}   (status lookup)
//	service: /enrollments/{id}, /enrollmentGroups/{id}, /registrations/{id},
//	         POST /enrollments (bulk), POST .../query,
//	         and hubgate's own: /linkedHubs[/{name}], /certificates[/{name}]
//	         (+ POST .../generateVerificationCode, .../verify), POST /enrollments/{id}/revoke,
//	         POST /enrollmentGroups/{id}/revoke (?cascade=delete|disable)
//
// Service calls need a SAS signed with the service policy (sr = the
// service's host name, skn = provisioningserviceowner).
type HTTP struct {
	svc       *Service
	log       *slog.Logger
	hostNames []string
	clockSkew time.Duration
	now       func() time.Time
}

// NewHTTP returns the handler; hostNames are the service's own names.
func NewHTTP(svc *Service, hostNames []string, log *slog.Logger) *HTTP {
	if log == nil {
		log = slog.Default()
	}
	return &HTTP{svc: svc, log: log, hostNames: hostNames, clockSkew: svc.cfg.ClockSkew, now: svc.cfg.Now}
}

// maxBody caps request bodies: an enrollment with two certificates and an
// initial twin is a few KiB; a bulk request of many is more.
const maxBody = 4 << 20

func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := splitPath(r.URL.EscapedPath())
	if segs == nil {
		h.fail(w, http.StatusNotFound, 404000, "not found")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if len(segs) >= 3 && segs[1] == "registrations" && !isServiceRoot(segs[0]) {
		h.device(w, r, segs)
		return
	}
	if !h.authorized(r) {
		h.fail(w, http.StatusUnauthorized, 401002, "unauthorized: a SAS token of a service policy is required")
		return
	}
	h.service(w, r, segs)
}

func isServiceRoot(s string) bool {
	switch strings.ToLower(s) {
	case "enrollments", "enrollmentgroups", "registrations", "linkedhubs", "certificates":
		return true
	}
	return false
}

// splitPath unescapes each segment; nil on a bad escape or an empty path.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil
		}
		parts[i] = u
	}
	return parts
}

func (h *HTTP) authorized(r *http.Request) bool {
	tok, err := authn.ParseSAS(r.Header.Get("Authorization"))
	if err != nil {
		return false
	}
	p, ok := h.svc.Policy(tok.KeyName)
	if !ok {
		return false
	}
	host, _, err := tok.Audience()
	if err != nil {
		return false
	}
	known := false
	for _, n := range h.hostNames {
		known = known || strings.EqualFold(n, host)
	}
	if !known || h.now().After(time.Unix(tok.Expiry, 0).Add(h.clockSkew)) {
		return false
	}
	return tok.Verify(p.PrimaryKey) || tok.Verify(p.SecondaryKey)
}

// ---- device registration over HTTPS ----

func (h *HTTP) device(w http.ResponseWriter, r *http.Request, segs []string) {
	cred := Credential{IDScope: segs[0], RegistrationID: segs[2], Token: r.Header.Get("Authorization")}
	if cred.Token == "" && r.TLS != nil {
		cred.PeerCertificates = r.TLS.PeerCertificates
	}
	if r.URL.Query().Get("api-version") == "" {
		h.fail(w, http.StatusBadRequest, 400000, "api-version is required")
		return
	}
	retry := strconv.Itoa(max(int(h.svc.RetryAfter()/time.Second), 1))
	switch {
	case len(segs) == 4 && segs[3] == "register" && r.Method == http.MethodPut:
		var rb registerBody
		b, _ := io.ReadAll(r.Body)
		if len(strings.TrimSpace(string(b))) > 0 && json.Unmarshal(b, &rb) != nil {
			h.fail(w, http.StatusBadRequest, 400000, "the request body is not JSON")
			return
		}
		if rb.RegistrationID != "" && rb.RegistrationID != cred.RegistrationID {
			h.fail(w, http.StatusBadRequest, 400000, "registrationId in the body differs from the URL's")
			return
		}
		st, err := h.svc.Register(r.Context(), cred, rb.Payload)
		if err != nil {
			status, _, body := registerError(h.log, cred.RegistrationID, "https", err)
			h.raw(w, status, body)
			return
		}
		w.Header().Set("Retry-After", retry)
		w.Header().Set("Location", r.URL.Path)
		h.json(w, http.StatusAccepted, st)
	case len(segs) == 5 && segs[3] == "operations" && r.Method == http.MethodGet:
		if _, err := h.svc.attest(r.Context(), cred); err != nil && !errors.Is(err, ErrDisabled) {
			status, _, body := registerError(h.log, cred.RegistrationID, "https", err)
			h.raw(w, status, body)
			return
		}
		st, err := h.svc.Operation(r.Context(), cred.RegistrationID, segs[4], 0)
		if err != nil {
			h.fail(w, http.StatusNotFound, 404000, "unknown operation id")
			return
		}
		if st.Status == RegAssigning {
			w.Header().Set("Retry-After", retry)
			h.json(w, http.StatusAccepted, st)
			return
		}
		h.json(w, http.StatusOK, st)
	case len(segs) == 3 && r.Method == http.MethodPost:
		if _, err := h.svc.attest(r.Context(), cred); err != nil && !errors.Is(err, ErrDisabled) {
			status, _, body := registerError(h.log, cred.RegistrationID, "https", err)
			h.raw(w, status, body)
			return
		}
		st, err := h.svc.RegistrationState(r.Context(), cred.RegistrationID)
		if err != nil {
			h.failErr(w, err)
			return
		}
		h.json(w, http.StatusOK, st)
	default:
		h.fail(w, http.StatusNotFound, 404000, "not found")
	}
}

// ---- service API ----

func (h *HTTP) service(w http.ResponseWriter, r *http.Request, segs []string) {
	ctx := r.Context()
	root := strings.ToLower(segs[0])
	ifMatch := r.Header.Get("If-Match")
	switch {
	case root == "enrollments" && len(segs) == 1 && r.Method == http.MethodPost:
		h.bulk(w, r)
	case (root == "enrollments" || root == "enrollmentgroups") && len(segs) == 2 && segs[1] == "query" && r.Method == http.MethodPost:
		var v any
		var err error
		if root == "enrollments" {
			v, err = h.svc.Individuals(ctx)
		} else {
			v, err = h.svc.Groups(ctx)
		}
		if err != nil {
			h.failErr(w, err)
			return
		}
		w.Header().Set("x-ms-item-type", "enrollment")
		h.json(w, http.StatusOK, v)
	case root == "registrations" && len(segs) == 3 && segs[2] == "query" && r.Method == http.MethodPost:
		v, err := h.svc.RegistrationStates(ctx, segs[1])
		if err != nil {
			h.failErr(w, err)
			return
		}
		w.Header().Set("x-ms-item-type", "deviceRegistration")
		h.json(w, http.StatusOK, v)
	case root == "enrollments" && len(segs) == 2:
		switch r.Method {
		case http.MethodPut:
			var e IndividualEnrollment
			if !h.decode(w, r, &e) {
				return
			}
			if e.RegistrationID == "" {
				e.RegistrationID = segs[1]
			}
			if !strings.EqualFold(e.RegistrationID, segs[1]) {
				h.fail(w, http.StatusBadRequest, 400000, "registrationId in the body differs from the URL's")
				return
			}
			out, _, moveErr, err := h.svc.PutIndividual(ctx, e, ifMatch)
			h.putResult(w, out, moveErr, err)
		case http.MethodGet:
			e, err := h.svc.GetIndividual(ctx, segs[1])
			h.result(w, e, err)
		case http.MethodDelete:
			h.deleted(w, h.svc.DeleteIndividual(ctx, segs[1], ifMatch))
		default:
			h.fail(w, http.StatusMethodNotAllowed, 405000, "method not allowed")
		}
	case root == "enrollmentgroups" && len(segs) == 2:
		switch r.Method {
		case http.MethodPut:
			var g EnrollmentGroup
			if !h.decode(w, r, &g) {
				return
			}
			if g.EnrollmentGroupID == "" {
				g.EnrollmentGroupID = segs[1]
			}
			if !strings.EqualFold(g.EnrollmentGroupID, segs[1]) {
				h.fail(w, http.StatusBadRequest, 400000, "enrollmentGroupId in the body differs from the URL's")
				return
			}
			out, _, moveErr, err := h.svc.PutGroup(ctx, g, ifMatch)
			h.putResult(w, out, moveErr, err)
		case http.MethodGet:
			g, err := h.svc.GetGroup(ctx, segs[1])
			h.result(w, g, err)
		case http.MethodDelete:
			h.deleted(w, h.svc.DeleteGroup(ctx, segs[1], ifMatch))
		default:
			h.fail(w, http.StatusMethodNotAllowed, 405000, "method not allowed")
		}
	case (root == "enrollments" || root == "enrollmentgroups") && len(segs) == 3 && segs[2] == "attestationmechanism" && r.Method == http.MethodPost:
		if root == "enrollments" {
			e, err := h.svc.GetIndividual(ctx, segs[1])
			h.result(w, e.Attestation, err)
		} else {
			g, err := h.svc.GetGroup(ctx, segs[1])
			h.result(w, g.Attestation, err)
		}
	case (root == "enrollments" || root == "enrollmentgroups") && len(segs) == 3 && segs[2] == "revoke" && r.Method == http.MethodPost:
		c := Cascade(r.URL.Query().Get("cascade"))
		var body struct {
			Cascade Cascade `json:"cascade"`
		}
		if b, _ := io.ReadAll(r.Body); len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				h.fail(w, http.StatusBadRequest, 400000, "the request body is not JSON")
				return
			}
			if c == CascadeNone {
				c = body.Cascade
			}
		}
		if c != CascadeNone && c != CascadeDelete && c != CascadeDisable {
			h.fail(w, http.StatusBadRequest, 400000, "cascade must be delete or disable")
			return
		}
		if root == "enrollments" {
			e, err := h.svc.RevokeIndividual(ctx, segs[1], c)
			h.result(w, e, err)
		} else {
			g, err := h.svc.RevokeGroup(ctx, segs[1], c)
			h.result(w, g, err)
		}
	case root == "registrations" && len(segs) == 2:
		switch r.Method {
		case http.MethodGet:
			st, err := h.svc.RegistrationState(ctx, segs[1])
			h.result(w, st, err)
		case http.MethodDelete:
			h.deleted(w, h.svc.DeleteRegistrationState(ctx, segs[1], ifMatch))
		default:
			h.fail(w, http.StatusMethodNotAllowed, 405000, "method not allowed")
		}
	case root == "certificates" && len(segs) == 1 && r.Method == http.MethodGet:
		cas, err := h.svc.CAs(ctx)
		h.result(w, cas, err)
	case root == "certificates" && len(segs) == 2:
		switch r.Method {
		case http.MethodPut:
			var up struct {
				Certificate string `json:"certificate"`
				IsVerified  bool   `json:"isVerified"`
			}
			if !h.decode(w, r, &up) {
				return
			}
			ca, err := h.svc.AddCA(ctx, segs[1], []byte(up.Certificate), up.IsVerified)
			h.result(w, ca, err)
		case http.MethodGet:
			ca, err := h.svc.CA(ctx, segs[1])
			h.result(w, ca, err)
		case http.MethodDelete:
			h.deleted(w, h.svc.DeleteCA(ctx, segs[1]))
		default:
			h.fail(w, http.StatusMethodNotAllowed, 405000, "method not allowed")
		}
	case root == "certificates" && len(segs) == 3 && segs[2] == "generateVerificationCode" && r.Method == http.MethodPost:
		ca, err := h.svc.VerificationCode(ctx, segs[1])
		h.result(w, ca, err)
	case root == "certificates" && len(segs) == 3 && segs[2] == "verify" && r.Method == http.MethodPost:
		var proof struct {
			Certificate string `json:"certificate"`
		}
		if !h.decode(w, r, &proof) {
			return
		}
		ca, err := h.svc.VerifyCA(ctx, segs[1], []byte(proof.Certificate))
		h.result(w, ca, err)
	case root == "linkedhubs" && len(segs) == 1 && r.Method == http.MethodGet:
		hubs, err := h.svc.Hubs(ctx)
		for i := range hubs {
			hubs[i] = hubs[i].Redacted()
		}
		h.result(w, hubs, err)
	case root == "linkedhubs" && len(segs) == 2:
		switch r.Method {
		case http.MethodPut:
			var lh LinkedHub
			if !h.decode(w, r, &lh) {
				return
			}
			lh.Name = segs[1]
			out, err := h.svc.LinkHub(ctx, lh)
			h.result(w, out, err)
		case http.MethodGet:
			hubs, err := h.svc.Hubs(ctx)
			if err != nil {
				h.failErr(w, err)
				return
			}
			for _, x := range hubs {
				if x.Name == segs[1] {
					h.json(w, http.StatusOK, x.Redacted())
					return
				}
			}
			h.failErr(w, ErrNotFound)
		case http.MethodDelete:
			h.deleted(w, h.svc.UnlinkHub(ctx, segs[1]))
		default:
			h.fail(w, http.StatusMethodNotAllowed, 405000, "method not allowed")
		}
	default:
		h.fail(w, http.StatusNotFound, 404000, "not found")
	}
}

type bulkOperation struct {
	Mode        string                 `json:"mode"`
	Enrollments []IndividualEnrollment `json:"enrollments"`
}

type bulkError struct {
	RegistrationID string `json:"registrationId"`
	ErrorCode      int    `json:"errorCode"`
	ErrorStatus    string `json:"errorStatus"`
}

type bulkResult struct {
	IsSuccessful bool        `json:"isSuccessful"`
	Errors       []bulkError `json:"errors"`
}

func (h *HTTP) bulk(w http.ResponseWriter, r *http.Request) {
	var op bulkOperation
	if !h.decode(w, r, &op) {
		return
	}
	res := bulkResult{IsSuccessful: true, Errors: []bulkError{}}
	for _, e := range op.Enrollments {
		var err error
		switch op.Mode {
		case "create":
			if _, gerr := h.svc.individual(r.Context(), e.RegistrationID); gerr == nil {
				err = ErrExists
			} else {
				_, _, _, err = h.svc.PutIndividual(r.Context(), e, "")
			}
		case "update":
			_, _, _, err = h.svc.PutIndividual(r.Context(), e, "")
		case "updateIfMatchEtag":
			_, _, _, err = h.svc.PutIndividual(r.Context(), e, e.Etag)
		case "delete":
			err = h.svc.DeleteIndividual(r.Context(), e.RegistrationID, "")
		default:
			h.fail(w, http.StatusBadRequest, 400000, "mode must be create, update, updateIfMatchEtag or delete")
			return
		}
		if err != nil {
			status, code, _ := statusOf(err)
			res.IsSuccessful = false
			res.Errors = append(res.Errors, bulkError{RegistrationID: e.RegistrationID, ErrorCode: code, ErrorStatus: http.StatusText(status) + ": " + strings.TrimPrefix(err.Error(), "provisioning: ")})
		}
	}
	h.json(w, http.StatusOK, res)
}

func (h *HTTP) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		h.fail(w, http.StatusBadRequest, 400000, "the request body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}

func (h *HTTP) putResult(w http.ResponseWriter, v any, moveErr, err error) {
	if err != nil {
		h.failErr(w, err)
		return
	}
	if moveErr != nil {
		h.log.Warn("enrollment saved, device move failed", "error", moveErr)
		h.fail(w, http.StatusBadGateway, 502000, "the enrollment was saved, but moving its device failed ("+
			strings.TrimPrefix(moveErr.Error(), "provisioning: ")+"); the device moves when it re-provisions")
		return
	}
	h.json(w, http.StatusOK, v)
}

func (h *HTTP) result(w http.ResponseWriter, v any, err error) {
	if err != nil {
		h.failErr(w, err)
		return
	}
	h.json(w, http.StatusOK, v)
}

func (h *HTTP) deleted(w http.ResponseWriter, err error) {
	if err != nil {
		h.failErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *HTTP) json(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errorCode":500000,"message":"internal error"}`)
	}
	h.raw(w, status, b)
}

func (h *HTTP) raw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// statusOf maps a service error to HTTP status, DPS error code and text.
func statusOf(err error) (int, int, string) {
	text := strings.TrimPrefix(err.Error(), "provisioning: ")
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, 404201, text
	case errors.Is(err, ErrExists):
		return http.StatusConflict, 409201, text
	case errors.Is(err, ErrPreconditionFailed):
		return http.StatusPreconditionFailed, 412201, text
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, 400004, text
	case errors.Is(err, ErrHubUnauthorized), errors.Is(err, ErrHubUnavailable):
		return http.StatusBadGateway, 502000, text
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, 503000, "the store is unavailable; retry later"
	}
	return http.StatusInternalServerError, 500000, "internal error"
}

func (h *HTTP) failErr(w http.ResponseWriter, err error) {
	status, code, text := statusOf(err)
	if status >= 500 {
		h.log.Error("provisioning api error", "error", err)
	}
	h.fail(w, status, code, text)
}

func (h *HTTP) fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("x-ms-error-code", strconv.Itoa(code))
	_, _, b := errorBody(status, code, msg)
	h.raw(w, status, b)
}
