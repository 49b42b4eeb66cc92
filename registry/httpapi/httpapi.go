package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubgate/hubgate/registry"
)

// PolicyAuthorizer checks a service SAS token for a set of rights;
// *authn.Authenticator is one.
type PolicyAuthorizer interface {
	AuthorizePolicy(token string, want registry.Rights) (policy string, expires time.Time, err error)
}

// Options configure a Handler. Zero values give the defaults of setDefaults.
type Options struct {
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now; stamps error bodies
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// MaxBodyBytes caps a request body. A device or certificate document is a
// few KiB; 64 KiB leaves room for long certificate chains.
const MaxBodyBytes = 64 << 10

const contentType = "application/json; charset=utf-8"

// Handler serves the registry REST API. It is safe for concurrent use.
type Handler struct {
	reg  *registry.Registry
	auth PolicyAuthorizer
	log  *slog.Logger
	now  func() time.Time
}

// New returns the handler for reg, authorising requests with auth.
func New(reg *registry.Registry, auth PolicyAuthorizer, opts Options) *Handler {
	opts.setDefaults()
	return &Handler{reg: reg, auth: auth, log: opts.Logger, now: opts.Now}
}

// route is what a request path resolved to.
type route struct {
	kind   routeKind
	id     string // device id or CA name, percent-decoded
	method map[string]registry.Rights
}

type routeKind uint8

const (
	routeDevices routeKind = iota + 1
	routeDevice
	routeCAs
	routeCA
	routeCACode
	routeCAVerify
)

var (
	readOnly  = map[string]registry.Rights{http.MethodGet: registry.RegistryRead}
	readWrite = map[string]registry.Rights{
		http.MethodGet: registry.RegistryRead, http.MethodPut: registry.RegistryWrite, http.MethodDelete: registry.RegistryWrite,
	}
	postOnly = map[string]registry.Rights{http.MethodPost: registry.RegistryWrite}
)

// resolve splits the escaped path into segments and decodes each one, so an
// id containing %2F stays one segment (reference §7.2: ids are
// encodeURIComponent-ed). ok is false for an unknown path.
func resolve(escapedPath string) (route, bool) {
	p := strings.TrimPrefix(escapedPath, "/")
	// The Node Registry lists with GET /devices/ (an empty id appended to
	// the collection path); a trailing slash names the collection.
	if c, ok := strings.CutSuffix(p, "/"); ok && !strings.Contains(c, "/") {
		p = c
	}
	raw := strings.Split(p, "/")
	seg := make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil || d == "" {
			return route{}, false
		}
		seg[i] = d
	}
	switch {
	case len(seg) == 1 && seg[0] == "devices":
		return route{kind: routeDevices, method: readOnly}, true
	case len(seg) == 2 && seg[0] == "devices":
		return route{kind: routeDevice, id: seg[1], method: readWrite}, true
	case len(seg) == 1 && seg[0] == "certificates":
		return route{kind: routeCAs, method: readOnly}, true
	case len(seg) == 2 && seg[0] == "certificates":
		return route{kind: routeCA, id: seg[1], method: readWrite}, true
	case len(seg) == 3 && seg[0] == "certificates" && seg[2] == "generateVerificationCode":
		return route{kind: routeCACode, id: seg[1], method: postOnly}, true
	case len(seg) == 3 && seg[0] == "certificates" && seg[2] == "verify":
		return route{kind: routeCAVerify, id: seg[1], method: postOnly}, true
	}
	return route{}, false
}

