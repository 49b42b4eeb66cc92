package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 30 * time.Second // first start generates certificates
	stopTimeout  = 20 * time.Second // SIGTERM drains, then stops
	cliTimeout   = 30 * time.Second
)

// hub is one `hubgate serve` process on its own loopback address with its
// own host name, the way a real hub has its own DNS name.
type hub struct {
	Name    string // host name, e.g. hub-sas.hubgate.test
	IP      string // 127.0.0.1x
	DataDir string
	CAFile  string // the dev CA the hub generated; clients trust it
	ConnStr string // iothubowner service connection string

	extra   []string // more `serve` flags
	dps     bool     // run `hubgate dps serve` instead (see dps_test.go)
	logFile string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's result; read after done is closed
}

// Loopback addresses per test: hubs that may run at the same time never share one.
const (
	ipSAS      = "127.0.0.10"
	ipX509     = "127.0.0.11"
	ipRegistry = "127.0.0.12"
	ipPlain    = "127.0.0.13"
	ipRestart  = "127.0.0.14"
)

// startHub starts a hub named name.hubgate.test on ip with a fresh data
// directory and waits until it is ready; t.Cleanup stops it.
func startHub(t testing.TB, name, ip string) *hub {
	t.Helper()
	return startHubWith(t, name, ip)
}

// startHubWith is startHub with more `serve` flags.
func startHubWith(t testing.TB, name, ip string, extra ...string) *hub {
	t.Helper()
	h := &hub{
		Name:    name + ".hubgate.test",
		IP:      ip,
		DataDir: filepath.Join(t.TempDir(), "data"),
		logFile: filepath.Join(t.TempDir(), "serve.log"),
		extra:   extra,
	}
	h.CAFile = filepath.Join(h.DataDir, "dev-ca.pem")
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("stopping %s: %v", h.Name, err)
		}
		if t.Failed() {
			t.Logf("last lines of %s's log:\n%s", h.Name, h.logTail(6000))
		}
	})
	h.start(t)
	cs, err := os.ReadFile(filepath.Join(h.DataDir, "iothubowner.connection-string"))
	if err != nil {
		t.Fatalf("%s: service connection string: %v", h.Name, err)
	}
	h.ConnStr = strings.TrimSpace(string(cs))
	return h
}

func (h *hub) addr(port int) string {
	return net.JoinHostPort(h.IP, fmt.Sprint(port))
}

// start runs `hubgate serve` and polls /readyz until 200, failing fast
// (with the log) if the process exits first.
func (h *hub) start(t testing.TB) {
	t.Helper()
	args := []string{"serve",
		"--data-dir", h.DataDir,
		"--hostname", h.Name,
		"--mqtt-addr", h.addr(8883),
		"--https-addr", h.addr(443),
		"--metrics-addr", h.addr(9090),
	}
	if serveFlags.amqpAddr || h.dps {
		args = append(args, "--amqp-addr", h.addr(5671))
	}
	if h.dps {
		args = append([]string{"dps"}, args...)
	}
	args = append(args, h.extra...)
	logf, err := os.OpenFile(h.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(hubgateBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", h.Name, err)
	}
	h.cmd, h.done, h.waitErr = cmd, make(chan struct{}), nil
	go func(done chan struct{}) {
		h.waitErr = cmd.Wait()
		close(done)
	}(h.done)

	url := "http://" + h.addr(9090) + "/readyz"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-h.done:
			t.Fatalf("%s exited before it was ready (%v); log:\n%s", h.Name, h.waitErr, h.logTail(6000))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GET %s never answered 200 within %v (last: %v); log:\n%s", h.Name, url, startTimeout, err, h.logTail(6000))
		}
	}
}

