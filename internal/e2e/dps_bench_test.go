package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/provisioning"
)

// The provisioning benchmarks measure, they assert nothing (STYLE rule 18):
//
//	go test ./internal/e2e/ -run '^$' -bench 'DPS' -benchtime 2000x
//
// BenchmarkDPSRegistrations{HTTPS,MQTT}: symmetric-key group devices
// registering concurrently (each a fresh device, so each creates a hub
// identity over the hub's REST API); reports registrations/s. Clients honour
// retry-after like the SDKs do.
// BenchmarkDPSMove: the seed workflow with the official SDK, b.N times;
// reports p50/p99 of "operator moves the device" → "device connected to the
// new hub".

const benchWorkers = 1000 // concurrent devices: with retry-after 1 s each holds about a second

func benchEnv(b *testing.B) (*dpsEnv, string) {
	b.Helper()
	// The benchmarks need the suite's addresses to themselves: run them
	// without the tests (-run '^$').
	e := &dpsEnv{
		dps:  startDPS(b, "dps", ipDPS),
		test: startHub(b, "hub-test", ipDPSTest),
		prod: startHub(b, "hub-prod", ipDPSProd),
	}
	scope, err := os.ReadFile(filepath.Join(e.dps.DataDir, "id-scope"))
	if err != nil {
		b.Fatal(err)
	}
	e.idScope = strings.TrimSpace(string(scope))
	var bundle []byte
	for _, h := range []*hub{e.dps, e.test, e.prod} {
		pem, _ := os.ReadFile(h.CAFile)
		bundle = append(bundle, pem...)
	}
	e.caBundle = filepath.Join(b.TempDir(), "cas.pem")
	os.WriteFile(e.caBundle, bundle, 0o644)
	for name, h := range map[string]*hub{"test": e.test, "prod": e.prod} {
		e.cli(b, nil, "hub", "link", name, "--hub-connection-string", h.ConnStr, "--hub-address", h.addr(443), "--hub-ca-file", h.CAFile)
	}
	gk := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	e.cli(b, nil, "group", "create", "bench-group", "--primary-key", gk)
	return e, gk
}

func (e *dpsEnv) tlsConfig(b testing.TB) *tls.Config {
	pem, err := os.ReadFile(e.dps.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: roots, ServerName: e.dps.Name, MinVersion: tls.VersionTLS12}
}

func (e *dpsEnv) regToken(regID, groupKey string) string {
	return authn.Sign(e.idScope+"/registrations/"+regID, provisioning.DeriveDeviceKey(groupKey, regID), time.Now().Add(time.Hour), "registration")
}

func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 2 * time.Second // the SDKs' default
	}
	return time.Duration(n) * time.Second
}

// registerHTTPS runs one registration the way azure-iot-provisioning-device-http does.
func (e *dpsEnv) registerHTTPS(ctx context.Context, c *http.Client, regID, groupKey string) error {
	base := "https://" + e.dps.Name + "/" + e.idScope + "/registrations/" + regID
	tok := e.regToken(regID, groupKey)
	do := func(method, url, body string) (int, http.Header, provisioning.OperationStatus, error) {
		req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		req.Header.Set("Authorization", tok)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, provisioning.OperationStatus{}, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st provisioning.OperationStatus
		json.Unmarshal(b, &st)
		return resp.StatusCode, resp.Header, st, nil
	}
	code, h, st, err := do(http.MethodPut, base+"/register?api-version=2019-03-31", `{"registrationId":"`+regID+`"}`)
	for err == nil && code == http.StatusAccepted {
		time.Sleep(retryAfter(h.Get("Retry-After"))) // the protocol's poll interval, not test synchronisation
		code, h, st, err = do(http.MethodGet, base+"/operations/"+st.OperationID+"?api-version=2019-03-31", "{}")
	}
	if err == nil && (code != http.StatusOK || st.Status != "assigned") {
		err = fmt.Errorf("%s: %d %s", regID, code, st.Status)
	}
	return err
}

func BenchmarkDPSRegistrationsHTTPS(b *testing.B) {
	e, gk := benchEnv(b)
	ip := e.dps.IP
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: e.tlsConfig(b), MaxIdleConnsPerHost: benchWorkers,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(ip, "443"))
		}}}
	runRegistrations(b, func(ctx context.Context, i int) error {
		return e.registerHTTPS(ctx, c, fmt.Sprintf("bench-https-%d", i), gk)
	})
}

