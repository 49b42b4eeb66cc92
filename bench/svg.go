package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// SVG draws the report's timelines: completions per second (top) and p50
// (dashed) and p99 (solid) latency (bottom) over the seconds of each
// target's measured phase, one colour per target. No dependency: it is a
// few polylines and labels.
func SVG(r *Report) []byte {
	const (
		w, h        = 900, 620
		left, right = 70, 20
		panelH      = 230
		top1, top2  = 50, 340
	)
	colors := map[string]string{"hubgate": "#d62728", "tls": "#1f77b4", "mochi": "#2ca02c"}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left,
		html.EscapeString(fmt.Sprintf("hubgate bench %s: %d devices, %s, auth %s", r.Workload, r.Devices, r.Transport, r.Auth)))
	fmt.Fprintf(&b, `<text x="%d" y="36" fill="#555">%s</text>`+"\n", left, html.EscapeString(r.TLS))

	var maxT, maxRate, maxLat float64
	for _, x := range r.Results {
		for _, k := range x.Timeline {
			maxT = math.Max(maxT, k.At)
			maxRate = math.Max(maxRate, k.Rate)
			maxLat = math.Max(maxLat, k.P99)
		}
	}
	maxT, maxRate, maxLat = niceCeil(maxT), niceCeil(maxRate), niceCeil(maxLat)
	plotW := float64(w - left - right)
	panel := func(top int, title string, maxY float64, unit string) {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, top-6, html.EscapeString(title))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, top, plotW, panelH)
		for i := 0; i <= 4; i++ {
			y := float64(top+panelH) - float64(i)/4*panelH
			fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, left, float64(left)+plotW, y, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y+4, tick(maxY*float64(i)/4)+unit)
			x := float64(left) + float64(i)/4*plotW
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%ss</text>`+"\n", x, top+panelH+14, tick(maxT*float64(i)/4))
		}
	}
	panel(top1, "completions per second", maxRate, "")
	panel(top2, "latency p50 (dashed) and p99 (solid)", maxLat, "ms")
	xy := func(top int, maxY, t, v float64) string {
		x := float64(left)
		if maxT > 0 {
			x += t / maxT * plotW
		}
		y := float64(top + panelH)
		if maxY > 0 {
			y -= v / maxY * panelH
		}
		return fmt.Sprintf("%.1f,%.1f ", x, y)
	}
	for i, x := range r.Results {
		c, ok := colors[x.Target]
		if !ok {
			c = "#555"
		}
		var rate, p50, p99 bytes.Buffer
		for _, k := range x.Timeline {
			rate.WriteString(xy(top1, maxRate, k.At, k.Rate))
			p50.WriteString(xy(top2, maxLat, k.At, k.P50))
			p99.WriteString(xy(top2, maxLat, k.At, k.P99))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, rate.String())
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1" stroke-dasharray="4 3" points="%s"/>`+"\n", c, p50.String())
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", c, p99.String())
		ly := top1 + 16 + 16*i
		fmt.Fprintf(&b, `<rect x="%.0f" y="%d" width="12" height="4" fill="%s"/><text x="%.0f" y="%d">%s</text>`+"\n",
			float64(left)+plotW-190, ly-4, c, float64(left)+plotW-172, ly,
			html.EscapeString(fmt.Sprintf("%s  %.0f/s  p99 %.1f ms", x.Target, x.ConnectsPerSec+x.MessagesPerSec, x.Latency.P99)))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
