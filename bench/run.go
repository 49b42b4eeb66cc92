package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// PhaseConfig is one pass of connects: every device once.
type PhaseConfig struct {
	Label       string // shown on the progress line
	Dialer      *Dialer
	Devices     []Cred
	Concurrency int       // connects in flight; default 64
	Rate        float64   // target connects/s; 0: as fast as possible
	SourceIPs   []string  // local addresses, round robin (ephemeral ports run out near 28k per pair)
	Retries     int       // extra attempts after a failure that is not a refusal (devices retry)
	Progress    io.Writer // live progress line; nil for none
}

// Phase is what one pass left behind: the open connections (nil where the
// device failed) and the recorded attempts.
type Phase struct {
	Conns   []io.Closer
	Rec     *Recorder
	Elapsed time.Duration
	// CloseFunc, when set, closes connections held elsewhere (worker processes).
	CloseFunc func()
}

// Connected counts the open connections.
func (p *Phase) Connected() int {
	n := 0
	for _, c := range p.Conns {
		if c != nil {
			n++
		}
	}
	return n
}

// Close closes every connection, concurrently, and waits.
func (p *Phase) Close() {
	if p.CloseFunc != nil {
		p.CloseFunc()
		p.CloseFunc = nil
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i, c := range p.Conns {
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			_ = c.Close()
			<-sem
		})
		p.Conns[i] = nil
	}
	wg.Wait()
}

// RunPhase connects every device once and returns with the connections open.
func RunPhase(ctx context.Context, cfg PhaseConfig) *Phase {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	n := len(cfg.Devices)
	p := &Phase{Conns: make([]io.Closer, n), Rec: NewRecorder(n)}
	locals := make([]net.Addr, len(cfg.SourceIPs))
	for i, ip := range cfg.SourceIPs {
		locals[i] = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	stop := make(chan struct{})
	var progressDone sync.WaitGroup
	if cfg.Progress != nil {
		progressDone.Go(func() { progress(cfg.Progress, cfg.Label, n, p.Rec, stop) })
	}
	var next atomic.Int64 // next device index
	var wg sync.WaitGroup
	start := time.Now()
	for range min(cfg.Concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if cfg.Rate > 0 { // open-loop pacing: attempt i starts at i/rate
					if d := time.Until(start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				var local net.Addr
				if len(locals) > 0 {
					local = locals[i%len(locals)]
				}
				began := time.Now()
				var c io.Closer
				var err error
				for try := 0; ; try++ {
					c, err = cfg.Dialer.Dial(ctx, local, cfg.Devices[i])
					if err == nil || try >= cfg.Retries || ctx.Err() != nil || isRefusal(err) {
						break
					}
					time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
				}
				p.Rec.Record(began, err)
				p.Conns[i] = c
			}
		})
	}
	wg.Wait()
	p.Elapsed = time.Since(start)
	close(stop)
	progressDone.Wait()
	return p
}

func isRefusal(err error) bool {
	_, ok := err.(*Refusal)
	return ok
}

// progress rewrites one stderr line twice a second: done, failed, rate, elapsed.
func progress(w io.Writer, label string, total int, rec *Recorder, stop <-chan struct{}) {
	// A terminal gets one line rewritten twice a second; a log gets a line
	// every 2 s.
	every, cr, nl := 2*time.Second, "", "\n"
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			every, cr, nl = 500*time.Millisecond, "\r", ""
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	lastN, last := 0, start
	line := func(final bool) {
		ok, failed := rec.Counts()
		now := time.Now()
		rate := float64(ok+failed-lastN) / now.Sub(last).Seconds()
		if final {
			rate = float64(ok+failed) / now.Sub(start).Seconds()
		}
		lastN, last = ok+failed, now
		end := nl
		if final {
			end = "\n"
		}
		fmt.Fprintf(w, "%s%-24s %7d/%d ok  %6d failed  %8.0f/s  %6.1fs%s", cr, label, ok, total, failed, rate, now.Sub(start).Seconds(), end)
	}
	for {
		select {
		case <-t.C:
			line(false)
		case <-stop:
			line(true)
			return
		}
	}
}
