package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/policies"
)

// Reasons of the TrafficShifted condition.
const (
	ReasonServedMatches   = "Matched"
	ReasonServedMismatch  = "Mismatch"
	ReasonServedMeasuring = "Measuring"
)

// servedParameters are the CanaryRelease executor's parameters about the
// split the mesh serves (defaulted by its schema).
type servedParameters struct {
	ServedWindow    string `json:"servedWindow"`
	ServedTolerance int32  `json:"servedTolerance"`
	MeshGracePeriod string `json:"meshGracePeriod"`
}

// observeServed measures the split the mesh serves once the last step has
// had the mesh's grace period and a whole served window to show, records
// it beside the weights it was measured for, and says in TrafficShifted
// whether the two agree. Until then the stored measurement stays; without
// traffic it says "no requests" and gives no verdict. A release that holds
// writes nothing new. It returns the measurement the policies see as
// input.observed.served.
func (s *scope) observeServed(ctx context.Context, t *trafficTarget, c *v1alpha1.CanaryRelease, weights map[string]int32) map[string]any {
	if s.metrics == nil || len(weights) == 0 {
		return servedInput(c.Status.Served, 0)
	}
	p, window, grace := s.servedParameters()
	if due := changedAt(c).Add(grace + window); s.now.Before(due) {
		// The window still holds requests from before the step.
		s.requeueAfter(due.Sub(s.now))
		return servedInput(c.Status.Served, p.ServedTolerance)
	}
	subsets := make([]string, 0, len(weights))
	for subset := range weights {
		subsets = append(subsets, subset)
	}
	counts, err := s.metrics.Requests(ctx, policies.MetricsQuery{
		Namespace: t.placement.namespace, Service: t.destination.Name, Subsets: subsets, Window: window, Time: s.now,
	})
	total := 0.0
	for _, n := range counts {
		total += n
	}
	if err != nil {
		// Unknown: MetricsAvailable says why.
		return servedInput(c.Status.Served, p.ServedTolerance)
	}
	stored := c.Status.Served
	if total < 1 {
		// Nothing to compare: said once per split, and no verdict.
		if stored == nil || !maps.Equal(stored.Weights, weights) {
			c.Status.Served = &v1alpha1.ServedSplit{Weights: maps.Clone(weights), Summary: "no requests"}
		}
		return servedInput(c.Status.Served, p.ServedTolerance)
	}
	measured := &v1alpha1.ServedSplit{Percent: percentages(counts, sortedKeys(weights), total), Requests: int64(math.Round(total)), Weights: maps.Clone(weights)}
	measured.Summary = v1alpha1.SplitString(measured.Percent)
	// A new measurement replaces the stored one after a step, or when the
	// verdict changes; otherwise counting noise would write each run.
	if stored == nil || !maps.Equal(stored.Weights, weights) || matches(stored, p.ServedTolerance) != matches(measured, p.ServedTolerance) {
		c.Status.Served = measured
		stored = measured
	}
	if matches(stored, p.ServedTolerance) {
		s.condition(v1alpha1.ConditionTrafficShifted, true, ReasonServedMatches, fmt.Sprintf(
			"the mesh serves %s (%d requests over %s), within %d points of the weights %s",
			stored.Summary, stored.Requests, window, p.ServedTolerance, v1alpha1.SplitString(stored.Weights)))
	} else {
		s.condition(v1alpha1.ConditionTrafficShifted, false, ReasonServedMismatch, fmt.Sprintf(
			"the mesh serves %s (%d requests over %s) while the weights have been %s for more than %s: the mesh is not doing what was asked; check istiod's push status and the workloads' proxies",
			stored.Summary, stored.Requests, window, v1alpha1.SplitString(stored.Weights), grace))
	}
	return servedInput(stored, p.ServedTolerance)
}

// percentages splits 100 points between subsets in proportion to their
// counts, by largest remainder, so that they sum to 100.
func percentages(counts map[string]float64, subsets []string, total float64) map[string]int32 {
	out := make(map[string]int32, len(subsets))
	left := int32(100)
	for _, s := range subsets {
		out[s] = int32(math.Floor(100 * counts[s] / total))
		left -= out[s]
	}
	byRemainder := slices.Clone(subsets)
	slices.SortStableFunc(byRemainder, func(a, b string) int {
		ra, rb := 100*counts[a]/total-float64(out[a]), 100*counts[b]/total-float64(out[b])
		return cmp.Compare(rb, ra)
	})
	for i := 0; left > 0 && len(byRemainder) > 0; i, left = i+1, left-1 {
		out[byRemainder[i%len(byRemainder)]]++
	}
	return out
}

// servedParameters are the executor's served-split parameters, with the
// served window and the mesh's grace period parsed.
func (s *scope) servedParameters() (p servedParameters, window, grace time.Duration) {
	_ = fromMap(s.params, &p)
	window, err := time.ParseDuration(p.ServedWindow)
	if err != nil || window <= 0 {
		window = 30 * time.Second
	}
	grace, err = time.ParseDuration(p.MeshGracePeriod)
	if err != nil || grace < 0 {
		grace = 10 * time.Second
	}
	return p, window, grace
}

// stepped forgets the served split of the weights a step replaced and asks
// for the run that measures the new one, once the mesh has had its grace
// period and a whole window has passed.
func (s *scope) stepped(c *v1alpha1.CanaryRelease) {
	c.Status.Served = nil
	if s.metrics != nil {
		_, window, grace := s.servedParameters()
		s.requeueAfter(grace + window)
		// No verdict on a split it has not measured: the last one was of
		// the weights the step replaced.
		if meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionTrafficShifted) != nil {
			s.setCondition(v1alpha1.ConditionTrafficShifted, metav1.ConditionUnknown, ReasonServedMeasuring, fmt.Sprintf(
				"the split the mesh serves is measured once the step has had the mesh's grace period (%s) and a served window (%s)", grace, window))
		}
	}
}

// matches says whether every subset's served share is within tolerance
// points of its weight.
func matches(s *v1alpha1.ServedSplit, tolerance int32) bool {
	for subset, w := range s.Weights {
		if d := s.Percent[subset] - w; d > tolerance || -d > tolerance {
			return false
		}
	}
	return true
}

// servedInput is a measurement as the policies see it; nil without one,
// or when no request was counted.
func servedInput(s *v1alpha1.ServedSplit, tolerance int32) map[string]any {
	if s == nil || s.Requests == 0 {
		return nil
	}
	return map[string]any{
		"percent": weightsValue(s.Percent), "requests": s.Requests,
		"weights": weightsValue(s.Weights), "matches": matches(s, tolerance),
	}
}
