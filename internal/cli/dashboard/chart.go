package dashboard

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
)

// The chart's frame, in SVG user units.
const (
	chartWidth  = 760
	plotLeft    = 56
	plotRight   = 640
	weightTop   = 20
	weightBase  = 176
	errorTop    = 204
	errorBase   = 264
	latencyTop  = 292
	latencyBase = 352
	chartHeight = 376
)

// palette colours the subsets: the baseline (first) is slate, the canary
// (last of a CanaryRelease) orange; an Experiment's subsets take them in
// turn.
var palette = []string{"#5c6f8a", "#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9", "#f59f00", "#0c8599", "#c2255c"}

// Chart draws a release's history as SVG, server-side: the weights of
// each subset stepping over time with a marker per step (its <title>
// says who decided it and why), the served split the mesh last
// reported, and the error rate and p99 latency each decision saw, per
// subset. data-points on the root is the number of steps drawn.
func Chart(history []v1alpha1.ReleaseStep, subsets []string, served *v1alpha1.ServedSplit, now time.Time) string {
	subsets = slices.Clone(subsets)
	for _, h := range history {
		for _, name := range sortedKeys(h.Weights) {
			if !slices.Contains(subsets, name) {
				subsets = append(subsets, name)
			}
		}
	}
	color := func(subset string) string {
		return palette[max(slices.Index(subsets, subset), 0)%len(palette)]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" class="chart" data-points="%d" role="img" aria-label="%s">`,
		chartWidth, chartHeight, len(history), esc(fmt.Sprintf("weights over %d steps", len(history))))
	frame(&b, weightTop, weightBase, "weight %", "100", "0")
	if len(history) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no steps yet</text></svg>`, (plotLeft+plotRight)/2-40, (weightTop+weightBase)/2)
		return b.String()
	}
	t0 := history[0].Time.Time
	t1 := history[len(history)-1].Time.Time
	span := max(t1.Sub(t0), 10*time.Second)
	t1 = t0.Add(span + span/10)
	x := func(t time.Time) float64 {
		return plotLeft + float64(t.Sub(t0))/float64(t1.Sub(t0))*(plotRight-plotLeft)
	}
	yIn := func(top, base int, v, top100 float64) float64 {
		if top100 <= 0 {
			return float64(base)
		}
		return float64(base) - math.Min(v/top100, 1)*float64(base-top)
	}
	// The weights: a step line per subset, held to the right edge.
	for _, subset := range subsets {
		var pts []string
		prev := math.NaN()
		for _, h := range history {
			w, ok := h.Weights[subset]
			if !ok {
				continue
			}
			y := yIn(weightTop, weightBase, float64(w), 100)
			if !math.IsNaN(prev) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(h.Time.Time), prev))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(h.Time.Time), y))
			prev = y
		}
		if len(pts) > 0 {
			pts = append(pts, fmt.Sprintf("%d,%.1f", plotRight, prev))
			fmt.Fprintf(&b, `<polyline class="weight" data-subset="%s" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`, esc(subset), color(subset), strings.Join(pts, " "))
		}
	}
	// What the mesh last reported serving, beside the weight it was
	// measured at.
	if served != nil && len(served.Percent) > 0 {
		canary := subsets[len(subsets)-1]
		if p, ok := served.Percent[canary]; ok {
			y := yIn(weightTop, weightBase, float64(p), 100)
			fmt.Fprintf(&b, `<line class="served" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="5 4" stroke-width="1.5"><title>%s</title></line>`,
				plotLeft, plotRight, y, y, color(canary), esc(fmt.Sprintf("the mesh served %s (%d requests) when the weights were %s", served.Summary, served.Requests, v1alpha1.SplitString(served.Weights))))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="label" fill="%s">served %d%%</text>`, plotRight+6, y+4, color(canary), p)
		}
	}
	// A marker per step on the canary's line (the last subset's), with
	// who decided it and why.
	marked := subsets[len(subsets)-1]
	for i, h := range history {
		w := h.Weights[marked]
		fill := color(marked)
		switch {
		case h.Action != "":
			fill = "#7048e8"
		case h.Phase == string(v1alpha1.CanaryRolledBack) || h.Phase == string(v1alpha1.CanaryAborted) || h.Phase == string(v1alpha1.CanaryFailed):
			fill = "#e03131"
		case h.Phase == string(v1alpha1.CanaryPromoted) || h.Phase == string(v1alpha1.ExperimentConcluded):
			fill = "#2f9e44"
		}
		title := fmt.Sprintf("%s  %s  %s\n%s", h.Time.UTC().Format(time.TimeOnly), v1alpha1.SplitString(h.Weights), h.Phase, release.DecidedBy(h))
		if h.Message != "" {
			title += ": " + h.Message
		}
		fmt.Fprintf(&b, `<circle class="step" data-step="%d" cx="%.1f" cy="%.1f" r="4.5" fill="%s" stroke="#fff" stroke-width="1.5"><title>%s</title></circle>`,
			i, x(h.Time.Time), yIn(weightTop, weightBase, float64(w), 100), fill, esc(title))
	}
	// The legend, at the bottom of the weights, clear of the served label.
	for i, subset := range subsets {
		y := weightBase - 4 - (len(subsets)-1-i)*18
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d" class="label">%s</text>`, plotRight+46, y-4, color(subset), plotRight+62, y, esc(subset))
	}
	// The figures each decision saw.
	metricPanel(&b, history, subsets, color, x, errorTop, errorBase, "error rate", 0.01, func(m v1alpha1.StepMetrics) string { return m.ErrorRate }, release.Percent)
	metricPanel(&b, history, subsets, color, x, latencyTop, latencyBase, "p99 latency", 10, func(m v1alpha1.StepMetrics) string { return m.LatencyP99Ms }, release.Millis)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
		plotLeft, chartHeight-4, t0.UTC().Format(time.TimeOnly), plotRight, chartHeight-4, history[len(history)-1].Time.UTC().Format(time.TimeOnly))
	b.WriteString(`</svg>`)
	return b.String()
}

