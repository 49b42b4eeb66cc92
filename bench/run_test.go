package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubgate/hubgate/internal/pki"
)

// testTLS mints a CA and a server certificate for 127.0.0.1 and returns the
// server config (the hub's settings) and a client config trusting it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca, err := pki.NewRootCA("bench test CA", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer([]string{"bench.test"}, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(srv.CertPEM(), srv.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: roots, ServerName: "bench.test"}
}

func testDevices(n int) []Cred {
	out := make([]Cred, n)
	for i := range out {
		out[i] = Cred{ID: fmt.Sprintf("d%d", i), Username: fmt.Sprintf("bench.test/d%d/?api-version=2021-04-12", i), Password: "x"}
	}
	return out
}

func TestBareTLS(t *testing.T) {
	stc, ctc := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { _ = ServeBareTLS(ln, stc) }()

	wln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: BareWebSocket(), TLSConfig: stc}
	go func() { _ = hs.Serve(tls.NewListener(wln, stc)) }()
	t.Cleanup(func() { hs.Close() })

	for _, c := range []struct {
		name      string
		transport string
		addr      string
	}{{"ok/tls", TransportMQTT, ln.Addr().String()}, {"ok/websocket", TransportMQTTWS, wln.Addr().String()}} {
		t.Run(c.name, func(t *testing.T) {
			p := RunPhase(t.Context(), PhaseConfig{
				Dialer:  &Dialer{Transport: c.transport, Addr: c.addr, TLS: ctc, Probe: true, Timeout: 10 * time.Second},
				Devices: testDevices(20), Concurrency: 4,
			})
			defer p.Close()
			if p.Connected() != 20 {
				f, first := p.Rec.Failures()
				t.Fatalf("%d of 20 connected: %v %s", p.Connected(), f, first)
			}
		})
	}
}

func TestMochiBaseline(t *testing.T) {
	stc, ctc := testTLS(t)
	srv, addr, err := NewMochi("127.0.0.1:0", "", stc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tg := Target{Name: "mochi", PID: os.Getpid(), Dialer: &Dialer{Transport: TransportMQTT, Addr: addr, TLS: ctc, Clean: true, Timeout: 10 * time.Second}}
	cfg := Config{Devices: testDevices(10), Concurrency: 4, Warm: true}
	res, err := Connect(t.Context(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 10 || res.Failed != 0 || res.Latency.Max <= 0 {
		t.Fatalf("connect: %+v", res)
	}
	for _, qos := range []byte{0, 1} {
		res, err = Telemetry(t.Context(), tg, cfg, TelemetryConfig{Messages: 50, Size: 64, QoS: qos, Window: 8})
		if err != nil {
			t.Fatal(err)
		}
		if res.Messages != 500 || res.Failed != 0 {
			t.Fatalf("telemetry qos %d: %d messages, %d failed (%s)", qos, res.Messages, res.Failed, res.FirstError)
		}
	}
}

// TestConnectContract is the small real run scripts depend on: the
// hubgate binary spawns a hub and both baselines, 50 SAS devices connect
// over MQTT/TLS, and one JSON document comes out with a result per target.
// It asserts shape and zero failures, never speed.
func TestConnectContract(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and spawns the hubgate binary")
	}
	exe := filepath.Join(t.TempDir(), "hubgate")
	build := exec.Command("go", "build", "-o", exe, "github.com/hubgate/hubgate/cmd/hubgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "bench", "connect", "--spawn", "--devices", "50", "--transport", "mqtt",
		"--auth", "sas", "--baseline", "--json", "--concurrency", "8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench connect: %v\nstderr:\n%s", err, stderr.String())
	}
	var doc struct {
		Workload string `json:"workload"`
		Results  []struct {
			Target                string          `json:"target"`
			Connected             int             `json:"connected"`
			Failed                int             `json:"failed"`
			ServerCPUUsPerConnect *float64        `json:"server_cpu_us_per_connect"`
			Latency               json.RawMessage `json:"latency"`
		} `json:"results"`
		Ratios map[string]float64 `json:"ratios"`
	}
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Fatal("more than one JSON document on stdout")
	}
	seen := map[string]bool{}
	for _, r := range doc.Results {
		seen[r.Target] = true
		if r.ServerCPUUsPerConnect == nil {
			t.Errorf("%s: no server_cpu_us_per_connect", r.Target)
		}
		if r.Failed != 0 || r.Connected != 50 {
			t.Errorf("%s: %d connected, %d failed\n%s", r.Target, r.Connected, r.Failed, stderr.String())
		}
	}
	for _, want := range []string{"hubgate", "tls", "mochi"} {
		if !seen[want] {
			t.Errorf("no result for target %q", want)
		}
	}
	if len(doc.Results) != 3 || doc.Workload != "connect" {
		t.Errorf("workload %q with %d results", doc.Workload, len(doc.Results))
	}
}
