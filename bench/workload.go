package bench

import (
	"context"
	"io"
	"math"
	"runtime"
	"sync"
	"time"
)

// Target is one server under test: hubgate or a baseline.
type Target struct {
	Name   string // "hubgate", "tls", "mochi"
	PID    int    // server process for CPU and RSS; 0 when not local
	Dialer *Dialer
}

// Config is what every workload shares.
type Config struct {
	Devices     []Cred
	Concurrency int
	Rate        float64 // connects/s; 0: as fast as possible
	SourceIPs   []string
	Warm        bool          // connect: one unmeasured pass first (fills the registry cache)
	Retries     int           // connect attempts beyond the first, for non-refusals
	Step        time.Duration // timeline bucket; default 250 ms
	Progress    io.Writer
	// External, when set, runs each phase in worker processes instead of
	// here (load split across processes); it returns their samples.
	External PhaseRunner
}

// PhaseRunner runs connect phases somewhere else (worker processes).
type PhaseRunner interface {
	// Connect runs one pass for target and returns with the connections open.
	Connect(ctx context.Context, t Target, cfg PhaseConfig) (*Phase, error)
}

// Result is one target's figures. Fields of other workloads stay empty.
type Result struct {
	Target     string         `json:"target"`
	Devices    int            `json:"devices"`
	Connected  int            `json:"connected"`
	Failed     int            `json:"failed"`
	Failures   map[string]int `json:"failures_by_reason"`
	FirstError string         `json:"first_error,omitempty"`
	Seconds    float64        `json:"seconds"`

	ConnectsPerSec        float64 `json:"connects_per_sec"`
	Latency               Latency `json:"latency"`
	ServerCPUUsPerConnect float64 `json:"server_cpu_us_per_connect"`
	ServerCPUCores        float64 `json:"server_cpu_cores"`                // server CPU seconds per wall second during the phase
	ServerRSSBytes        uint64  `json:"server_rss_bytes,omitempty"`      // with every connection open
	ServerBytesPerConn    float64 `json:"server_rss_per_connection_bytes"` // (RSS open - RSS before) / connected
	ServerPeakRSSBytes    uint64  `json:"server_peak_rss_bytes,omitempty"`
	ClientCPUCores        float64 `json:"client_cpu_cores"`
	ClientSaturated       bool    `json:"client_saturated"`

	// storm
	ReconnectSeconds float64 `json:"reconnect_seconds,omitempty"` // from the drop to the last device back
	Refused          int     `json:"refused,omitempty"`           // protocol refusals during the storm: all wrong

	// telemetry
	Messages          int     `json:"messages,omitempty"`
	MessagesPerSec    float64 `json:"messages_per_sec,omitempty"`
	MessagesPerCoreS  float64 `json:"messages_per_server_core_sec,omitempty"` // messages / server CPU seconds
	ServerCPUUsPerMsg float64 `json:"server_cpu_us_per_message,omitempty"`

	Timeline []Bucket `json:"timeline,omitempty"`
}

// meter reads server and client CPU around a phase.
type meter struct {
	pid             int
	wall            time.Time
	server, self    time.Duration
	serverOK        bool
	rssBefore       uint64
	externalSelfCPU func() time.Duration
}

func startMeter(pid int, external PhaseRunner) *meter {
	m := &meter{pid: pid, wall: time.Now(), self: SelfCPU()}
	if ec, ok := external.(interface{ CPU() time.Duration }); ok {
		m.externalSelfCPU = ec.CPU
		m.self += ec.CPU()
	}
	if pid > 0 {
		var err error
		m.server, err = ProcCPU(pid)
		m.serverOK = err == nil
		m.rssBefore, _ = RSS(pid)
	}
	return m
}

// stop returns the server CPU and the client CPU used since start, and the wall time.
func (m *meter) stop() (server, client, wall time.Duration) {
	wall = time.Since(m.wall)
	client = SelfCPU() - m.self
	if m.externalSelfCPU != nil {
		client += m.externalSelfCPU()
	}
	if m.serverOK {
		if s, err := ProcCPU(m.pid); err == nil {
			server = s - m.server
		}
	}
	return server, client, wall
}

func (c *Config) phase(label string, d *Dialer) PhaseConfig {
	return PhaseConfig{
		Label: label, Dialer: d, Devices: c.Devices, Concurrency: c.Concurrency, Rate: c.Rate,
		SourceIPs: c.SourceIPs, Retries: c.Retries, Progress: c.Progress,
	}
}

func (c *Config) run(ctx context.Context, t Target, label string) (*Phase, error) {
	pc := c.phase(t.Name+" "+label, t.Dialer)
	if c.External != nil {
		return c.External.Connect(ctx, t, pc)
	}
	return RunPhase(ctx, pc), nil
}

// Connect is the connect workload against one target: an optional warm
// pass, then every device connects once while the server's CPU is metered.
// The connections stay open until the figures are read, then close.
func Connect(ctx context.Context, t Target, cfg Config) (Result, error) {
	if cfg.Warm {
		p, err := cfg.run(ctx, t, "warm")
		if err != nil {
			return Result{}, err
		}
		p.Close()
		settle(t.PID)
	}
	m := startMeter(t.PID, cfg.External)
	p, err := cfg.run(ctx, t, "connect")
	if err != nil {
		return Result{}, err
	}
	server, client, wall := m.stop()
	res := summarize(t, cfg, p, server, client, p.Elapsed)
	_ = wall
	if t.PID > 0 {
		res.ServerRSSBytes, _ = RSS(t.PID)
		if res.Connected > 0 {
			res.ServerBytesPerConn = float64(int64(res.ServerRSSBytes)-int64(m.rssBefore)) / float64(res.Connected)
		}
	}
	p.Close()
	settle(t.PID)
	return res, nil
}