// stop sends SIGTERM and waits for the process to end (SIGKILL after
// stopTimeout). It returns an error if the process did not exit cleanly.
func (h *hub) stop() error {
	if h.cmd == nil {
		return nil
	}
	cmd, done := h.cmd, h.done
	h.cmd = nil
	select {
	case <-done:
		return fmt.Errorf("had already exited: %v", h.waitErr)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-done:
		if h.waitErr != nil {
			return fmt.Errorf("SIGTERM: want exit status 0, got %v", h.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running %v after SIGTERM; killed", stopTimeout)
	}
}

func (h *hub) logTail(n int) string {
	b, _ := os.ReadFile(h.logFile)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// cleanEnv is the test's environment without proxies (every connection in
// this suite is to a loopback hub) or hubgate settings the tests set themselves.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.EqualFold(k, "http_proxy"), strings.EqualFold(k, "https_proxy"),
			strings.EqualFold(k, "all_proxy"), strings.EqualFold(k, "no_proxy"),
			strings.HasPrefix(k, "HUBGATE_"), strings.HasPrefix(k, "NODE_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// cliResult is one run of the admin CLI.
type cliResult struct {
	Stdout, Stderr []byte
	Err            error // nil only for exit status 0
}

// cliRaw runs `hubgate args...` against this hub: the service connection
// string and dev CA through the environment, the hub's address as a flag
// (its host name resolves only inside Node, through hosts.js).
func (h *hub) cliRaw(t testing.TB, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	if len(args) > 0 && args[0] != "token" { // token is offline: no hub flags
		args = append(args, "--hub-address", h.addr(443))
	}
	cmd := exec.CommandContext(ctx, hubgateBin, args...)
	cmd.Env = append(cleanEnv(), "HUBGATE_CONNECTION_STRING="+h.ConnStr, "HUBGATE_CA_FILE="+h.CAFile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", cliTimeout, err)
	}
	return cliResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

// cli runs the CLI, requires success and decodes its JSON into out (if not nil).
func (h *hub) cli(t testing.TB, out any, args ...string) {
	t.Helper()
	r := h.cliRaw(t, args...)
	if r.Err != nil {
		t.Fatalf("hubgate %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	if out != nil {
		if err := json.Unmarshal(r.Stdout, out); err != nil {
			t.Fatalf("hubgate %s: stdout is not the expected JSON: %v\n%s", strings.Join(args, " "), err, r.Stdout)
		}
	}
}

// cliFails runs the CLI and requires a non-zero exit with a message on stderr.
func (h *hub) cliFails(t testing.TB, args ...string) cliResult {
	t.Helper()
	r := h.cliRaw(t, args...)
	var exit *exec.ExitError
	if !errors.As(r.Err, &exit) {
		t.Fatalf("hubgate %s: want a non-zero exit, got err=%v\nstdout: %s", strings.Join(args, " "), r.Err, r.Stdout)
	}
	if len(bytes.TrimSpace(r.Stderr)) == 0 {
		t.Errorf("hubgate %s: exit %d with nothing on stderr", strings.Join(args, " "), exit.ExitCode())
	}
	return r
}

// device is the part of the registry's device JSON the suite reads.
type device struct {
	DeviceID       string `json:"deviceId"`
	Etag           string `json:"etag"`
	Status         string `json:"status"`
	Authentication struct {
		Type         string `json:"type"`
		SymmetricKey struct {
			PrimaryKey   string `json:"primaryKey"`
			SecondaryKey string `json:"secondaryKey"`
		} `json:"symmetricKey"`
		X509Thumbprint struct {
			PrimaryThumbprint   *string `json:"primaryThumbprint"`
			SecondaryThumbprint *string `json:"secondaryThumbprint"`
		} `json:"x509Thumbprint"`
	} `json:"authentication"`
}

// createDevice runs `hubgate device create id flags...` and checks the echo.
func (h *hub) createDevice(t testing.TB, id string, flags ...string) device {
	t.Helper()
	var d device
	h.cli(t, &d, append([]string{"device", "create", id}, flags...)...)
	if d.DeviceID != id {
		t.Fatalf("device create %s: deviceId in the answer is %q", id, d.DeviceID)
	}
	return d
}

// sasConnString creates a SAS device and returns the connection string the
// CLI hands out for it.
func (h *hub) sasConnString(t testing.TB, id string, flags ...string) string {
	t.Helper()
	h.createDevice(t, id, flags...)
	return h.connString(t, id)
}

func (h *hub) connString(t testing.TB, id string) string {
	t.Helper()
	var out struct {
		ConnectionString string `json:"connectionString"`
	}
	h.cli(t, &out, "device", "connection-string", id)
	want := "HostName=" + h.Name + ";DeviceId=" + id + ";SharedAccessKey="
	if !strings.HasPrefix(out.ConnectionString, want) {
		t.Fatalf("device connection-string %s = %q, want prefix %q", id, out.ConnectionString, want)
	}
	return out.ConnectionString
}

// x509ConnString is what a device with a certificate puts in its connection string.
func (h *hub) x509ConnString(id string) string {
	return "HostName=" + h.Name + ";DeviceId=" + id + ";x509=true"
}
