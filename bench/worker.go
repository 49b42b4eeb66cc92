package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Load split across processes: the parent starts --procs copies of itself
// (`hubgate bench worker`), each taking every N-th device, and drives them
// with one JSON line per phase on stdin; each answers with its samples on
// stdout. The server is metered by the parent as usual; the client CPU is
// the sum of the workers' own.

// WorkerJob is what every worker reads from the job file.
type WorkerJob struct {
	Devices    []Cred   `json:"devices"`
	SourceIPs  []string `json:"source_ips"`
	CAFile     string   `json:"ca_file"`
	ServerName string   `json:"server_name"`
}

// workerRequest is one command on a worker's stdin.
type workerRequest struct {
	Op          string  `json:"op"` // "connect" or "close"
	Label       string  `json:"label,omitempty"`
	Transport   string  `json:"transport,omitempty"`
	Addr        string  `json:"addr,omitempty"`
	Probe       bool    `json:"probe,omitempty"`
	Clean       bool    `json:"clean,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Retries     int     `json:"retries,omitempty"`
}

// workerReply is a worker's answer.
type workerReply struct {
	Samples   [][3]int64 `json:"samples,omitempty"` // at ns, latency ns, failed (0/1)
	Reasons   []string   `json:"reasons,omitempty"` // per failed sample, in order
	FirstErr  string     `json:"first_error,omitempty"`
	Connected int        `json:"connected"`
	Elapsed   int64      `json:"elapsed_ns"`
	CPU       int64      `json:"cpu_ns"`
	Err       string     `json:"error,omitempty"`
}

// ServeWorker runs one worker: it loads its share of the job and answers
// commands from r on w until r ends.
func ServeWorker(ctx context.Context, job WorkerJob, index, procs int, r io.Reader, w io.Writer) error {
	var mine []Cred
	for i, d := range job.Devices {
		if i%procs != index {
			continue
		}
		if d.CertPEM != nil {
			c, err := tls.X509KeyPair(d.CertPEM, d.KeyPEM)
			if err != nil {
				return err
			}
			d.Cert = &c
		}
		mine = append(mine, d)
	}
	tc, err := ClientTLS(job.CAFile, job.ServerName)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	sc := bufio.NewScanner(r)
	var open *Phase
	for sc.Scan() {
		var req workerRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return err
		}
		var rep workerReply
		switch req.Op {
		case "close":
			if open != nil {
				open.Close()
				open = nil
			}
		case "connect":
			if open != nil {
				open.Close()
			}
			open = RunPhase(ctx, PhaseConfig{
				Dialer:  &Dialer{Transport: req.Transport, Addr: req.Addr, TLS: tc, Probe: req.Probe, Clean: req.Clean},
				Devices: mine, Concurrency: req.Concurrency, Rate: req.Rate, SourceIPs: job.SourceIPs, Retries: req.Retries,
			})
			rep.Connected = open.Connected()
			rep.Elapsed = int64(open.Elapsed)
			open.Rec.mu.Lock()
			for _, s := range open.Rec.samples {
				f := int64(0)
				if s.Failed {
					f = 1
				}
				rep.Samples = append(rep.Samples, [3]int64{int64(s.At), int64(s.Latency), f})
			}
			open.Rec.mu.Unlock()
			reasons, first := open.Rec.Failures()
			for k, v := range reasons {
				for range v {
					rep.Reasons = append(rep.Reasons, k)
				}
			}
			rep.FirstErr = first
		default:
			rep.Err = "unknown op " + req.Op
		}
		rep.CPU = int64(SelfCPU())
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if open != nil {
		open.Close()
	}
	return sc.Err()
}

// ClientTLS trusts caFile (system roots when empty) and verifies serverName.
// It keeps no session cache: every handshake is a full one.
func ClientTLS(caFile, serverName string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := newPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bench: no certificate in %s", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Workers is a set of worker processes; it implements PhaseRunner.
type Workers struct {
	procs []*workerProc
	total int // devices over all workers

	mu  sync.Mutex // guards cpu
	cpu []time.Duration
}

type workerProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// StartWorkers starts n workers running `exe args… --index k --procs n`.
func StartWorkers(exe string, args []string, n, devices int) (*Workers, error) {
	w := &Workers{total: devices, cpu: make([]time.Duration, n)}
	for k := range n {
		cmd := exec.Command(exe, append(append([]string{}, args...), "--index", fmt.Sprint(k), "--procs", fmt.Sprint(n))...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			w.Close()
			return nil, err
		}
		w.procs = append(w.procs, &workerProc{cmd: cmd, in: in, out: json.NewDecoder(out)})
	}
	return w, nil
}

// CPU is the workers' CPU time as last reported.
func (w *Workers) CPU() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t time.Duration
	for _, c := range w.cpu {
		t += c
	}
	return t
}

func (w *Workers) all(req workerRequest) ([]workerReply, error) {
	b, _ := json.Marshal(req)
	b = append(b, '\n')
	reps := make([]workerReply, len(w.procs))
	errs := make([]error, len(w.procs))
	var wg sync.WaitGroup
	for i, p := range w.procs {
		wg.Go(func() {
			if _, err := p.in.Write(b); err != nil {
				errs[i] = err
				return
			}
			errs[i] = p.out.Decode(&reps[i])
			if errs[i] == nil && reps[i].Err != "" {
				errs[i] = errors.New(reps[i].Err)
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	for i, r := range reps {
		if errs[i] == nil {
			w.cpu[i] = time.Duration(r.CPU)
		}
	}
	w.mu.Unlock()
	return reps, errors.Join(errs...)
}

// Connect runs one phase on every worker at once and merges their samples.
func (w *Workers) Connect(ctx context.Context, t Target, cfg PhaseConfig) (*Phase, error) {
	n := len(w.procs)
	req := workerRequest{Op: "connect", Label: cfg.Label, Transport: t.Dialer.Transport, Addr: t.Dialer.Addr,
		Probe: t.Dialer.Probe, Clean: t.Dialer.Clean, Concurrency: max(1, cfg.Concurrency/n), Rate: cfg.Rate / float64(n), Retries: cfg.Retries}
	start := time.Now()
	reps, err := w.all(req)
	if err != nil {
		return nil, fmt.Errorf("bench workers: %w", err)
	}
	p := &Phase{Conns: make([]io.Closer, 0, w.total), Rec: NewRecorder(w.total), Elapsed: time.Since(start)}
	for _, r := range reps {
		fi := 0
		for _, s := range r.Samples {
			smp := Sample{At: time.Duration(s[0]), Latency: time.Duration(s[1]), Failed: s[2] == 1}
			reason := ""
			if smp.Failed && fi < len(r.Reasons) {
				reason = r.Reasons[fi]
				fi++
			}
			p.Rec.Add(smp, reason, r.FirstErr)
		}
		for range r.Connected {
			p.Conns = append(p.Conns, io.NopCloser(nil))
		}
	}
	if cfg.Progress != nil {
		ok, failed := p.Rec.Counts()
		fmt.Fprintf(cfg.Progress, "%-24s %7d/%d ok  %6d failed  %8.0f/s  %6.1fs (%d processes)\n",
			cfg.Label, ok, len(cfg.Devices), failed, float64(ok+failed)/p.Elapsed.Seconds(), p.Elapsed.Seconds(), n)
	}
	p.CloseFunc = func() { _, _ = w.all(workerRequest{Op: "close"}) }
	return p, nil
}

// Close ends the workers.
func (w *Workers) Close() {
	for _, p := range w.procs {
		_ = p.in.Close()
	}
	for _, p := range w.procs {
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
}

func newPool() *x509.CertPool { return x509.NewCertPool() }
