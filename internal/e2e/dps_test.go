package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/provisioning"
)

// Loopback addresses of the provisioning tests (127.0.0.30–39).
const (
	ipDPS     = "127.0.0.30"
	ipDPSTest = "127.0.0.31"
	ipDPSProd = "127.0.0.32"
)

// dpsEnv is a provisioning service and the two hubs of the seed: "test"
// and "prod", each on its own address with its own host name and dev CA.
type dpsEnv struct {
	dps        *hub
	test, prod *hub
	idScope    string
	caBundle   string // the three dev CAs, for Node
}

// startDPS starts `hubgate dps serve` named name.hubgate.test on ip.
func startDPS(t testing.TB, name, ip string, extra ...string) *hub {
	t.Helper()
	h := &hub{
		Name:    name + ".hubgate.test",
		IP:      ip,
		DataDir: filepath.Join(t.TempDir(), "data"),
		logFile: filepath.Join(t.TempDir(), "dps.log"),
		extra:   extra,
		dps:     true,
	}
	h.CAFile = filepath.Join(h.DataDir, "dev-ca.pem")
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("stopping %s: %v", h.Name, err)
		}
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", h.Name, h.logTail(8000))
		}
	})
	h.start(t)
	cs, err := os.ReadFile(filepath.Join(h.DataDir, provisioning.PolicyName+".connection-string"))
	if err != nil {
		t.Fatalf("%s: service connection string: %v", h.Name, err)
	}
	h.ConnStr = strings.TrimSpace(string(cs))
	return h
}