// metricPanel draws one figure of the history, a line per subset, or
// says that the policies recorded none. least is the lowest top the
// panel's scale may have.
func metricPanel(b *strings.Builder, history []v1alpha1.ReleaseStep, subsets []string, color func(string) string, x func(time.Time) float64,
	top, base int, name string, least float64, value func(v1alpha1.StepMetrics) string, format func(float64) string) {
	type point struct {
		t time.Time
		v float64
	}
	series := map[string][]point{}
	highest := 0.0
	for _, h := range history {
		for _, m := range h.Metrics {
			v, err := strconv.ParseFloat(value(m), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			series[m.Subset] = append(series[m.Subset], point{h.Time.Time, v})
			highest = math.Max(highest, v)
		}
	}
	if len(series) == 0 {
		frame(b, top, base, name, "", "")
		fmt.Fprintf(b, `<text x="%d" y="%d" class="empty">no %s recorded by this release's policies</text>`, plotLeft+12, (top+base)/2+4, esc(name))
		return
	}
	// The panel's top: a little above the highest figure, and never so
	// low that noise around zero fills it.
	highest = math.Max(highest*1.15, least)
	frame(b, top, base, name, format(highest), format(0))
	for _, subset := range subsets {
		pts := series[subset]
		if len(pts) == 0 {
			continue
		}
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p.t), float64(base)-p.v/highest*float64(base-top)))
		}
		fmt.Fprintf(b, `<polyline class="metric" data-metric="%s" data-subset="%s" fill="none" stroke="%s" stroke-width="1.8" points="%s"><title>%s</title></polyline>`,
			esc(name), esc(subset), color(subset), strings.Join(coords, " "), esc(fmt.Sprintf("%s of %s, last %s", name, subset, format(pts[len(pts)-1].v))))
	}
}

// frame draws a panel's box, its name and the values of its top and
// bottom lines.
func frame(b *strings.Builder, top, base int, name, high, low string) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#dee2e6"/>`, plotLeft, top, plotRight-plotLeft, base-top)
	fmt.Fprintf(b, `<text x="%d" y="%d" class="axis" text-anchor="end">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`, plotLeft-6, top+10, esc(high), plotLeft-6, base, esc(low))
	// The name above the box, clear of the lines.
	fmt.Fprintf(b, `<text x="%d" y="%d" class="panel">%s</text>`, plotLeft, top-5, esc(name))
}

func esc(s string) string { return html.EscapeString(s) }

func sortedKeys(m map[string]int32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
