package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the one JSON document a run prints.
type Report struct {
	Workload    string             `json:"workload"`
	Transport   string             `json:"transport"`
	Auth        string             `json:"auth"`
	Devices     int                `json:"devices"`
	Concurrency int                `json:"concurrency"`
	TLS         string             `json:"tls"` // protocol version, server key type, client-certificate mode
	Machine     Machine            `json:"machine"`
	Results     []Result           `json:"results"`
	Ratios      map[string]float64 `json:"ratios,omitempty"`
	Warnings    []string           `json:"warnings,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	Go         string `json:"go"`
	ClientProc int    `json:"client_processes"`
	FileLimit  uint64 `json:"open_file_limit"`
}

// Find returns the result of target name.
func (r *Report) Find(name string) (Result, bool) {
	for _, x := range r.Results {
		if x.Target == name {
			return x, true
		}
	}
	return Result{}, false
}

// Finish computes hubgate's ratios to each baseline and the warnings.
func (r *Report) Finish() {
	hub, ok := r.Find("hubgate")
	r.Ratios = map[string]float64{}
	for _, b := range r.Results {
		if b.Target == "hubgate" || !ok {
			continue
		}
		put := func(name string, h, base float64) {
			if h > 0 && base > 0 {
				r.Ratios[name+"_vs_"+b.Target] = round3(h / base)
			}
		}
		put("server_cpu_per_connect", hub.ServerCPUUsPerConnect, b.ServerCPUUsPerConnect)
		put("connects_per_sec", hub.ConnectsPerSec, b.ConnectsPerSec)
		put("latency_p99", hub.Latency.P99, b.Latency.P99)
		put("server_rss_per_connection", hub.ServerBytesPerConn, b.ServerBytesPerConn)
		put("reconnect_seconds", hub.ReconnectSeconds, b.ReconnectSeconds)
		put("messages_per_server_core_sec", hub.MessagesPerCoreS, b.MessagesPerCoreS)
	}
	if len(r.Ratios) == 0 {
		r.Ratios = nil
	}
	for _, x := range r.Results {
		if x.ClientSaturated {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"%s: the harness used %.2f cores and the server %.2f of %d: the client, not the server, may be the limit (try --procs, --rate)",
				x.Target, x.ClientCPUCores, x.ServerCPUCores, r.Machine.CPUs))
		}
		if x.Failed > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %d of %d attempts failed (first: %s)", x.Target, x.Failed, x.Devices, x.FirstError))
		}
	}
}

// WriteTable prints the human summary.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%s: %d devices, %s, auth %s, concurrency %d; %s; %d CPUs\n",
		r.Workload, r.Devices, r.Transport, r.Auth, r.Concurrency, r.TLS, r.Machine.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "target\tok\tfailed\tconn/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tsrv µs/conn\tsrv cores\tsrv KiB/conn\tclient cores\t"
	switch r.Workload {
	case "storm":
		head += "reconnect s\tpeak RSS MiB\t"
	case "telemetry":
		head += "msg/s\tmsg/core-s\t"
	}
	fmt.Fprintln(tw, head)
	for _, x := range r.Results {
		line := fmt.Sprintf("%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%.1f\t%.2f\t",
			x.Target, x.Connected, x.Failed, x.ConnectsPerSec, x.Latency.P50, x.Latency.P90, x.Latency.P99, x.Latency.Max,
			x.ServerCPUUsPerConnect, x.ServerCPUCores, x.ServerBytesPerConn/1024, x.ClientCPUCores)
		switch r.Workload {
		case "storm":
			line += fmt.Sprintf("%.2f\t%.1f\t", x.ReconnectSeconds, float64(x.ServerPeakRSSBytes)/(1<<20))
		case "telemetry":
			line += fmt.Sprintf("%.0f\t%.0f\t", x.MessagesPerSec, x.MessagesPerCoreS)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, x := range r.Results {
		if len(x.Failures) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(x.Failures)) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, x.Failures[k]))
			}
			fmt.Fprintf(w, "failures %s: %s\n", x.Target, strings.Join(parts, " "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Ratios)) {
		fmt.Fprintf(w, "ratio %s = %.3f\n", k, r.Ratios[k])
	}
	for _, s := range r.Warnings {
		fmt.Fprintln(w, "warning:", s)
	}
}