// Hold connects every device and keeps them idle; the figure is the server's
// resident memory per connection once it has settled.
func Hold(ctx context.Context, t Target, cfg Config, linger time.Duration) (Result, error) {
	settle(t.PID)
	m := startMeter(t.PID, cfg.External)
	p, err := cfg.run(ctx, t, "hold")
	if err != nil {
		return Result{}, err
	}
	server, client, _ := m.stop()
	res := summarize(t, cfg, p, server, client, p.Elapsed)
	if t.PID > 0 {
		settle(t.PID)
		res.ServerRSSBytes, _ = RSS(t.PID)
		res.ServerPeakRSSBytes, _ = PeakRSS(t.PID)
		if res.Connected > 0 {
			res.ServerBytesPerConn = float64(int64(res.ServerRSSBytes)-int64(m.rssBefore)) / float64(res.Connected)
		}
	}
	if linger > 0 {
		select {
		case <-time.After(linger):
		case <-ctx.Done():
		}
	}
	p.Close()
	settle(t.PID)
	return res, nil
}

// Storm connects every device, drops every connection at once (an outage as
// the devices see it) and has them all reconnect at once, retrying as
// devices do. The figures are the time until the last one is back, the
// refusals (none is right) and the server's peak memory.
func Storm(ctx context.Context, t Target, cfg Config) (Result, error) {
	first, err := cfg.run(ctx, t, "connect")
	if err != nil {
		return Result{}, err
	}
	settle(t.PID)
	var rss0 uint64
	if t.PID > 0 {
		rss0, _ = RSS(t.PID)
	}
	stopPeak, peak := watchPeak(t.PID)
	first.Close()
	storm := cfg
	storm.Concurrency = len(cfg.Devices) // everyone at once
	if storm.Retries == 0 {
		storm.Retries = 10
	}
	m := startMeter(t.PID, cfg.External)
	p, err := storm.run(ctx, t, "storm")
	if err != nil {
		return Result{}, err
	}
	server, client, _ := m.stop()
	stopPeak()
	res := summarize(t, storm, p, server, client, p.Elapsed)
	res.ReconnectSeconds = p.Elapsed.Seconds()
	for k, v := range res.Failures {
		if len(k) > 8 && k[:8] == "refused_" {
			res.Refused += v
		}
	}
	res.ServerPeakRSSBytes = *peak
	res.ServerRSSBytes = rss0
	if res.Connected > 0 && t.PID > 0 {
		res.ServerBytesPerConn = float64(rss0) / float64(res.Connected)
	}
	p.Close()
	settle(t.PID)
	return res, nil
}

// watchPeak samples the RSS of pid every 20 ms until stopped.
func watchPeak(pid int) (stop func(), peak *uint64) {
	peak = new(uint64)
	if pid <= 0 {
		return func() {}, peak
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r, err := RSS(pid); err == nil && r > *peak {
				*peak = r
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }, peak
}

// settle waits until the server's CPU has been quiet for 300 ms (closing
// connections costs CPU too, and must not count in the next phase), at most 5 s.
func settle(pid int) {
	if pid <= 0 {
		time.Sleep(200 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	last, _ := ProcCPU(pid)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		now, err := ProcCPU(pid)
		if err != nil || now-last <= 10*time.Millisecond {
			return
		}
		last = now
	}
}

func summarize(t Target, cfg Config, p *Phase, server, client, elapsed time.Duration) Result {
	samples := p.Rec.Samples()
	var lat []time.Duration
	for _, s := range samples {
		if !s.Failed {
			lat = append(lat, s.Latency)
		}
	}
	fails, first := p.Rec.Failures()
	res := Result{
		Target: t.Name, Devices: len(cfg.Devices), Connected: p.Connected(), Failures: fails, FirstError: first,
		Seconds: round3(elapsed.Seconds()), Latency: Summarize(lat),
	}
	res.Failed = len(samples) - len(lat)
	step := cfg.Step
	if step == 0 {
		step = 250 * time.Millisecond
	}
	res.Timeline = Timeline(samples, step)
	if elapsed > 0 {
		res.ConnectsPerSec = round3(float64(len(lat)) / elapsed.Seconds())
		res.ServerCPUCores = round3(server.Seconds() / elapsed.Seconds())
		res.ClientCPUCores = round3(client.Seconds() / elapsed.Seconds())
	}
	if len(lat) > 0 && t.PID > 0 {
		res.ServerCPUUsPerConnect = round3(float64(server.Microseconds()) / float64(len(lat)))
	}
	res.ClientSaturated = Saturated(res.ClientCPUCores, res.ServerCPUCores, runtime.NumCPU())
	return res
}

// Saturated reports whether the harness, not the server, is the limit: the
// machine is (nearly) busy and the client uses at least as much as the server.
func Saturated(client, server float64, cpus int) bool {
	return client+server >= 0.85*float64(cpus) && client >= server
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
