package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/bench"
	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/internal/pki"
	"github.com/hubgate/hubgate/registry"
)

const benchUsage = `usage: hubgate bench <workload> [flags]

workloads:
  connect     N devices connect once (as fast as possible, or --rate), concurrency C
  storm       N connected devices drop and all reconnect at once
  hold        N idle connections; server memory per connection
  telemetry   N devices send --messages M of --size S bytes at --qos 0|1

--spawn starts a local hub on the embedded registry (and, with --baseline,
the bare-TLS and unauthenticated-mochi baselines) and cleans up after.
Without --spawn, point it at a hub with --connection-string, --hub-address,
--ca-file, --device-addr and (for CPU/RSS) --server-pid.
`

// benchFlags is everything the workloads take.
type benchFlags struct {
	workload    string
	devices     int
	concurrency int
	rate        float64
	transport   string
	auth        string
	baseline    bool
	spawn       bool
	jsonOut     bool
	svg         string
	keep        bool
	warm        bool
	procs       int
	sources     int
	ip          string
	timeout     time.Duration
	linger      time.Duration
	messages    int
	size        int
	qos         int
	window      int
	serverPID   int
	deviceAddr  string
	cs          string
	hubAddr     string
	caFile      string
	host        string
}

func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return errors.New("bench: missing workload")
	}
	switch args[0] {
	case "baseline-tls", "baseline-mochi":
		return runBaseline(ctx, args[0], args[1:])
	case "worker":
		return runBenchWorker(ctx, args[1:])
	case "connect", "storm", "hold", "telemetry":
	case "help", "-h", "--help":
		fmt.Print(benchUsage)
		return nil
	default:
		fmt.Fprint(os.Stderr, benchUsage)
		return fmt.Errorf("bench: unknown workload %q", args[0])
	}
	f := benchFlags{workload: args[0]}
	fs := flag.NewFlagSet("bench "+f.workload, flag.ContinueOnError)
	defDevices := map[string]int{"connect": 2000, "storm": 5000, "hold": 5000, "telemetry": 100}[f.workload]
	fs.IntVar(&f.devices, "devices", defDevices, "virtual devices")
	fs.IntVar(&f.concurrency, "concurrency", 64, "connects in flight (storm: all at once regardless)")
	fs.Float64Var(&f.rate, "rate", 0, "target connects per second (0: as fast as possible)")
	fs.StringVar(&f.transport, "transport", "mqtt", "mqtt, mqtt-ws, amqp or amqp-ws")
	fs.StringVar(&f.auth, "auth", "sas", "sas, selfsigned, ca or mix (round robin of the three; MQTT only)")
	fs.BoolVar(&f.baseline, "baseline", false, "also measure the bare-TLS and unauthenticated-mochi baselines (spawned locally)")
	fs.BoolVar(&f.spawn, "spawn", false, "start a local hub on the embedded registry for the run")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as one JSON document on stdout (the table goes to stderr)")
	fs.StringVar(&f.svg, "svg", "", "write a chart of rate and latency over time to this file")
	fs.BoolVar(&f.keep, "keep", false, "keep the bench devices in the registry after the run")
	fs.BoolVar(&f.warm, "warm", true, "connect: one unmeasured pass first, so the registry cache is warm")
	fs.IntVar(&f.procs, "procs", 1, "client processes to split the load over (this binary, re-executed)")
	fs.IntVar(&f.sources, "source-ips", 0, "client source addresses 127.0.1.1… (default: one per 20,000 devices)")
	fs.StringVar(&f.ip, "ip", "", "loopback address for spawned servers (default: a random 127.77.x.y)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.DurationVar(&f.linger, "linger", 0, "hold: keep the connections this long after measuring (to profile the server)")
	fs.IntVar(&f.messages, "messages", 100, "telemetry: messages per device")
	fs.IntVar(&f.size, "size", 256, "telemetry: payload bytes")
	fs.IntVar(&f.qos, "qos", 1, "telemetry: 0 or 1")
	fs.IntVar(&f.window, "window", 16, "telemetry: QoS 1 messages in flight per device")
	fs.IntVar(&f.serverPID, "server-pid", 0, "hub process to read CPU and RSS from (/proc) when not spawned")
	fs.StringVar(&f.deviceAddr, "device-addr", "", "hub address for device connections (default: the hub host on the transport's port)")
	fs.StringVar(&f.cs, "connection-string", os.Getenv("HUBGATE_CONNECTION_STRING"), "iothubowner connection string (not spawned)")
	fs.StringVar(&f.hubAddr, "hub-address", "", "registry REST address HOST:PORT (not spawned)")
	fs.StringVar(&f.caFile, "ca-file", os.Getenv("HUBGATE_CA_FILE"), "CA that signed the hub's certificate (not spawned)")
	pos, err := loadSources(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("bench: unexpected argument %q", pos[0])
	}
	if err := f.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return f.run(ctx)
}

