package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mosquittoResult is one mosquitto_pub run.
type mosquittoResult struct {
	Exit   int // exit status (mosquitto_pub exits with the CONNACK code on refusal)
	Output string
}

// mosquittoPub publishes once over MQTT/TLS with Debian's mosquitto_pub,
// a client that knows nothing about IoT Hub. QoS 1, so a zero exit means the
// hub acknowledged the publish.
//
// --insecure only skips the host-name check: mosquitto_pub connects to the
// hub's IP (it cannot resolve the test host names) and the dev server
// certificate names the host, 127.0.0.1 and ::1, not 127.0.0.1x. The chain
// is still verified against the dev CA.
func (h *hub) mosquittoPub(t *testing.T, version, clientID, username, password string, extra ...string) mosquittoResult {
	t.Helper()
	args := []string{
		"-h", h.IP, "-p", "8883", "--cafile", h.CAFile, "--insecure",
		"-V", version, "-i", clientID, "-u", username,
		"-t", "devices/" + clientID + "/messages/events/", "-m", `{"from":"mosquitto_pub"}`, "-q", "1",
	}
	if password != "" {
		args = append(args, "-P", password)
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_pub", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mosquitto_pub %s: no outcome within 20s (the hub must answer CONNECT): %s", strings.Join(args, " "), out.String())
	}
	r := mosquittoResult{Output: strings.TrimSpace(out.String())}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.Exit = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("mosquitto_pub: %v", err)
	}
	return r
}

// TestPlainMQTT: a generic MQTT client (mosquitto_pub) gets CONNACK 5 for
// every refusal reason, and publishes when its credentials are right.
func TestPlainMQTT(t *testing.T) {
	t.Parallel()
	h := startHub(t, "hub-plain", ipPlain)

	okKey := keyFromConnString(t, h.sasConnString(t, "plain-ok"))
	disabledKey := keyFromConnString(t, h.sasConnString(t, "plain-disabled", "--disabled"))
	h.createDevice(t, "plain-other")
	cert := selfSigned(t, "plain-x509")
	h.createDevice(t, "plain-x509", "--auth", "selfsigned", "--primary-thumbprint", sha256Thumb(cert))

	user := func(id string) string { return h.Name + "/" + id + "/?api-version=2021-04-12" }
	// token mints with the CLI (offline), as an operator would.
	tokenTTL := func(t *testing.T, id, key, ttl string) string {
		t.Helper()
		r := h.cliRaw(t, "token", "--hostname", h.Name, "--device", id, "--key", key, "--ttl", ttl)
		tok := strings.TrimSpace(string(r.Stdout))
		if r.Err != nil || !strings.HasPrefix(tok, "SharedAccessSignature sr=") {
			t.Fatalf("hubgate token: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
		}
		return tok
	}
	token := func(t *testing.T, id, key string) string { return tokenTTL(t, id, key, "1h") }

	const (
		v3NotAuthorized = "Connection Refused: not authorised" // mosquitto's text for CONNACK 5
		v5NotAuthorized = "Not authorized"                     // reason code 0x87
	)
	cases := []struct {
		name                        string
		version, clientID, username string
		password                    func(t *testing.T) string
		extra                       []string // more mosquitto_pub flags
		wantExit                    int
		wantText                    string
	}{
		{
			name: "ok/publish", version: "mqttv311", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
		},
		{
			name: "ok/publish-mqttv5", version: "mqttv5", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
		},
		{
			name: "ok/publish-with-certificate", version: "mqttv311", clientID: "plain-x509", username: user("plain-x509"),
			password: func(*testing.T) string { return "" }, extra: []string{"--cert", cert.Cert, "--key", cert.Key},
		},
		{
			name: "fail/bad-signature", version: "mqttv311", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return token(t, "plain-ok", randomKey(t)) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/bad-signature-mqttv5", version: "mqttv5", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return token(t, "plain-ok", randomKey(t)) },
			wantExit: 0x87, wantText: v5NotAuthorized,
		},
		{
			name: "fail/expired", version: "mqttv311", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return sasToken(t, h.Name, "plain-ok", okKey, time.Now().Add(-time.Hour)) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/expired-cli-token", version: "mqttv311", clientID: "plain-ok", username: user("plain-ok"),
			password: func(t *testing.T) string { return tokenTTL(t, "plain-ok", okKey, "-1h") },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/unknown-device", version: "mqttv311", clientID: "plain-nobody", username: user("plain-nobody"),
			password: func(t *testing.T) string { return token(t, "plain-nobody", randomKey(t)) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/disabled", version: "mqttv311", clientID: "plain-disabled", username: user("plain-disabled"),
			password: func(t *testing.T) string { return token(t, "plain-disabled", disabledKey) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/malformed-username", version: "mqttv311", clientID: "plain-ok", username: "plain-ok",
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/username-without-api-version", version: "mqttv311", clientID: "plain-ok", username: h.Name + "/plain-ok/",
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/client-id-is-not-the-device", version: "mqttv311", clientID: "plain-other", username: user("plain-ok"),
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/token-of-another-device", version: "mqttv311", clientID: "plain-other", username: user("plain-other"),
			password: func(t *testing.T) string { return token(t, "plain-ok", okKey) },
			wantExit: 5, wantText: v3NotAuthorized,
		},
		{
			name: "fail/no-password-no-certificate", version: "mqttv311", clientID: "plain-ok", username: user("plain-ok"),
			password: func(*testing.T) string { return "" },
			wantExit: 5, wantText: v3NotAuthorized,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := h.mosquittoPub(t, tc.version, tc.clientID, tc.username, tc.password(t), tc.extra...)
			if r.Exit != tc.wantExit || (tc.wantText != "" && !strings.Contains(r.Output, tc.wantText)) {
				t.Fatalf("mosquitto_pub: exit %d, output %q; want exit %d and %q", r.Exit, r.Output, tc.wantExit, tc.wantText)
			}
			if tc.wantExit == 0 && r.Output != "" {
				// Silent on success; an MQTT 5 PUBACK with a failure reason
				// only prints a warning and still exits 0.
				t.Fatalf("mosquitto_pub succeeded but said %q", r.Output)
			}
		})
	}
}
