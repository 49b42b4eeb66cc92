package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50-of-100", hundred, 50, 50 * time.Millisecond},
		{"p90-of-100", hundred, 90, 90 * time.Millisecond},
		{"p99-of-100", hundred, 99, 99 * time.Millisecond},
		{"p100", hundred, 100, 100 * time.Millisecond},
		{"p50-of-4-nearest-rank", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"tiny-p", ms(1, 2, 3), 0.001, time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.in, c.p); got != c.want {
				t.Fatalf("Percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	got := Summarize(ms(9, 1, 5, 3, 7, 2, 4, 6, 8, 10))
	want := Latency{P50: 5, P90: 9, P99: 10, Max: 10}
	if got != want {
		t.Fatalf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Latency{}) {
		t.Fatal("empty summary not zero")
	}
}

func TestTimeline(t *testing.T) {
	s := []Sample{
		{At: 100 * time.Millisecond, Latency: 10 * time.Millisecond},
		{At: 900 * time.Millisecond, Latency: 30 * time.Millisecond},
		{At: 1500 * time.Millisecond, Latency: 20 * time.Millisecond, Failed: true},
	}
	b := Timeline(s, time.Second)
	if len(b) != 2 {
		t.Fatalf("%d buckets, want 2", len(b))
	}
	if b[0].Rate != 2 || b[0].P99 != 30 || b[0].At != 1 || b[1].Failed != 1 || b[1].Rate != 1 {
		t.Fatalf("buckets %+v", b)
	}
	if Timeline(nil, time.Second) != nil {
		t.Fatal("empty timeline not nil")
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder(4)
	r.Record(time.Now(), nil)
	r.Record(time.Now(), &Refusal{Code: "connack_5"})
	r.Record(time.Now(), fmt.Errorf("dial: %w", syscall.ECONNREFUSED))
	ok, failed := r.Counts()
	if ok != 1 || failed != 2 {
		t.Fatalf("counts %d/%d", ok, failed)
	}
	f, first := r.Failures()
	if f["refused_connack_5"] != 1 || f["conn_refused"] != 1 || first != "refused: connack_5" {
		t.Fatalf("failures %v %q", f, first)
	}
}

func TestReason(t *testing.T) {
	cases := map[string]error{
		"timeout":           os.ErrDeadlineExceeded,
		"conn_reset":        fmt.Errorf("read: %w", syscall.ECONNRESET),
		"no_ephemeral_port": syscall.EADDRNOTAVAIL,
		"too_many_files":    syscall.EMFILE,
		"eof":               fmt.Errorf("connack: %w", io.ErrUnexpectedEOF),
		"tls":               errors.New("remote error: tls: bad certificate"),
		"other":             errors.New("something"),
		"refused_http_400":  &Refusal{Code: "http_400"},
	}
	for want, err := range cases {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 150, stime 50 ticks; the command name holds a space and a ')'.
	line := "1234 (hub gate) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 8 0 100 1000 200"
	got, err := parseStatCPU(line)
	if err != nil || got != 2*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 2s", got, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Fatal("garbage parsed")
	}
	self, err := ProcCPU(os.Getpid())
	if err != nil || self < 0 {
		t.Fatalf("ProcCPU(self) = %v, %v", self, err)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss == 0 {
		t.Fatalf("RSS(self) = %d, %v", rss, err)
	}
}

func TestSourceAddrs(t *testing.T) {
	a := SourceAddrs(256)
	if a[0] != "127.0.1.1" || a[253] != "127.0.1.254" || a[254] != "127.0.2.1" || len(a) != 256 {
		t.Fatalf("SourceAddrs: %v … %v", a[:2], a[252:])
	}
}

func sampleReport() *Report {
	r := &Report{Workload: "connect", Transport: "mqtt", Auth: "sas", Devices: 10, TLS: "TLS 1.3 <test> & co",
		Machine: Machine{CPUs: 2}}
	for _, x := range []struct {
		name string
		cpu  float64
	}{{"tls", 500}, {"hubgate", 540}, {"mochi", 600}} {
		r.Results = append(r.Results, Result{Target: x.name, Devices: 10, Connected: 10, ServerCPUUsPerConnect: x.cpu,
			ConnectsPerSec: 100, Latency: Latency{P50: 1, P99: 4}, Failures: map[string]int{},
			Timeline: []Bucket{{At: 0.25, Rate: 40, P50: 1, P99: 3}, {At: 0.5, Rate: 0, P50: 0, P99: 0}, {At: 0.75, Rate: 80, P50: 2, P99: 4}}})
	}
	return r
}

func TestReportFinishAndJSON(t *testing.T) {
	r := sampleReport()
	r.Results[0].ClientCPUCores, r.Results[0].ServerCPUCores = 1.2, 0.6
	r.Results[0].ClientSaturated = Saturated(1.2, 0.6, 2)
	r.Finish()
	if got := r.Ratios["server_cpu_per_connect_vs_tls"]; got != 1.08 {
		t.Errorf("ratio vs tls = %v, want 1.08", got)
	}
	if got := r.Ratios["server_cpu_per_connect_vs_mochi"]; got != 0.9 {
		t.Errorf("ratio vs mochi = %v, want 0.9", got)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "harness") {
		t.Errorf("warnings %q", r.Warnings)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, res := range doc.Results {
		for _, k := range []string{"target", "server_cpu_us_per_connect", "connects_per_sec", "latency", "failures_by_reason", "client_cpu_cores"} {
			if _, ok := res[k]; !ok {
				t.Errorf("result lacks %q: %v", k, res)
			}
		}
	}
	var tab bytes.Buffer
	r.WriteTable(&tab)
	for _, want := range []string{"hubgate", "ratio server_cpu_per_connect_vs_tls = 1.080", "warning:"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

func TestSaturated(t *testing.T) {
	if !Saturated(1.1, 0.7, 2) || Saturated(0.5, 1.2, 2) || Saturated(0.5, 0.4, 2) {
		t.Fatal("Saturated wrong")
	}
}

func TestSVG(t *testing.T) {
	svg := SVG(sampleReport())
	d := xml.NewDecoder(bytes.NewReader(svg))
	polylines := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 9 { // rate, p50, p99 for three targets
		t.Fatalf("%d polylines, want 9", polylines)
	}
	if !bytes.Contains(svg, []byte("&lt;test&gt; &amp; co")) {
		t.Fatal("text not escaped")
	}
	empty := SVG(&Report{Workload: "connect"})
	if err := xml.Unmarshal(empty, new(struct{})); err != nil {
		t.Fatalf("empty report SVG: %v", err)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 3: 5, 7: 10, 120: 200, 999: 1000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestEncodePublish(t *testing.T) {
	for _, c := range []struct {
		name string
		qos  byte
		size int
	}{{"qos0/small", 0, 10}, {"qos1/small", 1, 10}, {"qos1/two-byte-length", 1, 300}, {"qos1/three-byte-length", 1, 20000}} {
		t.Run(c.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte{'x'}, c.size)
			b := encodePublish(nil, "devices/d1/messages/events/", payload, c.qos, 77)
			var fh packets.FixedHeader
			if err := fh.Decode(b[0]); err != nil {
				t.Fatal(err)
			}
			rem, n, err := packets.DecodeLength(bytes.NewReader(b[1:]))
			if err != nil {
				t.Fatal(err)
			}
			fh.Remaining = rem
			pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
			if err := pk.PublishDecode(b[1+n:]); err != nil {
				t.Fatal(err)
			}
			if pk.TopicName != "devices/d1/messages/events/" || !bytes.Equal(pk.Payload, payload) || pk.FixedHeader.Qos != c.qos {
				t.Fatalf("decoded %q qos %d, %d bytes", pk.TopicName, pk.FixedHeader.Qos, len(pk.Payload))
			}
			if c.qos == 1 && pk.PacketID != 77 {
				t.Fatalf("packet id %d", pk.PacketID)
			}
		})
	}
}