func startDPSEnv(t *testing.T) *dpsEnv {
	t.Helper()
	e := &dpsEnv{
		dps:  startDPS(t, "dps", ipDPS),
		test: startHub(t, "hub-test", ipDPSTest),
		prod: startHub(t, "hub-prod", ipDPSProd),
	}
	scope, err := os.ReadFile(filepath.Join(e.dps.DataDir, "id-scope"))
	if err != nil {
		t.Fatal(err)
	}
	e.idScope = strings.TrimSpace(string(scope))
	if !strings.HasPrefix(e.idScope, "0ne") || len(e.idScope) != 11 {
		t.Fatalf("generated id scope %q, want 0ne + 8 hex digits", e.idScope)
	}
	var bundle []byte
	for _, h := range []*hub{e.dps, e.test, e.prod} {
		b, err := os.ReadFile(h.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, b...)
	}
	e.caBundle = filepath.Join(t.TempDir(), "cas.pem")
	if err := os.WriteFile(e.caBundle, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*hub{"test": e.test, "prod": e.prod} {
		var out map[string]any
		e.cli(t, &out, "hub", "link", name, "--hub-connection-string", h.ConnStr,
			"--hub-address", h.addr(443), "--hub-ca-file", h.CAFile)
		if out["hostName"] != h.Name || out["connectionString"] != nil {
			t.Fatalf("hub link %s: %v (want hostName %s and no secret)", name, out, h.Name)
		}
	}
	return e
}

// cli runs `hubgate dps args...` against the service.
func (e *dpsEnv) cliRaw(t testing.TB, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	args = append(append([]string{"dps"}, args...), "--dps-address", e.dps.addr(443))
	cmd := exec.CommandContext(ctx, hubgateBin, args...)
	cmd.Env = append(cleanEnv(), "HUBGATE_DPS_CONNECTION_STRING="+e.dps.ConnStr, "HUBGATE_DPS_CA_FILE="+e.dps.CAFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return cliResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

func (e *dpsEnv) cli(t testing.TB, out any, args ...string) {
	t.Helper()
	r := e.cliRaw(t, args...)
	if r.Err != nil {
		t.Fatalf("hubgate dps %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	if out != nil {
		if err := json.Unmarshal(r.Stdout, out); err != nil {
			t.Fatalf("hubgate dps %s: %v\n%s", strings.Join(args, " "), err, r.Stdout)
		}
	}
}

// nodeCmd prepares a Node driver with all three host names mapped and all
// three dev CAs trusted.
func (e *dpsEnv) nodeCmd(ctx context.Context, script string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, "node", append([]string{"-r", filepath.Join(nodeDir, "hosts.js"), script}, args...)...)
	cmd.Dir = nodeDir
	var hosts []string
	for _, h := range []*hub{e.dps, e.test, e.prod} {
		hosts = append(hosts, h.Name+"="+h.IP)
	}
	cmd.Env = append(cleanEnv(), "HUBGATE_TEST_HOSTS="+strings.Join(hosts, ","), "NODE_EXTRA_CA_CERTS="+e.caBundle, "DEBUG="+os.Getenv("DPS_DEBUG"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func parseNode(t testing.TB, desc string, err error, stdout, stderr *bytes.Buffer) nodeResult {
	t.Helper()
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		t.Fatalf("%s: %v (the scripts always exit 0)\nstdout: %s\nstderr: %s", desc, err, out, stderr.String())
	}
	var r nodeResult
	if json.Unmarshal([]byte(out), &r) != nil || strings.Contains(out, "\n") {
		t.Fatalf("%s: want one JSON line, got:\n%s\nstderr: %s", desc, out, stderr.String())
	}
	r.raw = out
	t.Logf("%s → %s", desc, out)
	if os.Getenv("DPS_DEBUG") != "" {
		t.Logf("stderr: %s", stderr.String())
	}
	return r
}

func (e *dpsEnv) node(t testing.TB, script string, args ...string) nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd, stdout, stderr := e.nodeCmd(ctx, script, args...)
	err := cmd.Run()
	return parseNode(t, "node "+script+" "+strings.Join(args, " "), err, stdout, stderr)
}

// provision runs provision.js for regID over transport with more flags.
func (e *dpsEnv) provision(t testing.TB, transport, regID string, flags ...string) nodeResult {
	t.Helper()
	return e.node(t, "provision.js", append([]string{"--transport", transport, "--dps-host", e.dps.Name,
		"--id-scope", e.idScope, "--registration-id", regID}, flags...)...)
}

// provisioned is provision.js's result block.
type provisioned struct {
	AssignedHub string `json:"assignedHub"`
	DeviceID    string `json:"deviceId"`
	Status      string `json:"status"`
	Substatus   string `json:"substatus"`
}

func resultOf(t testing.TB, r nodeResult) provisioned {
	t.Helper()
	var p provisioned
	if err := json.Unmarshal(r.Result, &p); err != nil {
		t.Fatalf("result block: %v in %s", err, r)
	}
	return p
}

func wantProvisioned(t testing.TB, r nodeResult, hub *hub, deviceID string, sent int) provisioned {
	t.Helper()
	if !r.OK {
		t.Fatalf("want the device provisioned and connected, got %s", r)
	}
	p := resultOf(t, r)
	if p.AssignedHub != hub.Name || p.DeviceID != deviceID || p.Status != "assigned" {
		t.Fatalf("want %s assigned to %s, got %+v", deviceID, hub.Name, p)
	}
	if r.Sent != sent {
		t.Fatalf("want %d events sent, got %s", sent, r)
	}
	return p
}

// hubDevice reads a device from a hub through its admin CLI.
func hubDevice(t testing.TB, h *hub, id string) (device, bool) {
	t.Helper()
	r := h.cliRaw(t, "device", "get", id)
	if r.Err != nil {
		if strings.Contains(string(r.Stderr), "404") {
			return device{}, false
		}
		t.Fatalf("device get %s on %s: %v %s", id, h.Name, r.Err, r.Stderr)
	}
	var d device
	if err := json.Unmarshal(r.Stdout, &d); err != nil {
		t.Fatal(err)
	}
	return d, true
}

// TestDPS: the provisioning service with the official provisioning SDKs.
func TestDPS(t *testing.T) {
	t.Parallel()
	e := startDPSEnv(t)
	key := func(t *testing.T) string { return randomKey(t) }

	t.Run("seed/test-to-prod", func(t *testing.T) {
		// The seed workflow: provision to test and connect; the operator
		// moves the device to prod; test refuses it; the SDK re-provisions
		// and the device lands on prod and connects there.
		t.Parallel()
		k := key(t)
		e.cli(t, nil, "enrollment", "create", "seed-dev", "--primary-key", k, "--iot-hubs", "test")
		ready := filepath.Join(t.TempDir(), "ready")
		ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
		defer cancel()
		cmd, stdout, stderr := e.nodeCmd(ctx, "provision.js", "--transport", "mqtt", "--dps-host", e.dps.Name,
			"--id-scope", e.idScope, "--registration-id", "seed-dev", "--key", k, "--connect", "mqtt", "--follow",
			"--ready-file", ready, "--timeout", "50000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitFile(t, ready, done)
		if _, ok := hubDevice(t, e.test, "seed-dev"); !ok {
			t.Fatal("the device is connected but has no identity in the test hub")
		}
		moved := time.Now()
		var out map[string]any
		e.cli(t, &out, "enrollment", "move", "seed-dev", "--hub", "prod")
		var r nodeResult
		select {
		case err := <-done:
			r = parseNode(t, "node provision.js --follow", err, stdout, stderr)
		case <-ctx.Done():
			t.Fatal("provision.js did not finish")
		}
		if !r.OK {
			t.Fatalf("seed workflow failed: %s", r)
		}
		var full struct {
			Second           provisioned `json:"second"`
			Refused          *struct{ Error, Message string }
			ConnectedAgainAt int64 `json:"connectedAgainAt"`
		}
		json.Unmarshal([]byte(r.raw), &full)
		first := resultOf(t, r)
		if first.AssignedHub != e.test.Name || first.Substatus != "initialAssignment" {
			t.Fatalf("first assignment: %+v", first)
		}
		if full.Refused == nil || full.Refused.Error != "UnauthorizedError" {
			t.Fatalf("the test hub must refuse the moved device with UnauthorizedError, got %+v", full.Refused)
		}
		if full.Second.AssignedHub != e.prod.Name || full.Second.DeviceID != "seed-dev" || full.Second.Substatus != "deviceDataMigrated" {
			t.Fatalf("re-provisioning: %+v", full.Second)
		}
		if _, ok := hubDevice(t, e.test, "seed-dev"); ok {
			t.Fatal("the identity is still in the test hub")
		}
		if d, ok := hubDevice(t, e.prod, "seed-dev"); !ok || d.Authentication.Type != "sas" || d.Authentication.SymmetricKey.PrimaryKey != k {
			t.Fatalf("prod identity: %+v %v", d, ok)
		}
		t.Logf("operator move → device connected to prod: %v", time.UnixMilli(full.ConnectedAgainAt).Sub(moved))
		resp, err := http.Get("http://" + e.dps.addr(9090) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`hubgate_dps_moves_total{`, `outcome="assigned"`, `substatus="deviceDataMigrated"`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("dps /metrics lacks %s", want)
			}
		}
	})

	for _, tr := range []string{"mqtt", "mqttws", "amqp", "amqpws", "http"} {
		t.Run("ok/individual-symmetric-key/"+tr, func(t *testing.T) {
			t.Parallel()
			id := "ind-sym-" + tr
			k := key(t)
			e.cli(t, nil, "enrollment", "create", id, "--primary-key", k, "--iot-hubs", "prod")
			wantProvisioned(t, e.provision(t, tr, id, "--key", k, "--connect", "mqtt"), e.prod, id, 1)
			d, ok := hubDevice(t, e.prod, id)
			if !ok || d.Authentication.Type != "sas" || d.Authentication.SymmetricKey.PrimaryKey != k {
				t.Fatalf("hub identity: %+v", d)
			}
			// A device that registers again stays where it is.
			r := e.provision(t, tr, id, "--key", k)
			if p := resultOf(t, r); !r.OK || p.AssignedHub != e.prod.Name {
				t.Fatalf("re-registration: %s", r)
			}
		})
	}
	t.Run("ok/individual-device-id", func(t *testing.T) {
		t.Parallel()
		k := key(t)
		e.cli(t, nil, "enrollment", "create", "reg-with-devid", "--primary-key", k, "--device-id", "the-device", "--iot-hubs", "test")
		wantProvisioned(t, e.provision(t, "http", "reg-with-devid", "--key", k, "--connect", "mqttws"), e.test, "the-device", 1)
	})

	t.Run("group-symmetric-key", func(t *testing.T) {
		t.Parallel()
		gk := key(t)
		e.cli(t, nil, "group", "create", "grp-sym", "--primary-key", gk)
		for _, tr := range []string{"mqtt", "amqp", "http"} {
			id := "grp-dev-" + tr
			dk := provisioning.DeriveDeviceKey(gk, id)
			r := e.provision(t, tr, id, "--key", dk, "--connect", "mqtt")
			if !r.OK {
				t.Fatalf("derived key over %s: %s", tr, r)
			}
			p := resultOf(t, r)
			h := map[string]*hub{e.test.Name: e.test, e.prod.Name: e.prod}[p.AssignedHub]
			if h == nil {
				t.Fatalf("assigned to %q", p.AssignedHub)
			}
			if d, ok := hubDevice(t, h, id); !ok || d.Authentication.SymmetricKey.PrimaryKey != dk {
				t.Fatalf("hub identity must carry the derived key: %+v", d)
			}
		}
		// The group key itself is not a device key.
		r := e.provision(t, "mqtt", "grp-dev-groupkey", "--key", gk)
		if r.OK || r.Stage != "register" {
			t.Fatalf("the group key itself must be refused: %s", r)
		}
		// A disabled individual enrollment blocks one device of the group.
		dk := provisioning.DeriveDeviceKey(gk, "grp-dev-blocked")
		e.cli(t, nil, "enrollment", "create", "grp-dev-blocked", "--primary-key", dk, "--disabled")
		if r := e.provision(t, "http", "grp-dev-blocked", "--key", dk); r.OK || r.Stage != "register" {
			t.Fatalf("a disabled individual enrollment under a group must refuse the device: %s", r)
		}
	})

	t.Run("x509", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		write := func(name string, kp *pki.KeyPair, chain ...*pki.KeyPair) (string, string) {
			cf, kf := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
			if err := kp.WriteFiles(cf, kf, chain...); err != nil {
				t.Fatal(err)
			}
			return cf, kf
		}
		// Individual: the device's own (self-signed) certificate.
		self, err := pki.SelfSignedClient("x509-ind", pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := write("x509-ind", self)
		e.cli(t, nil, "enrollment", "create", "x509-ind", "--attestation", "x509", "--cert", cf, "--iot-hubs", "test")
		for _, tr := range []string{"http", "mqtt", "amqp"} {
			wantProvisioned(t, e.provision(t, tr, "x509-ind", "--cert", cf, "--cert-key", kf, "--connect", "mqtt"), e.test, "x509-ind", 1)
		}
		wantSelfSigned(t, e.test, "x509-ind", pki.SHA256Thumbprint(self.Cert.Raw))

		// CA group: a root, an intermediate that signs the devices; the
		// group holds the root; the device presents leaf + intermediate.
		root, _ := pki.NewRootCA("dps-e2e-root", pki.Options{})
		inter, _ := root.IssueIntermediate("dps-e2e-intermediate", pki.Options{})
		rootFile, _ := write("root", root)
		e.cli(t, nil, "group", "create", "x509-ca-group", "--attestation", "x509", "--cert", rootFile, "--iot-hubs", "prod")
		leaf, err := inter.IssueClient("x509-grp-dev", pki.Options{})
		if err != nil {
			t.Fatal(err)
		}
		lf, lk := write("x509-grp-dev", leaf, inter)
		wantProvisioned(t, e.provision(t, "mqtt", "x509-grp-dev", "--cert", lf, "--cert-key", lk, "--connect", "mqtt"), e.prod, "x509-grp-dev", 1)
		wantSelfSigned(t, e.prod, "x509-grp-dev", pki.SHA256Thumbprint(leaf.Cert.Raw))

		// caReferences: a CA registered with the service, verified by proof
		// of possession; devices under it provision once it is verified.
		root2, _ := pki.NewRootCA("dps-e2e-registered-ca", pki.Options{})
		root2File, _ := write("root2", root2)
		e.cli(t, nil, "ca", "add", "fleet-ca", root2File)
		e.cli(t, nil, "group", "create", "x509-caref-group", "--attestation", "x509", "--ca-ref", "fleet-ca", "--iot-hubs", "test")
		dev2, _ := root2.IssueClient("x509-caref-dev", pki.Options{})
		df, dk := write("x509-caref-dev", dev2)
		if r := e.provision(t, "http", "x509-caref-dev", "--cert", df, "--cert-key", dk); r.OK {
			t.Fatalf("a device under an unverified CA was provisioned: %s", r)
		}
		var code struct {
			VerificationCode string `json:"verificationCode"`
		}
		e.cli(t, &code, "ca", "verification-code", "fleet-ca")
		proof, _ := root2.IssueClient(code.VerificationCode, pki.Options{})
		pf, _ := write("proof", proof)
		var verifiedCA struct{ Status string }
		e.cli(t, &verifiedCA, "ca", "verify", "fleet-ca", "--cert", pf)
		if verifiedCA.Status != "verified" {
			t.Fatalf("ca verify: status %q", verifiedCA.Status)
		}
		wantProvisioned(t, e.provision(t, "mqtt", "x509-caref-dev", "--cert", df, "--cert-key", dk, "--connect", "mqtt"), e.test, "x509-caref-dev", 1)
		wantSelfSigned(t, e.test, "x509-caref-dev", pki.SHA256Thumbprint(dev2.Cert.Raw))

		// A certificate from another CA is refused.
		other, _ := pki.NewRootCA("stranger", pki.Options{})
		sl, _ := other.IssueClient("x509-stranger", pki.Options{})
		sf, sk := write("x509-stranger", sl)
		if r := e.provision(t, "http", "x509-stranger", "--cert", sf, "--cert-key", sk); r.OK {
			t.Fatalf("a certificate of an unknown CA was provisioned: %s", r)
		}
	})

	t.Run("fail/disabled-enrollment", func(t *testing.T) {
		t.Parallel()
		k := key(t)
		e.cli(t, nil, "enrollment", "create", "disabled-dev", "--primary-key", k, "--disabled")
		for _, tr := range []string{"mqtt", "amqp", "http"} {
			r := e.provision(t, tr, "disabled-dev", "--key", k)
			want := "UnauthorizedError" // a 401 answer (MQTT, HTTPS)
			if tr == "amqp" {
				want = "ProvisioningRegistrationFailedError" // status "failed" (see provisioning/amqphead)
			}
			if r.OK || r.Error != want || r.Stage != "register" {
				t.Fatalf("%s: want %s at register, got %s", tr, want, r)
			}
		}
	})
	t.Run("fail/wrong-key", func(t *testing.T) {
		t.Parallel()
		e.cli(t, nil, "enrollment", "create", "wrongkey-dev", "--primary-key", key(t))
		r := e.provision(t, "mqtt", "wrongkey-dev", "--key", key(t))
		if r.OK || r.Stage != "register" {
			t.Fatalf("want a refusal, got %s", r)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name, flag string
			wantHub    string // "kept", "deleted", "disabled"
		}{{"plain", "", "kept"}, {"cascade", "--cascade", "deleted"}, {"cascade-disable", "--cascade-disable", "disabled"}} {
			id := "revoke-" + c.name
			k := key(t)
			e.cli(t, nil, "enrollment", "create", id, "--primary-key", k, "--iot-hubs", "test")
			wantProvisioned(t, e.provision(t, "http", id, "--key", k, "--connect", "mqtt"), e.test, id, 1)
			args := []string{"enrollment", "revoke", id}
			if c.flag != "" {
				args = append(args, c.flag)
			}
			e.cli(t, nil, args...)
			if r := e.provision(t, "mqtt", id, "--key", k); r.OK || r.Error != "UnauthorizedError" {
				t.Fatalf("%s: a revoked enrollment must refuse registration, got %s", c.name, r)
			}
			d, ok := hubDevice(t, e.test, id)
			switch c.wantHub {
			case "kept":
				if !ok || d.Status != "enabled" {
					t.Fatalf("revocation without cascade must not touch the hub: %+v %v", d, ok)
				}
				wantSent(t, e.test.connect(t, "mqtt", "HostName="+e.test.Name+";DeviceId="+id+";SharedAccessKey="+k), 1)
			case "deleted":
				if ok {
					t.Fatalf("--cascade must delete the hub identity: %+v", d)
				}
			case "disabled":
				if !ok || d.Status != "disabled" {
					t.Fatalf("--cascade-disable must disable the hub identity: %+v %v", d, ok)
				}
			}
		}
	})

	t.Run("service-sdk/crud", func(t *testing.T) {
		t.Parallel()
		r := e.node(t, "provservice.js", "--connection-string", e.dps.ConnStr, "--registration-id", "svc-crud", "--hub", e.test.Name)
		if !r.OK {
			t.Fatalf("provisioning service client: %s", r)
		}
		var out struct {
			Steps struct {
				Created struct {
					Etag      string   `json:"etag"`
					KeyLength int      `json:"keyLength"`
					IoTHubs   []string `json:"iotHubs"`
				}
				Got     struct{ Etag, ProvisioningStatus string }
				Updated struct{ Etag, ProvisioningStatus string }
				Stale   struct {
					Error      string `json:"error"`
					StatusCode int    `json:"statusCode"`
				}
				Group       struct{ SameEtag bool }
				AfterDelete struct {
					Error      string `json:"error"`
					StatusCode int    `json:"statusCode"`
				}
			}
		}
		json.Unmarshal([]byte(r.raw), &out)
		s := out.Steps
		switch {
		case s.Created.Etag == "" || s.Created.KeyLength == 0 || !slices.Equal(s.Created.IoTHubs, []string{e.test.Name}):
			t.Fatalf("create: %+v", s.Created)
		case s.Got.Etag != s.Created.Etag:
			t.Fatalf("get: etag %q, created %q", s.Got.Etag, s.Created.Etag)
		case s.Updated.ProvisioningStatus != "disabled" || s.Updated.Etag == s.Got.Etag:
			t.Fatalf("update: %+v", s.Updated)
		case s.Stale.StatusCode != 412:
			t.Fatalf("update with a stale etag: want 412, got %+v", s.Stale)
		case !s.Group.SameEtag:
			t.Fatal("group get returned another etag than create")
		case s.AfterDelete.StatusCode != 404:
			t.Fatalf("get after delete: want 404, got %+v", s.AfterDelete)
		}
	})
}

func wantSelfSigned(t testing.TB, h *hub, id, sha256 string) {
	t.Helper()
	d, ok := hubDevice(t, h, id)
	if !ok || d.Authentication.Type != "selfSigned" {
		t.Fatalf("%s in %s: want a selfSigned identity, got %+v (%v)", id, h.Name, d, ok)
	}
	p, s := d.Authentication.X509Thumbprint.PrimaryThumbprint, d.Authentication.X509Thumbprint.SecondaryThumbprint
	if p == nil || s == nil || !strings.EqualFold(*p, sha256) || !strings.EqualFold(*s, sha256) {
		t.Fatalf("%s: want the leaf's SHA-256 %s in both slots, got %v %v", id, sha256, deref(p), deref(s))
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// waitFile waits for a file a Node driver writes, failing early if the
// driver exits first.
func waitFile(t testing.TB, path string, exited <-chan error) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(nodeTimeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("the Node driver exited (%v) before writing %s", err, path)
		case <-deadline:
			t.Fatalf("%s never appeared", path)
		case <-tick.C:
		}
	}
}

var _ = fmt.Sprint