func (f *benchFlags) validate() error {
	switch {
	case f.devices <= 0 || f.devices > 1_000_000:
		return errors.New("bench: --devices must be 1…1,000,000")
	case f.transport != bench.TransportMQTT && f.transport != bench.TransportMQTTWS &&
		f.transport != bench.TransportAMQP && f.transport != bench.TransportAMQPWS:
		return fmt.Errorf("bench: unknown --transport %q", f.transport)
	case f.auth != "sas" && f.auth != "selfsigned" && f.auth != "ca" && f.auth != "mix":
		return fmt.Errorf("bench: unknown --auth %q", f.auth)
	case strings.HasPrefix(f.transport, "amqp") && f.auth != "sas":
		return errors.New("bench: AMQP is measured with SAS devices (SASL PLAIN)")
	case f.workload == "telemetry" && strings.HasPrefix(f.transport, "amqp"):
		return errors.New("bench: telemetry is MQTT only for now")
	case f.qos != 0 && f.qos != 1:
		return errors.New("bench: --qos is 0 or 1")
	case f.procs < 1 || f.procs > 64:
		return errors.New("bench: --procs must be 1…64")
	case f.baseline && !f.spawn:
		return errors.New("bench: --baseline needs --spawn (the baselines use the spawned hub's certificate)")
	}
	return nil
}

// benchEnv is a prepared run: where the hub is, its trust root, its devices.
type benchEnv struct {
	host    string
	ip      string // spawned servers' address
	dir     string
	roots   *x509.CertPool
	hc      *hubclient.Client
	hubPID  int
	devices []bench.Cred
	procs   []*exec.Cmd // spawned servers, stopped by cleanup
	tlsDesc string
	jobFile string // --procs job (device credentials), removed by cleanup
}

