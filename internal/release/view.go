package release

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// Waiting says whether a release can still wait for a gate: it is not over.
func Waiting(obj v1alpha1.Object) bool {
	switch o := obj.(type) {
	case *v1alpha1.CanaryRelease:
		return slices.Contains([]v1alpha1.CanaryPhase{"", v1alpha1.CanaryPending, v1alpha1.CanaryProgressing, v1alpha1.CanaryPaused}, o.Status.Phase)
	case *v1alpha1.Experiment:
		return slices.Contains([]v1alpha1.ExperimentPhase{"", v1alpha1.ExperimentPending, v1alpha1.ExperimentRunning, v1alpha1.ExperimentPaused}, o.Status.Phase)
	}
	return false
}

// GatesWaiting are the gates a release waits for, "Policy: message" each;
// a finished release waits for nothing, whatever its last decisions were.
func GatesWaiting(obj v1alpha1.Object) []string {
	if !Waiting(obj) {
		return nil
	}
	var gates []string
	for _, d := range obj.GetCommonStatus().Decisions {
		if d.Outcome == "Gate" {
			gates = append(gates, fmt.Sprintf("%s: %s", d.Policy, d.Message))
		}
	}
	return gates
}

// DecidedBy says who made a step: a person's action (and who), or a policy.
func DecidedBy(h v1alpha1.ReleaseStep) string {
	switch {
	case h.Action != "" && h.Policy != "":
		return fmt.Sprintf("%s by %s, %s", h.Action, cmp.Or(h.User, "-"), h.Policy)
	case h.Action != "":
		return fmt.Sprintf("%s by %s", h.Action, cmp.Or(h.User, "-"))
	}
	return cmp.Or(h.Policy, "-")
}

// History is a release's whole history, oldest first: the steps of its
// ReleaseHistory pages (any pages: those of other releases are left out),
// then its status's.
func History(obj v1alpha1.Object, pages []v1alpha1.ReleaseHistory) []v1alpha1.ReleaseStep {
	rel, ok := obj.(v1alpha1.Release)
	if !ok {
		return nil
	}
	return v1alpha1.MergeHistory(v1alpha1.PagesOf(rel, pages), rel.GetSteps())
}

// StepFigures renders the metrics a decision saw, one subset after
// another, for people: requests, error rates as percentages, p99 in ms.
func StepFigures(metrics []v1alpha1.StepMetrics) (requests, errorRate, p99 string) {
	var r, e, p []string
	for _, m := range metrics {
		r = append(r, m.Subset+" "+cmp.Or(m.Requests, "-"))
		e = append(e, m.Subset+" "+readable(m.ErrorRate, Percent))
		p = append(p, m.Subset+" "+readable(m.LatencyP99Ms, Millis))
	}
	return cmp.Or(strings.Join(r, ", "), "-"), cmp.Or(strings.Join(e, ", "), "-"), cmp.Or(strings.Join(p, ", "), "-")
}

// readable renders a figure of the history (kept at full precision) with
// format, or "-" when there is none.
func readable(figure string, format func(float64) string) string {
	f, err := strconv.ParseFloat(figure, 64)
	if err != nil {
		return cmp.Or(figure, "-")
	}
	return format(f)
}

// Percent renders a rate such as 0.2016 for people: "20.2%". Messages,
// the CLI and the dashboard read figures this way, as the policies'
// library does (rego/lib/format.rego); machine-readable fields keep full
// precision.
func Percent(rate float64) string { return significant(rate*100) + "%" }

// Millis renders a latency in milliseconds for people: "245ms", "3.62ms".
func Millis(ms float64) string { return significant(ms) + "ms" }

// significant rounds a figure to three significant digits (to a
// thousandth below 1).
func significant(x float64) string {
	scale := 1000.0
	switch a := math.Abs(x); {
	case a >= 100:
		scale = 1
	case a >= 10:
		scale = 10
	case a >= 1:
		scale = 100
	}
	return strconv.FormatFloat(math.Round(x*scale)/scale, 'f', -1, 64)
}

// EventTime is when an Event last happened.
func EventTime(e *eventsv1.Event) time.Time {
	switch {
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.EventTime.Time
}

// Chain names a release's policies in the order they run: its effective
// chain when a level above it adds policies ("FreezeGate (Project shop)"),
// else its own.
func Chain(obj v1alpha1.Object) []string {
	var out []string
	if effective := obj.GetCommonStatus().EffectivePolicies; len(effective) > 0 {
		for _, p := range effective {
			name := p.Name
			if p.From != "" {
				name += " (" + p.From + ")"
			}
			out = append(out, name)
		}
		return out
	}
	for _, p := range obj.GetStanzas().Policies {
		out = append(out, p.Name)
	}
	return out
}
