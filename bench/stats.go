package bench

import (
	"errors"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize sorts d in place and returns its summary.
func Summarize(d []time.Duration) Latency {
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return math.Round(float64(x)/1e3) / 1e3 }
	if len(d) == 0 {
		return Latency{}
	}
	return Latency{
		P50: ms(Percentile(d, 50)), P90: ms(Percentile(d, 90)),
		P99: ms(Percentile(d, 99)), Max: ms(d[len(d)-1]),
	}
}

// Sample is one finished attempt: when it ended, relative to the start of
// the phase, how long it took, and whether it failed.
type Sample struct {
	At      time.Duration
	Latency time.Duration
	Failed  bool
}

// Recorder collects samples and failure reasons from many goroutines.
type Recorder struct {
	start time.Time

	mu       sync.Mutex // guards samples, reasons, firstErr
	samples  []Sample
	reasons  map[string]int
	firstErr string
}

// NewRecorder starts a recorder at now.
func NewRecorder(capacity int) *Recorder {
	return &Recorder{start: time.Now(), samples: make([]Sample, 0, capacity), reasons: map[string]int{}}
}

// Record notes one attempt that began at began and ended now with err.
func (r *Recorder) Record(began time.Time, err error) {
	now := time.Now()
	s := Sample{At: now.Sub(r.start), Latency: now.Sub(began), Failed: err != nil}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	if err != nil {
		r.reasons[Reason(err)]++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
	}
	r.mu.Unlock()
}

// Add records a sample taken elsewhere (a worker process) with its
// failure reason and error text.
func (r *Recorder) Add(s Sample, reason, errText string) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	if s.Failed {
		r.reasons[reason]++
		if r.firstErr == "" {
			r.firstErr = errText
		}
	}
	r.mu.Unlock()
}

// Counts returns how many attempts succeeded and failed so far.
func (r *Recorder) Counts() (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.samples {
		if s.Failed {
			failed++
		}
	}
	return len(r.samples) - failed, failed
}

// Samples returns a copy of the samples so far.
func (r *Recorder) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.samples)
}

// Failures returns the failure counts by reason and the first error text.
func (r *Recorder) Failures() (map[string]int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.reasons))
	for k, v := range r.reasons {
		m[k] = v
	}
	return m, r.firstErr
}

// Refusal is a protocol-level "no" from the server (MQTT CONNACK code, AMQP
// condition); Reason reports it as its own failure class.
type Refusal struct{ Code string }

func (e *Refusal) Error() string { return "refused: " + e.Code }

// Reason classifies a failed attempt for the failures-by-reason table.
func Reason(err error) string {
	var rf *Refusal
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &rf):
		return "refused_" + rf.Code
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_ephemeral_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "EOF"):
		return "eof"
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		return "tls"
	}
	return "other"
}

// Bucket is one second (or one Step) of a phase for the chart.
type Bucket struct {
	At     float64 `json:"t_s"`    // end of the bucket, seconds from phase start
	Rate   float64 `json:"rate"`   // completed attempts per second
	Failed int     `json:"failed"` // failures in the bucket
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
}

// Timeline buckets samples by completion time into steps of step.
func Timeline(samples []Sample, step time.Duration) []Bucket {
	if len(samples) == 0 || step <= 0 {
		return nil
	}
	var end time.Duration
	for _, s := range samples {
		end = max(end, s.At)
	}
	n := int(end/step) + 1
	lat := make([][]time.Duration, n)
	fail := make([]int, n)
	for _, s := range samples {
		i := int(s.At / step)
		lat[i] = append(lat[i], s.Latency)
		if s.Failed {
			fail[i]++
		}
	}
	out := make([]Bucket, n)
	for i := range n {
		l := Summarize(lat[i])
		out[i] = Bucket{
			At:   (time.Duration(i+1) * step).Seconds(),
			Rate: float64(len(lat[i])) / step.Seconds(), Failed: fail[i],
			P50: l.P50, P99: l.P99,
		}
	}
	return out
}