func (f *benchFlags) run(ctx context.Context) (err error) {
	limit := bench.RaiseFileLimit()
	env := &benchEnv{}
	defer env.cleanup()
	if f.spawn {
		err = env.spawnHub(ctx, f)
	} else {
		err = env.remoteHub(f)
	}
	if err != nil {
		return err
	}
	t0 := time.Now()
	if env.devices, err = createBenchDevices(ctx, env.hc, env.host, f.devices, f.auth); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %d %s devices created in %.1fs\n", f.devices, f.auth, time.Since(t0).Seconds())
	if !f.spawn && !f.keep {
		defer deleteBenchDevices(env.hc, env.devices)
	}
	targets, err := f.targets(ctx, env)
	if err != nil {
		return err
	}
	sources := f.sources
	if sources == 0 {
		sources = (f.devices/f.procs)/20000 + 1
	}
	cfg := bench.Config{
		Devices: env.devices, Concurrency: f.concurrency, Rate: f.rate,
		SourceIPs: bench.SourceAddrs(sources), Warm: f.warm, Progress: os.Stderr,
	}
	if f.procs > 1 {
		w, err := startWorkers(env, f, cfg.SourceIPs)
		if err != nil {
			return err
		}
		defer w.Close()
		cfg.External = w
	}
	rep := &bench.Report{
		Workload: f.workload, Transport: f.transport, Auth: f.auth, Devices: f.devices, Concurrency: f.concurrency,
		TLS:     env.tlsDesc,
		Machine: bench.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), ClientProc: f.procs, FileLimit: limit},
	}
	if f.workload == "hold" && limit < uint64(f.devices)+100 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("open-file limit %d is below the device count: connections past it will fail", limit))
	}
	for _, t := range targets {
		var res bench.Result
		switch f.workload {
		case "connect":
			res, err = bench.Connect(ctx, t, cfg)
		case "hold":
			linger := time.Duration(0)
			if t.Name == "hubgate" { // the hub is the one to profile
				linger = f.linger
			}
			res, err = bench.Hold(ctx, t, cfg, linger)
		case "storm":
			res, err = bench.Storm(ctx, t, cfg)
		case "telemetry":
			res, err = bench.Telemetry(ctx, t, cfg, bench.TelemetryConfig{Messages: f.messages, Size: f.size, QoS: byte(f.qos), Window: f.window})
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rep.Finish()
	if f.svg != "" {
		if err := os.WriteFile(f.svg, bench.SVG(rep), 0o644); err != nil {
			return err
		}
	}
	if f.jsonOut {
		rep.WriteTable(os.Stderr)
		for i := range rep.Results { // the chart carries the full timeline; keep the JSON bounded
			rep.Results[i].Timeline = trimTimeline(rep.Results[i].Timeline)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.WriteTable(os.Stdout)
	return nil
}

// trimTimeline keeps at most 200 buckets in the JSON.
func trimTimeline(b []bench.Bucket) []bench.Bucket {
	if len(b) <= 200 {
		return b
	}
	return b[:200]
}

// spawnHub starts `hubgate serve` on a fresh data directory and a loopback
// address of its own.
func (e *benchEnv) spawnHub(ctx context.Context, f *benchFlags) error {
	e.ip = f.ip
	if e.ip == "" {
		e.ip = fmt.Sprintf("127.77.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	}
	e.host = "bench.hubgate.test"
	dir, err := os.MkdirTemp("", "hubgate-bench-")
	if err != nil {
		return err
	}
	e.dir = dir
	cmd, err := e.start(ctx, "serve", "--data-dir", dir, "--hostname", e.host,
		"--mqtt-addr", e.ip+":8883", "--amqp-addr", e.ip+":5671", "--https-addr", e.ip+":443",
		"--metrics-addr", e.ip+":9090", "--log-level", "warn")
	if err != nil {
		return err
	}
	e.hubPID = cmd.Process.Pid
	if err := waitReady(ctx, "http://"+e.ip+":9090/readyz"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: hub pid %d on %s (metrics and pprof: http://%s:9090/debug/pprof/)\n", e.hubPID, e.ip, e.ip)
	cs, err := os.ReadFile(filepath.Join(dir, "iothubowner.connection-string"))
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "dev-ca.pem")
	if e.hc, err = hubclient.New(strings.TrimSpace(string(cs)), hubclient.Options{Address: e.ip + ":443", CAFile: caFile}); err != nil {
		return err
	}
	return e.loadRoots(caFile)
}

func (e *benchEnv) remoteHub(f *benchFlags) error {
	if f.cs == "" {
		return errors.New("bench: without --spawn, --connection-string (or HUBGATE_CONNECTION_STRING) is required")
	}
	var err error
	if e.hc, err = hubclient.New(f.cs, hubclient.Options{Address: f.hubAddr, CAFile: f.caFile}); err != nil {
		return err
	}
	e.host = e.hc.Host
	e.hubPID = f.serverPID
	if f.caFile == "" {
		e.roots, err = x509.SystemCertPool()
		return err
	}
	return e.loadRoots(f.caFile)
}

func (e *benchEnv) loadRoots(file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	e.roots = x509.NewCertPool()
	if !e.roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("bench: no certificate in %s", file)
	}
	return nil
}

// start runs this binary with args, its stderr ours, stopped by cleanup.
func (e *benchEnv) start(_ context.Context, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, cmd)
	return cmd, nil
}

func (e *benchEnv) cleanup() {
	for _, p := range e.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range e.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if e.jobFile != "" {
		_ = os.Remove(e.jobFile)
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// targets builds the dialers of hubgate and, with --baseline, starts the
// baselines with the hub's own certificate and TLS settings.
func (f *benchFlags) targets(ctx context.Context, e *benchEnv) ([]bench.Target, error) {
	tc := &tls.Config{RootCAs: e.roots, ServerName: e.host} // no session cache: every handshake is full
	ws := f.transport == bench.TransportMQTTWS || f.transport == bench.TransportAMQPWS
	addr := f.deviceAddr
	if addr == "" {
		host := e.host
		if e.ip != "" {
			host = e.ip
		}
		port := map[string]string{bench.TransportMQTT: "8883", bench.TransportMQTTWS: "443", bench.TransportAMQP: "5671", bench.TransportAMQPWS: "443"}[f.transport]
		addr = net.JoinHostPort(host, port)
	}
	hub := bench.Target{Name: "hubgate", PID: e.hubPID, Dialer: &bench.Dialer{Transport: f.transport, Addr: addr, TLS: tc, Clean: true}}
	e.tlsDesc = describeTLS(ctx, hub.Dialer)
	if !f.baseline {
		return []bench.Target{hub}, nil
	}
	cert, key := filepath.Join(e.dir, "server.pem"), filepath.Join(e.dir, "server.key")
	tlsAddr, tlsPID, err := e.startBaseline(ctx, "baseline-tls", cert, key, ws)
	if err != nil {
		return nil, err
	}
	// The bare-TLS baseline speaks no protocol: same handshake, one tiny round
	// trip. hubgate runs between the baselines, so the drift of a shared
	// machine spreads over both ratios.
	out := []bench.Target{
		{Name: "tls", PID: tlsPID, Dialer: &bench.Dialer{Transport: f.transport, Addr: tlsAddr, TLS: tc, Probe: true}},
		hub,
	}
	if f.workload == "telemetry" {
		out = out[1:] // a bare TLS server takes no messages
	}
	if strings.HasPrefix(f.transport, "mqtt") { // mochi has no AMQP
		mAddr, mPID, err := e.startBaseline(ctx, "baseline-mochi", cert, key, ws)
		if err != nil {
			return nil, err
		}
		out = append(out, bench.Target{Name: "mochi", PID: mPID, Dialer: &bench.Dialer{Transport: f.transport, Addr: mAddr, TLS: tc, Clean: true}})
	}
	return out, nil
}

// describeTLS does one handshake with the hub and names what was negotiated.
func describeTLS(ctx context.Context, d *bench.Dialer) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dd := *d
	dd.Probe = true
	c, err := dd.Dial(ctx, nil, bench.Cred{})
	desc := "ECDSA P-256 server key (development certificate), client certificate requested, no session resumption"
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		desc = fmt.Sprintf("%s %s %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, keyType(st.PeerCertificates)) +
			", client certificate requested, no session resumption"
	}
	if c != nil {
		c.Close()
	}
	_ = err // the hub answers a probe with a CONNACK refusal or a close; the handshake is what we wanted
	return desc
}

func keyType(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return "unknown server key"
	}
	if k, ok := chain[0].PublicKey.(*ecdsa.PublicKey); ok {
		return "ECDSA " + k.Curve.Params().Name + " server key"
	}
	return chain[0].PublicKeyAlgorithm.String() + " server key"
}

// startBaseline runs `hubgate bench baseline-*` on the next ports of the
// spawned hub's address and waits for its "ready ADDR" line.
func (e *benchEnv) startBaseline(ctx context.Context, kind, cert, key string, ws bool) (string, int, error) {
	port := map[string]string{"baseline-tls": "8884", "baseline-mochi": "8885"}[kind]
	wsPort := map[string]string{"baseline-tls": "8444", "baseline-mochi": "8445"}[kind]
	args := []string{"bench", kind, "--cert", cert, "--key", key, "--addr", e.ip + ":" + port}
	if ws {
		args = append(args, "--ws-addr", e.ip+":"+wsPort)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	e.procs = append(e.procs, cmd)
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		addr, ok := strings.CutPrefix(s, "ready ")
		if !ok {
			return "", 0, fmt.Errorf("bench: %s did not start (%q)", kind, s)
		}
		if ws {
			addr = e.ip + ":" + wsPort
		}
		return addr, cmd.Process.Pid, nil
	case <-time.After(30 * time.Second):
		return "", 0, fmt.Errorf("bench: %s not ready in 30s", kind)
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
}

// runBaseline is the hidden `hubgate bench baseline-tls|baseline-mochi`: a
// baseline server in a process of its own, with the hub's TLS settings
// (serverTLS, the very function `serve` uses). It prints "ready ADDR" and
// serves until SIGTERM.
func runBaseline(ctx context.Context, kind string, args []string) error {
	fs := flag.NewFlagSet("bench "+kind, flag.ContinueOnError)
	cert := fs.String("cert", "", "server certificate (PEM)")
	key := fs.String("key", "", "server key (PEM)")
	addr := fs.String("addr", "127.0.0.1:0", "TLS listen address")
	wsAddr := fs.String("ws-addr", "", "HTTPS WebSocket listen address (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bench.RaiseFileLimit()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	tc, err := serverTLS(serveConfig{TLSCert: *cert, TLSKey: *key}, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch kind {
	case "baseline-tls":
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		go func() { _ = bench.ServeBareTLS(ln, tc) }()
		if *wsAddr != "" {
			wln, err := net.Listen("tcp", *wsAddr)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: bench.BareWebSocket(), TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = hs.Serve(tls.NewListener(wln, tc)) }()
			defer hs.Close()
		}
		fmt.Printf("ready %s\n", ln.Addr())
		<-ctx.Done()
		return ln.Close()
	default:
		srv, a, err := bench.NewMochi(*addr, *wsAddr, tc, log)
		if err != nil {
			return err
		}
		fmt.Printf("ready %s\n", a)
		<-ctx.Done()
		return srv.Close()
	}
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("spawned hub not ready within 30s")
}

// createBenchDevices registers n devices bench-000000… through the registry
// REST API (16 requests in flight) and returns their credentials. auth "mix"
// cycles sas, selfsigned and ca.
func createBenchDevices(ctx context.Context, hc *hubclient.Client, host string, n int, auth string) ([]bench.Cred, error) {
	hubName, _, _ := strings.Cut(host, ".")
	var ca *pki.KeyPair
	if auth == "ca" || auth == "mix" {
		var err error
		if ca, err = pki.NewRootCA("hubgate bench CA", pki.Options{}); err != nil {
			return nil, err
		}
		err = hc.Do(ctx, http.MethodPut, "/certificates/hubgate-bench", "",
			map[string]any{"certificate": string(ca.CertPEM()), "isVerified": true}, nil)
		var he *hubclient.Error
		if err != nil && !(errors.As(err, &he) && he.Status == http.StatusConflict) {
			return nil, fmt.Errorf("bench CA: %w", err)
		}
		if err != nil { // left over from a --keep run: replace it
			if err := hc.Do(ctx, http.MethodDelete, "/certificates/hubgate-bench", "*", nil, nil); err != nil {
				return nil, err
			}
			if err := hc.Do(ctx, http.MethodPut, "/certificates/hubgate-bench", "",
				map[string]any{"certificate": string(ca.CertPEM()), "isVerified": true}, nil); err != nil {
				return nil, err
			}
		}
	}
	creds := make([]bench.Cred, n)
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := fmt.Sprintf("bench-%06d", i)
			kind := auth
			if auth == "mix" {
				kind = []string{"sas", "selfsigned", "ca"}[i%3]
			}
			c, err := createBenchDevice(ctx, hc, host, hubName, id, kind, ca)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			creds[i] = c
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("creating devices: %w", firstErr)
	}
	return creds, ctx.Err()
}

func createBenchDevice(ctx context.Context, hc *hubclient.Client, host, hubName, id, kind string, ca *pki.KeyPair) (bench.Cred, error) {
	c := bench.Cred{ID: id, Username: host + "/" + id + "/?api-version=2021-04-12"}
	d := registry.Device{DeviceID: id}
	var kp *pki.KeyPair
	var err error
	switch kind {
	case "selfsigned":
		if kp, err = pki.SelfSignedClient(id, pki.Options{}); err != nil {
			return c, err
		}
		tp := pki.SHA256Thumbprint(kp.Cert.Raw)
		d.Authentication = registry.Authentication{Type: registry.AuthSelfSigned, X509Thumbprint: registry.X509Thumbprint{PrimaryThumbprint: &tp}}
	case "ca":
		if kp, err = ca.IssueClient(id, pki.Options{}); err != nil {
			return c, err
		}
		d.Authentication.Type = registry.AuthCA
	}
	// A device left over from a --keep run is replaced.
	_ = hc.DeleteDevice(ctx, id)
	got, err := hc.CreateDevice(ctx, d)
	if err != nil {
		return c, err
	}
	if kp != nil {
		c.CertPEM, c.KeyPEM = kp.CertPEM(), kp.KeyPEM()
		tc, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return c, err
		}
		c.Cert = &tc
		return c, nil
	}
	c.Password = authn.Sign(authn.EncodeResource(host+"/devices/"+id), got.Authentication.SymmetricKey.PrimaryKey, time.Now().Add(24*time.Hour), "")
	c.AMQPUser = id + "@sas." + hubName
	return c, nil
}

func deleteBenchDevices(hc *hubclient.Client, creds []bench.Cred) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, c := range creds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = hc.DeleteDevice(ctx, c.ID)
		})
	}
	wg.Wait()
	_ = hc.Do(ctx, http.MethodDelete, "/certificates/"+url.PathEscape("hubgate-bench"), "*", nil, nil)
}

