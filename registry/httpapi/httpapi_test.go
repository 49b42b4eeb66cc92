package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
	"github.com/hubgate/hubgate/registry/httpapi"
)

const host = "hub.example"

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	url  string
	reg  *registry.Registry
	h    *httpapi.Handler
	logs *syncBuffer
}

// fuzzEnv is setup without a listener, for in-process fuzzing.
func fuzzEnv(t testing.TB) *env { return setupWith(t, nil, false) }

func setup(t *testing.T, wrap func(registry.Store) registry.Store) *env {
	return setupWith(t, wrap, true)
}

func setupWith(t testing.TB, wrap func(registry.Store) registry.Store, listen bool) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fs, err := registry.OpenFileStoreWith(filepath.Join(t.TempDir(), "registry.jsonl"), registry.FileStoreOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	var s registry.Store = fs
	if wrap != nil {
		s = wrap(fs)
	}
	reg, err := registry.New(t.Context(), s, registry.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(authn.Config{HostNames: []string{host}, Devices: reg, Policies: reg, CAs: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(reg, auth, httpapi.Options{Logger: log})
	e := &env{reg: reg, h: h, logs: logs}
	if listen {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		e.url = srv.URL
	}
	return e
}

// token signs a service token for policy like the Node SDK does (sr = host).
func (e *env) token(t testing.TB, policy string) string {
	t.Helper()
	p, ok := e.reg.Policy(policy)
	if !ok {
		t.Fatalf("no policy %q", policy)
	}
	return authn.Sign(host, p.PrimaryKey, time.Now().Add(time.Hour), policy)
}

type req struct {
	method, path, token, body string
	header                    map[string]string
	noAPIVersion              bool
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	u := e.url + r.path
	if !r.noAPIVersion {
		if strings.Contains(r.path, "?") {
			u += "&api-version=2021-04-12"
		} else {
			u += "?api-version=2021-04-12"
		}
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(t.Context(), r.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", r.token)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("%s %s: Content-Type %q", r.method, r.path, ct)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

var exceptionRe = regexp.MustCompile(`^Tracking ID:[0-9a-f]{32}-G:0-TimeStamp:\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$`)

// wantError checks the status and the reference §7.5 error format.
func wantError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.header.Get("iothub-errorcode"); got != code {
		t.Fatalf("iothub-errorcode %q, want %q", got, code)
	}
	var eb struct{ Message, ExceptionMessage string }
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if !strings.HasPrefix(eb.Message, "ErrorCode:"+code+";") {
		t.Fatalf("Message %q, want prefix ErrorCode:%s;", eb.Message, code)
	}
	if !exceptionRe.MatchString(eb.ExceptionMessage) {
		t.Fatalf("ExceptionMessage %q", eb.ExceptionMessage)
	}
}

func wantDevice(t *testing.T, r resp, status int) registry.Device {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var d registry.Device
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.body, []byte(`"deviceId":`)) || !bytes.Contains(r.body, []byte(`"parentScopes":[]`)) {
		t.Fatalf("device body %s", r.body)
	}
	if r.header.Get("ETag") != `"`+d.Etag+`"` {
		t.Fatalf("ETag header %q, body etag %q", r.header.Get("ETag"), d.Etag)
	}
	return d
}

// nodeCreate is the body Node's Registry.create sends for {deviceId} (reference §7.2).
func nodeCreate(id string) string {
	return fmt.Sprintf(`{"deviceId":%q,"status":"enabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`, id)
}

func TestAuthorization(t *testing.T) {
	e := setup(t, nil)
	owner := e.token(t, "iothubowner")
	read := e.token(t, "registryRead")
	if d := wantDevice(t, e.do(t, req{method: "PUT", path: "/devices/d1", token: owner, body: nodeCreate("d1")}), 200); d.DeviceID != "d1" {
		t.Fatal(d)
	}
	readKey, _ := e.reg.Policy("registryRead")
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"ok/owner-reads", req{method: "GET", path: "/devices/d1", token: owner}, 200, ""},
		{"ok/registry-read-reads", req{method: "GET", path: "/devices/d1", token: read}, 200, ""},
		{"ok/registry-read-write-writes", req{method: "PUT", path: "/devices/d2", token: e.token(t, "registryReadWrite"), body: nodeCreate("d2")}, 200, ""},
		{"ok/sr-with-path", req{method: "GET", path: "/devices/d1", token: authn.Sign(host+"%2Fdevices", readKey.PrimaryKey, time.Now().Add(time.Hour), "registryRead")}, 200, ""},
		{"fail/missing", req{method: "GET", path: "/devices/d1"}, 401, "IotHubUnauthorizedAccess"},
		{"fail/garbage", req{method: "GET", path: "/devices/d1", token: "Bearer abc"}, 401, "IotHubUnauthorizedAccess"},
		{"fail/expired", req{method: "GET", path: "/devices/d1", token: authn.Sign(host, readKey.PrimaryKey, time.Now().Add(-time.Hour), "registryRead")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/unknown-policy", req{method: "GET", path: "/devices/d1", token: authn.Sign(host, readKey.PrimaryKey, time.Now().Add(time.Hour), "nosuch")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/wrong-key-for-policy", req{method: "GET", path: "/devices/d1", token: authn.Sign(host, readKey.PrimaryKey, time.Now().Add(time.Hour), "iothubowner")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/wrong-host", req{method: "GET", path: "/devices/d1", token: authn.Sign("other.example", readKey.PrimaryKey, time.Now().Add(time.Hour), "registryRead")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/service-policy-lacks-registry-read", req{method: "GET", path: "/devices/d1", token: e.token(t, "service")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/read-token-creates", req{method: "PUT", path: "/devices/d3", token: read, body: nodeCreate("d3")}, 401, "IotHubUnauthorizedAccess"},
		{"fail/read-token-deletes", req{method: "DELETE", path: "/devices/d1", token: read, header: map[string]string{"If-Match": `"*"`}}, 401, "IotHubUnauthorizedAccess"},
		{"fail/read-token-adds-ca", req{method: "PUT", path: "/certificates/root", token: read, body: `{}`}, 401, "IotHubUnauthorizedAccess"},
		{"fail/read-token-verification-code", req{method: "POST", path: "/certificates/root/generateVerificationCode", token: read}, 401, "IotHubUnauthorizedAccess"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.r)
			if tc.code == "" {
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				return
			}
			wantError(t, r, tc.status, tc.code)
			if !bytes.Contains(r.body, []byte("ErrorCode:IotHubUnauthorizedAccess;Unauthorized")) {
				t.Fatalf("401 body says more than Unauthorized: %s", r.body)
			}
		})
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "reason=") || !strings.Contains(logs, "policy=nosuch") {
		t.Fatalf("401 reasons not logged:\n%s", logs)
	}
	for _, secret := range []string{owner, read, "sig=", readKey.PrimaryKey} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains secret material %q", secret)
		}
	}
	if _, err := e.reg.Device(t.Context(), "d3"); !errors.Is(err, registry.ErrDeviceNotFound) {
		t.Fatal("a read-only token created a device")
	}
}

func TestDevices(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, "iothubowner")
	do := func(method, path, body string, hdr map[string]string) resp {
		return e.do(t, req{method: method, path: path, token: tok, body: body, header: hdr})
	}
	ifMatch := func(v string) map[string]string { return map[string]string{"If-Match": v} }

	d := wantDevice(t, do("PUT", "/devices/dev1", nodeCreate("dev1"), nil), 200)
	if d.Authentication.SymmetricKey.PrimaryKey == "" || d.Authentication.SymmetricKey.SecondaryKey == "" || d.GenerationID == "" {
		t.Fatalf("keys not generated: %+v", d)
	}
	t.Run("fail/create-exists", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev1", nodeCreate("dev1"), nil), 409, "DeviceAlreadyExists")
	})
	t.Run("ok/get", func(t *testing.T) {
		got := wantDevice(t, do("GET", "/devices/dev1", "", nil), 200)
		if got.Etag != d.Etag || got.Authentication != d.Authentication {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("fail/get-missing", func(t *testing.T) {
		wantError(t, do("GET", "/devices/nope", "", nil), 404, "DeviceNotFound")
	})
	t.Run("ok/create-without-body-id", func(t *testing.T) {
		got := wantDevice(t, do("PUT", "/devices/noid", `{}`, nil), 200)
		if got.DeviceID != "noid" {
			t.Fatalf("got %+v", got)
		}
	})

	// If-Match variants on update: each succeeds and changes the etag.
	cur := d
	for _, tc := range []struct{ name, ifMatch string }{
		{"ok/update-quoted-star", `"*"`},
		{"ok/update-star", `*`},
		{"ok/update-quoted-etag", `"ETAG"`},
		{"ok/update-weak-etag", `W/"ETAG"`},
		{"ok/update-bare-etag", `ETAG`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"deviceId":"dev1","status":"enabled","statusReason":%q,"authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`, tc.name)
			got := wantDevice(t, do("PUT", "/devices/dev1", body, ifMatch(strings.ReplaceAll(tc.ifMatch, "ETAG", cur.Etag))), 200)
			if got.Etag == cur.Etag || *got.StatusReason != tc.name || got.Authentication != d.Authentication {
				t.Fatalf("update: %+v", got)
			}
			cur = got
		})
	}
	t.Run("fail/update-stale-etag", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev1", `{"deviceId":"dev1"}`, ifMatch(`"`+d.Etag+`"`)), 412, "PreconditionFailed")
	})
	t.Run("fail/update-missing", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/nope", `{"deviceId":"nope"}`, ifMatch(`"*"`)), 404, "DeviceNotFound")
	})
	t.Run("ok/update-disable-like-node", func(t *testing.T) {
		got := wantDevice(t, do("PUT", "/devices/dev1", `{"deviceId":"dev1","status":"disabled","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`, ifMatch(`"*"`)), 200)
		if got.Status != registry.StatusDisabled || got.Authentication != d.Authentication {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("fail/body-id-mismatch", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev9", nodeCreate("other"), nil), 400, "ArgumentInvalid")
	})
	t.Run("fail/malformed-json", func(t *testing.T) {
		r := do("PUT", "/devices/dev9", `{"deviceId":`, nil)
		wantError(t, r, 400, "ArgumentInvalid")
		if !bytes.Contains(r.body, []byte("malformed JSON")) {
			t.Fatalf("no reason: %s", r.body)
		}
	})
	t.Run("fail/wrong-json-type", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev9", `{"status":7}`, nil), 400, "ArgumentInvalid")
	})
	t.Run("fail/empty-body", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev9", "", nil), 400, "ArgumentInvalid")
	})
	t.Run("fail/oversized-body", func(t *testing.T) {
		big := `{"deviceId":"dev9","statusReason":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
		r := do("PUT", "/devices/dev9", big, nil)
		wantError(t, r, 413, "RequestEntityTooLarge")
	})
	t.Run("fail/invalid-device", func(t *testing.T) {
		r := do("PUT", "/devices/dev9", `{"authentication":{"type":"sas","symmetricKey":{"primaryKey":"short","secondaryKey":""}}}`, nil)
		wantError(t, r, 400, "ArgumentInvalid")
		if !bytes.Contains(r.body, []byte("primaryKey")) {
			t.Fatalf("reason missing: %s", r.body)
		}
	})
	t.Run("fail/invalid-id", func(t *testing.T) {
		wantError(t, do("PUT", "/devices/dev%201", `{}`, nil), 400, "ArgumentInvalid")
	})
	t.Run("ok/percent-encoded-ids", func(t *testing.T) {
		for _, id := range []string{"we!rd(id)=$@'#*?,", "100%", "a%2Fb"} {
			path := "/devices/" + url.PathEscape(id)
			got := wantDevice(t, do("PUT", path, "{}", nil), 200)
			if got.DeviceID != id {
				t.Fatalf("created %q, want %q", got.DeviceID, id)
			}
			if got := wantDevice(t, do("GET", path, "", nil), 200); got.DeviceID != id {
				t.Fatalf("got %q", got.DeviceID)
			}
		}
		// %2F is part of the id, not a separator: an unknown id, not an unknown path.
		wantError(t, do("GET", "/devices/x%2Fy", "", nil), 404, "DeviceNotFound")
	})
	t.Run("fail/delete-stale", func(t *testing.T) {
		wantError(t, do("DELETE", "/devices/dev1", "", ifMatch(`"`+d.Etag+`"`)), 412, "PreconditionFailed")
	})
	t.Run("ok/delete", func(t *testing.T) {
		r := do("DELETE", "/devices/dev1", "", ifMatch(`"*"`))
		if r.status != 204 || len(r.body) != 0 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantError(t, do("GET", "/devices/dev1", "", nil), 404, "DeviceNotFound")
		wantError(t, do("DELETE", "/devices/dev1", "", ifMatch(`"*"`)), 404, "DeviceNotFound")
	})
	t.Run("ok/delete-with-etag", func(t *testing.T) {
		got := wantDevice(t, do("PUT", "/devices/del2", "{}", nil), 200)
		if r := do("DELETE", "/devices/del2", "", ifMatch(`W/"`+got.Etag+`"`)); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
	})
}

func TestListAndRouting(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, "iothubowner")
	for _, id := range []string{"c", "a", "b"} {
		wantDevice(t, e.do(t, req{method: "PUT", path: "/devices/" + id, token: tok, body: "{}"}), 200)
	}
	list := func(r resp) []string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var ds []registry.Device
		if err := json.Unmarshal(r.body, &ds); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.DeviceID)
		}
		return ids
	}
	if got := list(e.do(t, req{method: "GET", path: "/devices", token: tok})); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("list %q", got)
	}
	// The Node SDK's Registry.list sends a trailing slash.
	if got := list(e.do(t, req{method: "GET", path: "/devices/", token: tok})); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("list with trailing slash %q", got)
	}
	if got := list(e.do(t, req{method: "GET", path: "/devices?top=2", token: tok})); strings.Join(got, ",") != "a,b" {
		t.Fatalf("list top=2 %q", got)
	}
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"fail/top-zero", req{method: "GET", path: "/devices?top=0"}, 400, "ArgumentInvalid"},
		{"fail/top-too-big", req{method: "GET", path: "/devices?top=1001"}, 400, "ArgumentInvalid"},
		{"fail/no-api-version", req{method: "GET", path: "/devices/a", noAPIVersion: true}, 400, "ArgumentInvalid"},
		{"fail/unknown-path", req{method: "GET", path: "/twins/a"}, 404, "NotFound"},
		{"fail/too-deep", req{method: "GET", path: "/devices/a/modules/m"}, 404, "NotFound"},
		{"fail/empty-id-put", req{method: "PUT", path: "/devices/", body: "{}"}, 405, "MethodNotAllowed"},
		{"fail/empty-segment", req{method: "GET", path: "/devices//x"}, 404, "NotFound"},
		{"fail/root", req{method: "GET", path: "/"}, 404, "NotFound"},
		{"fail/patch-device", req{method: "PATCH", path: "/devices/a", body: "{}"}, 405, "MethodNotAllowed"},
		{"fail/post-devices", req{method: "POST", path: "/devices", body: "[]"}, 405, "MethodNotAllowed"},
		{"fail/get-verify", req{method: "GET", path: "/certificates/x/verify"}, 405, "MethodNotAllowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.token = tok
			wantError(t, e.do(t, tc.r), tc.status, tc.code)
		})
	}
	if r := e.do(t, req{method: "PATCH", path: "/devices/a", token: tok, body: "{}"}); r.header.Get("Allow") != "GET, PUT, DELETE" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
}

// failingStore makes device reads fail with err.
type failingStore struct {
	registry.Store
	err error
}

func (f failingStore) Device(context.Context, string) (registry.Device, error) {
	return registry.Device{}, f.err
}

func TestStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"fail/unavailable", fmt.Errorf("%w: dial tcp 127.0.0.1:6379: connection refused", registry.ErrUnavailable), 503, "ServiceUnavailable"},
		{"fail/internal", errors.New("disk on fire"), 500, "ServerError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, func(s registry.Store) registry.Store { return failingStore{s, tc.err} })
			r := e.do(t, req{method: "GET", path: "/devices/a", token: e.token(t, "iothubowner")})
			wantError(t, r, tc.status, tc.code)
			if bytes.Contains(r.body, []byte("6379")) || bytes.Contains(r.body, []byte("fire")) {
				t.Fatalf("internal detail leaked to the client: %s", r.body)
			}
		})
	}
}

func TestCertificates(t *testing.T) {
	e := setup(t, nil)
	tok := e.token(t, "iothubowner")
	do := func(method, path, body string) resp {
		return e.do(t, req{method: method, path: path, token: tok, body: body})
	}
	wantCA := func(r resp) registry.CA {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var ca registry.CA
		if err := json.Unmarshal(r.body, &ca); err != nil {
			t.Fatal(err)
		}
		if r.header.Get("ETag") != `"`+ca.Etag+`"` {
			t.Fatalf("ETag %q vs %q", r.header.Get("ETag"), ca.Etag)
		}
		return ca
	}
	upload := func(pem []byte, verified bool) string {
		b, _ := json.Marshal(map[string]any{"certificate": string(pem), "isVerified": verified})
		return string(b)
	}
	proof := func(pem []byte) string {
		b, _ := json.Marshal(map[string]string{"certificate": string(pem)})
		return string(b)
	}
	root, err := pki.NewRootCA("root", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pre, _ := pki.NewRootCA("pre", pki.Options{})
	impostor, _ := pki.NewRootCA("impostor", pki.Options{})
	leaf, _ := root.IssueClient("dev1", pki.Options{})
	inPool := func(kp *pki.KeyPair) bool {
		l, _ := kp.IssueClient("dev1", pki.Options{})
		_, err := l.Cert.Verify(x509VerifyOpts(e.reg))
		return err == nil
	}

	ca := wantCA(do("PUT", "/certificates/root", upload(root.CertPEM(), false)))
	if ca.Status != registry.CAUnverified || ca.Name != "root" || ca.Thumbprint != pki.SHA256Thumbprint(root.Cert.Raw) {
		t.Fatalf("upload: %+v", ca)
	}
	if c := wantCA(do("PUT", "/certificates/pre", upload(pre.CertPEM(), true))); c.Status != registry.CAVerified {
		t.Fatalf("verified at upload: %+v", c)
	}
	if inPool(root) || !inPool(pre) {
		t.Fatal("pool does not match the verified set")
	}
	wantError(t, do("PUT", "/certificates/root", upload(root.CertPEM(), false)), 409, "CertificateAlreadyExists")
	wantError(t, do("PUT", "/certificates/leaf", upload(leaf.CertPEM(), false)), 400, "ArgumentInvalid")
	wantError(t, do("PUT", "/certificates/junk", `{"certificate":"nope"}`), 400, "ArgumentInvalid")
	wantError(t, do("GET", "/certificates/nope", ""), 404, "CertificateNotFound")
	wantError(t, do("POST", "/certificates/nope/generateVerificationCode", ""), 404, "CertificateNotFound")

	r := do("GET", "/certificates", "")
	var list struct{ Value []registry.CA }
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Value) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	wantError(t, do("POST", "/certificates/root/verify", proof(leaf.CertPEM())), 400, "ArgumentInvalid") // no code yet
	ca = wantCA(do("POST", "/certificates/root/generateVerificationCode", ""))
	if len(ca.VerificationCode) != 40 {
		t.Fatalf("code %q", ca.VerificationCode)
	}
	if got := wantCA(do("GET", "/certificates/root", "")); got.VerificationCode != ca.VerificationCode {
		t.Fatal("code not stored")
	}
	wrongCN, _ := root.IssueClient("not-the-code", pki.Options{})
	wrongSigner, _ := impostor.IssueClient(ca.VerificationCode, pki.Options{})
	wantError(t, do("POST", "/certificates/root/verify", proof(wrongCN.CertPEM())), 400, "ArgumentInvalid")
	wantError(t, do("POST", "/certificates/root/verify", proof(wrongSigner.CertPEM())), 400, "ArgumentInvalid")
	if inPool(root) {
		t.Fatal("refused proofs verified the CA")
	}
	good, _ := root.IssueClient(ca.VerificationCode, pki.Options{})
	ca = wantCA(do("POST", "/certificates/root/verify", proof(good.CertPEM())))
	if ca.Status != registry.CAVerified || ca.VerificationCode != "" {
		t.Fatalf("after verify: %+v", ca)
	}
	if !inPool(root) || inPool(impostor) {
		t.Fatal("pool after verify")
	}
	if r := do("DELETE", "/certificates/root", ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if inPool(root) {
		t.Fatal("deleted CA still in pool")
	}
	wantError(t, do("DELETE", "/certificates/root", ""), 404, "CertificateNotFound")
}
