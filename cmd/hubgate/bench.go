package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubgate/hubgate/authn"
	"github.com/hubgate/hubgate/bench"
	"github.com/hubgate/hubgate/internal/hubclient"
	"github.com/hubgate/hubgate/registry"
)

// runBench: `hubgate bench hold --spawn --devices N` starts a local hub on
// the embedded registry, creates N SAS devices, holds N idle MQTT/TLS
// connections and prints the server's memory per connection as JSON.
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "hold" {
		return errors.New("bench: the workload available today is `hold`")
	}
	fs := flag.NewFlagSet("bench hold", flag.ContinueOnError)
	devices := fs.Int("devices", 5000, "idle devices to hold")
	ip := fs.String("ip", "127.0.0.50", "loopback address for the spawned hub")
	sources := fs.Int("source-ips", 4, "client source addresses 127.0.1.1..N (ephemeral ports run out near 28k per pair)")
	concurrency := fs.Int("concurrency", 64, "connects in flight")
	hold := fs.Duration("hold", 0, "keep the connections this long after measuring (to profile the server)")
	spawn := fs.Bool("spawn", true, "start a local hub for the run (the only mode today)")
	if _, err := loadSources(fs, args[1:]); err != nil {
		return err
	}
	if !*spawn {
		return errors.New("bench hold: only --spawn is supported")
	}
	dir, err := os.MkdirTemp("", "hubgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	host := "bench.hubgate.test"
	srv := exec.Command(exe, "serve", "--data-dir", dir, "--hostname", host,
		"--mqtt-addr", *ip+":8883", "--https-addr", *ip+":443", "--metrics-addr", *ip+":9090", "--log-level", "warn")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	if err := waitReady(ctx, "http://"+*ip+":9090/readyz"); err != nil {
		return err
	}
	cs, err := os.ReadFile(filepath.Join(dir, "iothubowner.connection-string"))
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "dev-ca.pem")
	hc, err := hubclient.New(strings.TrimSpace(string(cs)), hubclient.Options{Address: *ip + ":443", CAFile: caFile})
	if err != nil {
		return err
	}
	creds, err := createBenchDevices(ctx, hc, host, *devices)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	var srcs []string
	for i := 1; i <= *sources; i++ {
		srcs = append(srcs, fmt.Sprintf("127.0.1.%d", i))
	}
	if *hold > 0 {
		fmt.Fprintf(os.Stderr, "bench: server pid %d, metrics http://%s:9090\n", srv.Process.Pid, *ip)
	}
	res, err := bench.Hold(ctx, bench.HoldConfig{
		Addr: *ip + ":8883", TLS: &tls.Config{RootCAs: roots, ServerName: host},
		Devices: creds, Concurrency: *concurrency, SourceIPs: srcs, ServerPID: srv.Process.Pid, Linger: *hold,
	})
	if err != nil {
		return err
	}
	out := map[string]any{"workload": "hold", "transport": "mqtt", "auth": "sas", "tls": "TLS 1.3, ECDSA P-256 server key", "result": res}
	return json.NewEncoder(os.Stdout).Encode(out)
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
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("spawned hub not ready within 30s")
}

func createBenchDevices(ctx context.Context, hc *hubclient.Client, host string, n int) ([]bench.Cred, error) {
	creds := make([]bench.Cred, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("bench-%06d", i)
			d, err := hc.CreateDevice(ctx, registry.Device{DeviceID: id})
			if err != nil {
				errs <- err
				return
			}
			creds[i] = bench.Cred{
				ID:       id,
				Username: host + "/" + id + "/?api-version=2021-04-12",
				Password: authn.Sign(authn.EncodeResource(host+"/devices/"+id), d.Authentication.SymmetricKey.PrimaryKey, time.Now().Add(24*time.Hour), ""),
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("creating devices: %w", err)
	}
	return creds, nil
}