// startWorkers writes the job (devices with their credentials) to a
// private file and starts n `hubgate bench worker` processes on it.
func startWorkers(e *benchEnv, f *benchFlags, sources []string) (*bench.Workers, error) {
	caFile := f.caFile
	if e.dir != "" {
		caFile = filepath.Join(e.dir, "dev-ca.pem")
	}
	job := bench.WorkerJob{Devices: e.devices, SourceIPs: sources, CAFile: caFile, ServerName: e.host}
	jf, err := os.CreateTemp(e.dir, "bench-job-*.json") // 0600: it holds device keys and tokens
	if err != nil {
		return nil, err
	}
	e.jobFile = jf.Name()
	if err := json.NewEncoder(jf).Encode(job); err != nil {
		jf.Close()
		return nil, err
	}
	if err := jf.Close(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return bench.StartWorkers(exe, []string{"bench", "worker", "--job", jf.Name()}, f.procs, len(e.devices))
}

// runBenchWorker is the hidden `hubgate bench worker`: one client process
// of a --procs run, driven over stdin and stdout.
func runBenchWorker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench worker", flag.ContinueOnError)
	jobFile := fs.String("job", "", "job file")
	index := fs.Int("index", 0, "this worker's index")
	procs := fs.Int("procs", 1, "number of workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*jobFile)
	if err != nil {
		return err
	}
	var job bench.WorkerJob
	if err := json.Unmarshal(b, &job); err != nil {
		return err
	}
	bench.RaiseFileLimit()
	return bench.ServeWorker(ctx, job, *index, *procs, os.Stdin, os.Stdout)
}