// registerMQTT runs one registration the way azure-iot-provisioning-device-mqtt does.
func (e *dpsEnv) registerMQTT(ctx context.Context, conf *tls.Config, regID, groupKey string) error {
	type resp struct {
		topic   string
		payload []byte
	}
	ch := make(chan resp, 4)
	o := paho.NewClientOptions().AddBroker("tls://" + e.dps.addr(8883)).SetClientID(regID).
		SetUsername(e.idScope + "/registrations/" + regID + "/api-version=2019-03-31&ClientVersion=bench").
		SetPassword(e.regToken(regID, groupKey)).SetTLSConfig(conf).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(30 * time.Second)
	cl := paho.NewClient(o)
	if t := cl.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return fmt.Errorf("connect: %v", t.Error())
	}
	defer cl.Disconnect(0)
	if t := cl.Subscribe("$dps/registrations/res/#", 1, func(_ paho.Client, m paho.Message) {
		ch <- resp{m.Topic(), m.Payload()}
	}); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	topic := "$dps/registrations/PUT/iotdps-register/?$rid=1"
	body := `{"registrationId":"` + regID + `"}`
	for rid := 2; ; rid++ {
		cl.Publish(topic, 1, false, body)
		var r resp
		select {
		case r = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		var st provisioning.OperationStatus
		if err := json.Unmarshal(r.payload, &st); err != nil {
			return fmt.Errorf("%s: %v", r.topic, err)
		}
		switch {
		case strings.HasPrefix(r.topic, "$dps/registrations/res/202/"):
			ra := ""
			if _, q, ok := strings.Cut(r.topic, "retry-after="); ok {
				ra, _, _ = strings.Cut(q, "&")
			}
			time.Sleep(retryAfter(ra)) // the protocol's poll interval
			topic = fmt.Sprintf("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=%d&operationId=%s", rid, st.OperationID)
			body = " "
		case strings.HasPrefix(r.topic, "$dps/registrations/res/200/") && st.Status == "assigned":
			return nil
		default:
			return fmt.Errorf("%s: %s", r.topic, r.payload)
		}
	}
}

func BenchmarkDPSRegistrationsMQTT(b *testing.B) {
	e, gk := benchEnv(b)
	conf := e.tlsConfig(b)
	runRegistrations(b, func(ctx context.Context, i int) error {
		return e.registerMQTT(ctx, conf, fmt.Sprintf("bench-mqtt-%d", i), gk)
	})
}

func runRegistrations(b *testing.B, one func(context.Context, int) error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range min(benchWorkers, b.N) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := one(ctx, i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Logf("%d of %d registrations failed; first: %v", n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(int64(b.N)-failed.Load())/el.Seconds(), "registrations/s")
}

// BenchmarkDPSMove: b.N seed workflows (provision to test, connect, operator
// moves to prod, refused, re-provision, connect) with the official SDKs.
func BenchmarkDPSMove(b *testing.B) {
	e, _ := benchEnv(b)
	var lat []time.Duration
	for i := range b.N {
		id := fmt.Sprintf("bench-move-%d", i)
		k := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		e.cli(b, nil, "enrollment", "create", id, "--primary-key", k, "--iot-hubs", "test")
		ready := filepath.Join(b.TempDir(), "ready")
		ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
		cmd, stdout, stderr := e.nodeCmd(ctx, "provision.js", "--transport", "mqtt", "--dps-host", e.dps.Name,
			"--id-scope", e.idScope, "--registration-id", id, "--key", k, "--connect", "mqtt", "--follow",
			"--ready-file", ready, "--timeout", "50000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitFile(b, ready, done)
		moved := time.Now()
		e.cli(b, nil, "enrollment", "move", id, "--hub", "prod")
		r := parseNode(b, "provision.js --follow", <-done, stdout, stderr)
		cancel()
		var out struct {
			DroppedAt        int64 `json:"droppedAt"`
			ConnectedAgainAt int64 `json:"connectedAgainAt"`
		}
		json.Unmarshal([]byte(r.raw), &out)
		if !r.OK {
			b.Fatalf("seed workflow: %s", r)
		}
		lat = append(lat, time.UnixMilli(out.ConnectedAgainAt).Sub(moved))
		b.Logf("move %d: dropped after %v, connected to prod %v later", i,
			time.UnixMilli(out.DroppedAt).Sub(moved), time.UnixMilli(out.ConnectedAgainAt).Sub(time.UnixMilli(out.DroppedAt)))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99-ms")
}
