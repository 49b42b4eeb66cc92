package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeTimeout bounds one Node process from outside; the scripts bound
// themselves at 30 s (their --timeout) and report a hang as "Timeout".
const nodeTimeout = 60 * time.Second

// nodeResult is the one JSON line every script in node/ prints.
type nodeResult struct {
	OK               bool            `json:"ok"`
	Error            string          `json:"error"`
	Message          string          `json:"message"`
	TransportMessage string          `json:"transportMessage"`
	Stage            string          `json:"stage"`
	Sent             int             `json:"sent"`
	StatusCode       int             `json:"statusCode"`
	ElapsedMs        int             `json:"elapsedMs"`
	Result           json.RawMessage `json:"result"`

	raw string
}

func (r nodeResult) String() string { return r.raw }

// node runs `node -r hosts.js script args...` in node/ with this hub's host
// name mapped to its address and its dev CA trusted.
func (h *hub) node(t *testing.T, script string, args ...string) nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"-r", filepath.Join(nodeDir, "hosts.js"), script}, args...)...)
	cmd.Dir = nodeDir
	cmd.Env = append(cleanEnv(),
		"HUBGATE_TEST_HOSTS="+h.Name+"="+h.IP,
		"NODE_EXTRA_CA_CERTS="+h.CAFile,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	desc := fmt.Sprintf("node %s %s", script, strings.Join(args, " "))
	if err != nil {
		t.Fatalf("%s: %v (the scripts always exit 0)\nstdout: %s\nstderr: %s", desc, err, out, stderr.String())
	}
	if out == "" || strings.Contains(out, "\n") {
		t.Fatalf("%s: want exactly one JSON line on stdout, got:\n%s\nstderr: %s", desc, out, stderr.String())
	}
	var r nodeResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%s: stdout is not JSON: %v\n%s", desc, err, out)
	}
	r.raw = out
	t.Logf("%s → %s", desc, out)
	return r
}

// connect runs device.js: transport "mqtt" or "mqttws", the device's
// connection string, and extra flags (--cert/--key, --send, --sas-ttl ...).
func (h *hub) connect(t *testing.T, transport, connStr string, flags ...string) nodeResult {
	t.Helper()
	return h.node(t, "device.js", append([]string{"--transport", transport, "--connection-string", connStr}, flags...)...)
}

// wantSent requires a session that opened and had n events acknowledged.
func wantSent(t *testing.T, r nodeResult, n int) {
	t.Helper()
	if !r.OK || r.Sent != n {
		t.Fatalf("want a session that sent %d events, got %s", n, r)
	}
}

// connackNotAuthorized is how mqtt.js words CONNACK return code 5. The
// device SDK turns every first-connection failure, even DNS or TLS errors,
// into UnauthorizedError, so the name alone would not show that the hub
// answered; this text shows the refusal came as CONNACK 5.
const connackNotAuthorized = "Connection refused: Not authorized"

// wantRefused requires the SDK's verdict for a hub that refused the device:
// UnauthorizedError from a CONNACK 5, at open, without hanging or retrying
// into the script's timeout.
func wantRefused(t *testing.T, r nodeResult) {
	t.Helper()
	if r.OK {
		t.Fatalf("want the hub to refuse the device, but it was admitted: %s", r)
	}
	if r.Error != "UnauthorizedError" || !strings.Contains(r.Message, connackNotAuthorized) {
		t.Fatalf("want UnauthorizedError from CONNACK 5 (%q), got %s", connackNotAuthorized, r)
	}
	if r.Stage != "open" {
		t.Fatalf("want the refusal at open, got stage %q: %s", r.Stage, r)
	}
}

// registry runs registry.js COMMAND args... with the hub's service connection string.
func (h *hub) registry(t *testing.T, args ...string) nodeResult {
	t.Helper()
	return h.node(t, "registry.js", append(args, "--connection-string", h.ConnStr)...)
}