// ServeHTTP implements http.Handler. Order of checks: path (404), method
// (405), authorization (401), api-version (400), then the operation.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := resolve(r.URL.EscapedPath())
	if !ok {
		h.fail(w, r, http.StatusNotFound, "NotFound", "no such resource: "+r.URL.EscapedPath())
		return
	}
	want, ok := rt.method[r.Method]
	if !ok {
		allow := make([]string, 0, len(rt.method))
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost} {
			if _, ok := rt.method[m]; ok {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.fail(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", ")))
		return
	}
	if !h.authorize(r, want) {
		h.fail(w, r, http.StatusUnauthorized, "IotHubUnauthorizedAccess", "Unauthorized")
		return
	}
	if !r.URL.Query().Has("api-version") {
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", "the api-version query parameter is required")
		return
	}
	switch rt.kind {
	case routeDevices:
		h.listDevices(w, r)
	case routeDevice:
		switch r.Method {
		case http.MethodGet:
			d, err := h.reg.Device(r.Context(), rt.id)
			h.device(w, r, http.StatusOK, d, err)
		case http.MethodPut:
			h.putDevice(w, r, rt.id)
		case http.MethodDelete:
			h.done(w, r, h.reg.DeleteDevice(r.Context(), rt.id, r.Header.Get("If-Match")))
		}
	case routeCAs:
		cas, err := h.reg.CAs(r.Context())
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		h.json(w, http.StatusOK, "", caList{Value: cas})
	case routeCA:
		switch r.Method {
		case http.MethodGet:
			ca, err := h.reg.CA(r.Context(), rt.id)
			h.ca(w, r, ca, err)
		case http.MethodPut:
			var body caUpload
			if !h.decode(w, r, &body) {
				return
			}
			ca, err := h.reg.AddCA(r.Context(), rt.id, []byte(body.Certificate), body.IsVerified)
			h.ca(w, r, ca, err)
		case http.MethodDelete:
			h.done(w, r, h.reg.DeleteCA(r.Context(), rt.id, r.Header.Get("If-Match")))
		}
	case routeCACode:
		ca, err := h.reg.VerificationCode(r.Context(), rt.id, r.Header.Get("If-Match"))
		h.ca(w, r, ca, err)
	case routeCAVerify:
		var body caProof
		if !h.decode(w, r, &body) {
			return
		}
		ca, err := h.reg.VerifyCA(r.Context(), rt.id, []byte(body.Certificate))
		h.ca(w, r, ca, err)
	}
}

// caUpload is the body of PUT /certificates/{name}.
type caUpload struct {
	Certificate string `json:"certificate"`
	IsVerified  bool   `json:"isVerified"`
}

// caProof is the body of POST /certificates/{name}/verify.
type caProof struct {
	Certificate string `json:"certificate"`
}

// caList is the body of GET /certificates (the ARM list shape).
type caList struct {
	Value []registry.CA `json:"value"`
}

// authorize checks the Authorization header for want. Failures are logged
// with their reason and the policy name the token claims; the token itself
// is never logged, and the client learns only "Unauthorized".
func (h *Handler) authorize(r *http.Request, want registry.Rights) bool {
	token := r.Header.Get("Authorization")
	if token == "" {
		h.log.Warn("registry api: unauthorized", "reason", "no Authorization header", "method", r.Method)
		return false
	}
	_, _, err := h.auth.AuthorizePolicy(token, want)
	if err != nil {
		h.log.Warn("registry api: unauthorized", "reason", err.Error(), "policy", claimedPolicy(token), "method", r.Method)
		return false
	}
	return true
}

// claimedPolicy extracts skn from a token for logging: a policy name is not
// a secret. It is capped so a hostile header cannot flood the log.
func claimedPolicy(token string) string {
	for field := range strings.SplitSeq(strings.TrimPrefix(token, "SharedAccessSignature "), "&") {
		if name, v, ok := strings.Cut(field, "="); ok && strings.EqualFold(name, "skn") {
			if d, err := url.QueryUnescape(v); err == nil {
				v = d
			}
			if len(v) > 64 {
				v = v[:64] + "…"
			}
			return v
		}
	}
	return ""
}

func (h *Handler) listDevices(w http.ResponseWriter, r *http.Request) {
	limit := registry.MaxListLimit
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > registry.MaxListLimit {
			h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", fmt.Sprintf("top must be an integer from 1 to %d", registry.MaxListLimit))
			return
		}
		limit = n
	}
	ds, err := h.reg.Devices(r.Context(), "", limit)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, http.StatusOK, "", ds)
}

