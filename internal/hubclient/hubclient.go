// Package hubclient is a small client for a hub's registry REST API,
// authenticated with a service connection string. The admin CLI and the
// bench harness use it; it is not a general SDK.
package hubclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/registry"
)

// APIVersion is the IoT Hub service API version the client sends.
const APIVersion = "2021-04-12"

// Client calls one hub.
type Client struct {
	Host    string // the hub's host name (HostName of the connection string)
	keyName string
	key     string
	base    string
	apiVer  string
	http    *http.Client
}

// Options say how to reach the hub.
type Options struct {
	Address string // HOST:PORT to dial; default HostName:443
	CAFile  string // extra root to trust (PEM)
	CAPEM   []byte // extra roots to trust, in memory (PEM)
	// APIVersion replaces the hub API version in every request (a DPS
	// service API speaks 2021-10-01).
	APIVersion string
}

// ParseConnectionString splits "k=v;k=v" at the first '=' of each part.
func ParseConnectionString(cs string) map[string]string {
	kv := map[string]string{}
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(part, "="); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// New returns a client for the service connection string cs.
func New(cs string, o Options) (*Client, error) {
	kv := ParseConnectionString(cs)
	c := &Client{Host: kv["HostName"], keyName: kv["SharedAccessKeyName"], key: kv["SharedAccessKey"]}
	if c.Host == "" || c.keyName == "" || c.key == "" {
		return nil, errors.New("connection string needs HostName, SharedAccessKeyName and SharedAccessKey")
	}
	addr := o.Address
	if addr == "" {
		addr = net.JoinHostPort(c.Host, "443")
	}
	c.base = "https://" + addr
	c.apiVer = APIVersion
	if o.APIVersion != "" {
		c.apiVer = o.APIVersion
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate", o.CAFile)
		}
	}
	if len(o.CAPEM) > 0 && !roots.AppendCertsFromPEM(o.CAPEM) {
		return nil, errors.New("ca: no PEM certificate")
	}
	// Verify the hub by its name even when dialling an address.
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, ServerName: c.Host, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}}
	return c, nil
}

// Error is a non-2xx answer of the hub.
type Error struct {
	Status  int
	Code    string // iothub-errorcode
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// Do sends one request; out, when non-nil, receives the JSON answer. ifMatch
// is sent quoted when non-empty ("*" for unconditional).
func (c *Client) Do(ctx context.Context, method, path, ifMatch string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+"?api-version="+c.apiVer, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", authn.Sign(c.Host, c.key, time.Now().Add(time.Hour), c.keyName))
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", `"`+ifMatch+`"`)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Code: resp.Header.Get("iothub-errorcode")}
		var body struct{ Message string }
		if json.Unmarshal(b, &body) == nil && body.Message != "" {
			e.Message = body.Message
		} else {
			e.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// DevicePath is the REST path of a device.
func DevicePath(id string) string { return "/devices/" + url.PathEscape(id) }

// CreateDevice creates d and returns the stored device (keys filled in).
func (c *Client) CreateDevice(ctx context.Context, d registry.Device) (registry.Device, error) {
	var out registry.Device
	err := c.Do(ctx, http.MethodPut, DevicePath(d.DeviceID), "", d, &out)
	return out, err
}

// DeleteDevice deletes a device unconditionally.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, DevicePath(id), "*", nil, nil)
}
