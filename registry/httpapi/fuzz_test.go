package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzPaths sends arbitrary escaped paths through the handler: no panic, and
// only the statuses the API documents.
func FuzzPaths(f *testing.F) {
	for _, p := range []string{"/devices", "/devices/a", "/devices/a%2Fb", "/certificates/x/verify", "/%zz", "//", "/devices/%"} {
		f.Add("GET", p)
	}
	e := fuzzEnv(f)
	tok := e.token(f, "registryRead")
	f.Fuzz(func(t *testing.T, method, path string) {
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		u, err := url.Parse("http://hub.example" + path + "?api-version=1")
		if err != nil {
			return
		}
		switch method {
		case "GET", "PUT", "DELETE", "POST", "PATCH":
		default:
			method = "GET"
		}
		req := httptest.NewRequestWithContext(t.Context(), method, "http://hub.example/", nil)
		req.URL = u
		req.Header.Set("Authorization", tok)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusBadRequest:
		default:
			t.Fatalf("%s %q: status %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
		}
	})
}