// putDevice creates the device when the request has no If-Match (409 if
// the id is taken) and updates it otherwise (reference §7.4).
func (h *Handler) putDevice(w http.ResponseWriter, r *http.Request, id string) {
	var d registry.Device
	if !h.decode(w, r, &d) {
		return
	}
	switch {
	case d.DeviceID == "":
		d.DeviceID = id
	case d.DeviceID != id:
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", fmt.Sprintf("deviceId %q in the body does not match %q in the path", d.DeviceID, id))
		return
	}
	var err error
	if ifMatch := r.Header.Values("If-Match"); len(ifMatch) == 0 {
		d, err = h.reg.CreateDevice(r.Context(), d)
	} else {
		d, err = h.reg.UpdateDevice(r.Context(), d, ifMatch[0])
	}
	h.device(w, r, http.StatusOK, d, err)
}

// decode reads a JSON body of at most MaxBodyBytes into v, answering the
// request itself when it cannot.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	b, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.fail(w, r, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		return false
	case err != nil:
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", "reading the request body failed: "+err.Error())
		return false
	case len(strings.TrimSpace(string(b))) == 0:
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", "the request body is empty; a JSON document is required")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func (h *Handler) device(w http.ResponseWriter, r *http.Request, status int, d registry.Device, err error) {
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, status, d.Etag, d)
}

func (h *Handler) ca(w http.ResponseWriter, r *http.Request, ca registry.CA, err error) {
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, http.StatusOK, ca.Etag, ca)
}

// done answers a successful delete with 204 (what Node expects, reference §7.2).
func (h *Handler) done(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) json(w http.ResponseWriter, status int, etag string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("registry api: encode response", "err", err)
		status, b = http.StatusInternalServerError, nil
	}
	w.Header().Set("Content-Type", contentType)
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
	}
	w.WriteHeader(status)
	w.Write(b)
}

// failErr maps a registry error to the hub's status and error code
// (reference §7.5). Not-found is checked first: an id that cannot exist is
// reported as not found, like the hub does.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	text := strings.TrimPrefix(err.Error(), "registry: ")
	switch {
	case errors.Is(err, registry.ErrDeviceNotFound):
		h.fail(w, r, http.StatusNotFound, "DeviceNotFound", text)
	case errors.Is(err, registry.ErrCANotFound):
		h.fail(w, r, http.StatusNotFound, "CertificateNotFound", text)
	case errors.Is(err, registry.ErrDeviceExists):
		h.fail(w, r, http.StatusConflict, "DeviceAlreadyExists", text)
	case errors.Is(err, registry.ErrCAExists):
		h.fail(w, r, http.StatusConflict, "CertificateAlreadyExists", text)
	case errors.Is(err, registry.ErrPreconditionFailed):
		h.fail(w, r, http.StatusPreconditionFailed, "PreconditionFailed", text)
	case errors.Is(err, registry.ErrInvalid):
		h.fail(w, r, http.StatusBadRequest, "ArgumentInvalid", text)
	case errors.Is(err, registry.ErrUnavailable):
		h.log.Error("registry api: store unavailable", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		h.fail(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "the registry store is unavailable; retry later")
	default:
		h.log.Error("registry api: internal error", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		h.fail(w, r, http.StatusInternalServerError, "ServerError", "internal server error")
	}
}

// errorBody is the error document the Node SDK parses: it splits Message on
// ';' and reads the code after "ErrorCode:" (reference §7.5).
type errorBody struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, text string) {
	var id [16]byte
	rand.Read(id[:]) // crypto/rand.Read does not fail
	tracking := hex.EncodeToString(id[:])
	h.log.Debug("registry api: error", "status", status, "code", code, "method", r.Method, "tracking_id", tracking)
	w.Header().Set("iothub-errorcode", code)
	h.json(w, status, "", errorBody{
		Message:          "ErrorCode:" + code + ";" + text,
		ExceptionMessage: "Tracking ID:" + tracking + "-G:0-TimeStamp:" + h.now().UTC().Format("01/02/2006 15:04:05"),
	})
}
